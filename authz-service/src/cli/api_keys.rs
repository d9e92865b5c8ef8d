//! `sekisho-authz api-keys create|list|show|revoke|rotate`.
//!
//! `create` and `rotate` print the new key, and nothing else, on stdout
//! (`KEY=$(sekisho-authz api-keys create …)`); what they did goes to stderr.
//! With `--json` they print one JSON object with the key (`api_key`) and its
//! record instead. The key is shown this once and cannot be recovered later.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::api_keys::{self, ApiKeyInfo, ApiKeySpec, CreatedApiKey, Expiry};
use crate::app::App;
use crate::audit::Actor;
use crate::time::format_unix;

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key for one or more instances; prints the key once.
    Create(CreateArgs),
    /// List keys (their ids and prefixes, never the keys).
    List {
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one key's record (never the key).
    Show {
        id: String,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once.
    Revoke {
        id: String,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replace a key with a new one of the same settings; prints the new key once.
    Rotate {
        id: String,
        /// How long the old key stays valid, e.g. 1h (at most 7d).
        #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_seconds)]
        grace: i64,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// What the key is for, shown in listings.
    #[arg(long)]
    name: String,
    /// Instance id the key may be used at (repeatable).
    #[arg(long = "instance", value_name = "ID", required = true)]
    instances: Vec<String>,
    /// Space-separated scopes, e.g. "mcp:read".
    #[arg(long)]
    scope: String,
    /// Lifetime, e.g. 30d, 12h or 3600 (seconds); without it the key does not expire.
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds)]
    expires_in: Option<i64>,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

/// A humantime duration (`30d`, `1h 30m`) or bare seconds.
fn parse_seconds(s: &str) -> Result<i64, String> {
    let seconds = match s.trim().parse::<u64>() {
        Ok(n) => n,
        Err(_) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("expected a duration such as 30d or 3600: {e}"))?
            .as_secs(),
    };
    i64::try_from(seconds).map_err(|_| "duration is too long".to_owned())
}

pub async fn run(app: App, command: ApiKeysCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
    match command {
        ApiKeysCommand::Create(args) => {
            let spec = ApiKeySpec {
                name: args.name,
                instances: args.instances,
                scope: args.scope,
                expiry: args.expires_in.map_or(Expiry::Never, Expiry::After),
            };
            let created = api_keys::create(&app, &spec, &actor).await?;
            if args.json {
                return super::print_json(&json!({ "api_key": created.api_key, "key": created.info }));
            }
            print_new_key("created", &created);
        }
        ApiKeysCommand::List { json } => {
            let keys = api_keys::list(&app.db).await?;
            if json {
                return super::print_json(&keys);
            }
            print_table(&keys);
        }
        ApiKeysCommand::Show { id, json } => {
            let info = api_keys::get(&app.db, &id).await?;
            if json {
                return super::print_json(&info);
            }
            print_table(std::slice::from_ref(&info));
        }
        ApiKeysCommand::Revoke { id, json } => {
            let info = api_keys::revoke(&app.db, &id, &actor).await?;
            if json {
                return super::print_json(&info);
            }
            println!("revoked API key {} ({})", info.id, info.display_prefix);
        }
        ApiKeysCommand::Rotate { id, grace, json } => {
            let rotated = api_keys::rotate(&app, &id, grace, &actor).await?;
            if json {
                let (new, old) = (&rotated.new, &rotated.old);
                return super::print_json(&json!({ "api_key": new.api_key, "key": new.info, "replaced": old }));
            }
            print_new_key("rotated", &rotated.new);
            let until = rotated.old.revoked_at.map_or_else(String::new, format_unix);
            eprintln!("the old key {} is revoked at {until}", rotated.old.id);
        }
    }
    Ok(())
}

fn print_new_key(what: &str, created: &CreatedApiKey) {
    let info = &created.info;
    eprintln!(
        "{what} API key {} ({}…) for {} with scope \"{}\"; it is shown only this once",
        info.id,
        info.display_prefix,
        info.instances.join(", "),
        info.scope
    );
    println!("{}", created.api_key);
}

fn print_table(keys: &[ApiKeyInfo]) {
    let when = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), format_unix);
    println!(
        "{:<25} {:<13} {:<8} {:<20} {:<20} {:<20} {:<21} {:<21} USES",
        "ID", "PREFIX", "STATUS", "NAME", "INSTANCES", "SCOPE", "EXPIRES", "LAST USED"
    );
    for k in keys {
        println!(
            "{:<25} {:<13} {:<8} {:<20} {:<20} {:<20} {:<21} {:<21} {}",
            k.id,
            k.display_prefix,
            k.status.as_str(),
            k.name,
            k.instances.join(","),
            k.scope,
            when(k.expires_at),
            when(k.last_used_at),
            k.use_count
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(parse_seconds("30d"), Ok(30 * 86_400));
        assert_eq!(parse_seconds("1h 30m"), Ok(5_400));
        assert_eq!(parse_seconds("3600"), Ok(3_600));
        assert_eq!(parse_seconds("0"), Ok(0));
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("-5").is_err());
    }
}
