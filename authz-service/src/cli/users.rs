//! `sekisho-authz users list`: who logged in through the upstream identity
//! provider — Sekisho's subject (the `sub` of their tokens) and the
//! provider's `iss` and `sub` it is bound to. Email and profile stay sealed:
//! PII is not printed.

use clap::Subcommand;
use serde::Serialize;

use crate::app::App;
use crate::storage::users;
use crate::time::format_unix;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Users, most recent login first.
    List {
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Listed {
    subject: String,
    issuer: String,
    upstream_subject: String,
    created_at: i64,
    last_login_at: i64,
}

pub async fn run(app: App, command: UsersCommand) -> anyhow::Result<()> {
    let UsersCommand::List { limit, json } = command;
    let rows = users::list(app.db.pool(), limit).await?;
    let listed: Vec<Listed> = rows
        .into_iter()
        .map(|u| Listed {
            subject: u.subject,
            issuer: u.issuer,
            upstream_subject: u.upstream_subject,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        })
        .collect();
    if json {
        return super::print_json(&listed);
    }
    println!("{:<32} {:<40} {:<32} {:<21} LAST LOGIN", "SUBJECT", "ISSUER", "UPSTREAM SUBJECT", "CREATED");
    for u in &listed {
        println!(
            "{:<32} {:<40} {:<32} {:<21} {}",
            u.subject,
            u.issuer,
            u.upstream_subject,
            format_unix(u.created_at),
            format_unix(u.last_login_at)
        );
    }
    Ok(())
}
