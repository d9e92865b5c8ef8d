//! `sekisho-authz audit [list]`: the audit log, newest first, with the same
//! filters as `GET /admin/v1/audit`.

use clap::{Args, Subcommand};

use crate::app::App;
use crate::audit::{self, AuditFilter, Outcome};
use crate::time::{format_unix, now_unix};

/// `audit [list] [filters]`: `list` is the default, so `audit --since 1h` works too.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    #[command(flatten)]
    filters: Filters,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The most recent events, newest first.
    List(Filters),
}

#[derive(Debug, Args)]
pub struct Filters {
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    limit: i64,
    /// Only this event, e.g. token.minted.
    #[arg(long)]
    event: Option<String>,
    /// From this time on: unix seconds, RFC 3339, or a duration ago (1h, 7d).
    #[arg(long, value_parser = time_arg)]
    since: Option<i64>,
    /// Before this time (same forms as --since).
    #[arg(long, value_parser = time_arg)]
    until: Option<i64>,
    /// Only events about this client_id.
    #[arg(long = "client")]
    client_id: Option<String>,
    /// Only events about this user (subject).
    #[arg(long = "user")]
    subject: Option<String>,
    /// success or failure.
    #[arg(long)]
    outcome: Option<Outcome>,
    /// Only events older than this id (the last id of the previous page).
    #[arg(long)]
    before: Option<i64>,
    #[arg(long)]
    json: bool,
}

fn time_arg(text: &str) -> Result<i64, String> {
    audit::parse_time(text, now_unix())
        .ok_or_else(|| format!("`{text}` is not unix seconds, an RFC 3339 time or a duration ago (1h)"))
}

pub async fn run(app: App, args: AuditArgs) -> anyhow::Result<()> {
    let Filters { limit, event, since, until, client_id, subject, outcome, before, json } = match args.command {
        Some(AuditCommand::List(filters)) => filters,
        None => args.filters,
    };
    let filter = AuditFilter { since, until, client_id, subject, event, outcome, before, limit };
    let events = audit::query(&app.db, &filter).await?;
    if json {
        return super::print_json(&events);
    }
    println!(
        "{:<6} {:<21} {:<18} {:<10} {:<8} {:<24} {:<16} DETAILS",
        "ID", "AT", "EVENT", "ACTOR", "OUTCOME", "CLIENT", "SUBJECT"
    );
    for e in &events {
        println!(
            "{:<6} {:<21} {:<18} {:<10} {:<8} {:<24} {:<16} {}",
            e.id,
            format_unix(e.at),
            e.event,
            e.actor,
            e.outcome,
            e.client_id.as_deref().unwrap_or("-"),
            e.subject.as_deref().unwrap_or("-"),
            e.details
        );
    }
    Ok(())
}
