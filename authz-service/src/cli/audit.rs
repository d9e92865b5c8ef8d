//! `sekisho-authz audit list`.

use clap::Subcommand;

use crate::app::App;
use crate::audit;
use crate::time::format_unix;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The most recent events, newest first.
    List {
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        /// Only this event, e.g. token.minted.
        #[arg(long)]
        event: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: App, command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List { limit, event, json } = command;
    let events = audit::list(&app.db, event.as_deref(), limit).await?;
    if json {
        return super::print_json(&events);
    }
    println!("{:<6} {:<21} {:<18} {:<10} {:<8} DETAILS", "ID", "AT", "EVENT", "ACTOR", "OUTCOME");
    for e in &events {
        println!(
            "{:<6} {:<21} {:<18} {:<10} {:<8} {}",
            e.id,
            format_unix(e.at),
            e.event,
            e.actor,
            e.outcome,
            e.details
        );
    }
    Ok(())
}
