//! `sekisho-authz keys rotate|list`. A rotation here reaches running services
//! within `SEKISHO_KEY_RELOAD_SECS`.

use clap::Subcommand;

use crate::app::App;
use crate::audit::Actor;
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
    },
    /// List the stored keys (never their private parts).
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: App, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate { force } => {
            let rotation = app.rotate_keys(&Actor::cli(), force).await?;
            println!("current  {}", rotation.current);
            println!("next     {}", rotation.next);
            println!("previous {}", rotation.previous);
            if let Some(retired) = rotation.retired {
                println!("retired  {retired}");
            }
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
