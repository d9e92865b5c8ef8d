//! `sekisho-authz keys rotate|list|reencrypt`. A rotation here reaches running
//! services within `SEKISHO_KEY_RELOAD_SECS`. `reencrypt` is about the master
//! key, not the signing keys: it re-seals every encrypted field under the
//! current `SEKISHO_MASTER_KEY` (see `crate::crypto::reencrypt`).

use clap::Subcommand;

use crate::app::App;
use crate::audit::Actor;
use crate::crypto::reencrypt;
use crate::keys::stored;
use crate::time::format_unix;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Promote the next key to current, keep the old current as previous,
    /// retire the old previous, and pre-publish a new next key.
    Rotate {
        /// Retire the previous key even if tokens it signed may still be valid
        /// (for a compromised key).
        #[arg(long)]
        force: bool,
        /// Print the kids as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the stored keys (never their private parts).
    List {
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// After a master key rotation (new SEKISHO_MASTER_KEY, the old one in
    /// SEKISHO_MASTER_KEYS_PREVIOUS): re-seal every encrypted field under the
    /// new key. Idempotent; run it again if interrupted. Exits non-zero while
    /// any value is left under another key.
    Reencrypt {
        /// Rows per transaction.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        batch_size: i64,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: App, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate { force, json } => {
            let rotation = app.rotate_keys(&Actor::cli(), force).await?;
            if json {
                return super::print_json(&rotation);
            }
            println!("current  {}", rotation.current);
            println!("next     {}", rotation.next);
            println!("previous {}", rotation.previous);
            if let Some(retired) = rotation.retired {
                println!("retired  {retired}");
            }
        }
        KeysCommand::Reencrypt { batch_size, json } => {
            let report = reencrypt::run(&app.db, &app.cipher, &Actor::cli(), batch_size).await?;
            if json {
                super::print_json(&report)?;
            } else {
                println!("master key {}", report.key_id);
                println!("{:<26} {:>9} {:>9} {:>11} {:>6}", "FIELD", "RESEALED", "CHANGED", "UNREADABLE", "LEFT");
                for f in &report.fields {
                    println!(
                        "{:<26} {:>9} {:>9} {:>11} {:>6}",
                        f.field, f.resealed, f.changed_meanwhile, f.unreadable, f.left_under_other_keys
                    );
                }
            }
            if !report.complete() {
                anyhow::bail!(
                    "some values are still sealed under another key: keep SEKISHO_MASTER_KEYS_PREVIOUS and run again"
                );
            }
            eprintln!("every encrypted field is sealed under master key {}", report.key_id);
        }
        KeysCommand::List { json } => {
            let keys = stored::list(&app.db).await?;
            if json {
                return super::print_json(&keys);
            }
            if app.config.env_signing_key.is_some() {
                eprintln!(
                    "note: the service signs with JWT_PRIVATE_KEY ({}); stored keys are unused",
                    app.keys.current().signer().kid()
                );
            }
            let when = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), format_unix);
            println!("{:<44} {:<9} {:<21} {:<21} RETIRED", "KID", "STATUS", "CREATED", "ACTIVATED");
            for k in &keys {
                println!(
                    "{:<44} {:<9} {:<21} {:<21} {}",
                    k.kid,
                    k.status.as_str(),
                    format_unix(k.created_at),
                    when(k.activated_at),
                    when(k.retired_at)
                );
            }
        }
    }
    Ok(())
}
