//! `sekisho-authz instances create|list|show|delete`.

use clap::{Args, Subcommand};
use sekisho_contract::policy::AuthMode;
use serde_json::json;

use crate::app::App;
use crate::audit::Actor;
use crate::registry::{self, InstanceSpec, Saved};

#[derive(Debug, Subcommand)]
pub enum InstancesCommand {
    /// Create an instance, or bring an existing one to exactly these settings
    /// (idempotent: safe to run at every start).
    Create(CreateArgs),
    /// List instances.
    List {
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one instance and its policy.
    Show {
        id: String,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete an instance.
    Delete {
        id: String,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Instance id: served at /mcp/{id}.
    id: String,
    /// Which credentials the instance accepts.
    #[arg(long, default_value = "oauth", value_parser = parse_auth_mode)]
    auth_mode: AuthMode,
    #[arg(long)]
    display_name: Option<String>,
    /// Scope a tools/call of TOOL needs (repeatable).
    #[arg(long = "tool-scope", value_name = "TOOL=SCOPE", value_parser = parse_pair)]
    tool_scopes: Vec<(String, String)>,
    /// Scope a JSON-RPC METHOD needs, overriding the default (repeatable).
    #[arg(long = "method-scope", value_name = "METHOD=SCOPE", value_parser = parse_pair)]
    method_scopes: Vec<(String, String)>,
    /// Print what was saved as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_auth_mode(s: &str) -> Result<AuthMode, String> {
    AuthMode::parse(s).ok_or_else(|| "expected oauth, api_key, both or none".to_owned())
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(name, scope)| (name.to_owned(), scope.to_owned()))
        .ok_or_else(|| "expected NAME=SCOPE".to_owned())
}

pub async fn run(app: App, command: InstancesCommand) -> anyhow::Result<()> {
    match command {
        InstancesCommand::Create(args) => {
            let spec = InstanceSpec {
                display_name: args.display_name,
                auth_mode: args.auth_mode,
                method_scopes: args.method_scopes.into_iter().collect(),
                tool_scopes: args.tool_scopes.into_iter().collect(),
            };
            let (instance, saved) = registry::put(&app.db, &args.id, &spec, &Actor::cli()).await?;
            let what = match saved {
                Saved::Created => "created",
                Saved::Updated => "updated",
                Saved::Unchanged => "unchanged",
            };
            if args.json {
                let resource = instance.resource(app.issuer());
                return super::print_json(&json!({ "saved": what, "resource": resource, "instance": instance }));
            }
            println!("{what} instance {} ({})", instance.id, instance.resource(app.issuer()));
        }
        InstancesCommand::List { json } => {
            let instances = registry::list(&app.db).await?;
            if json {
                return super::print_json(&instances);
            }
            println!("{:<24} {:<8} {:<24} RESOURCE", "ID", "AUTH", "NAME");
            for i in &instances {
                println!(
                    "{:<24} {:<8} {:<24} {}",
                    i.id,
                    i.auth_mode.as_str(),
                    i.display_name,
                    i.resource(app.issuer())
                );
            }
        }
        InstancesCommand::Show { id, json } => {
            let instance = registry::get(&app.db, &id).await?.ok_or_else(|| anyhow::anyhow!("no instance `{id}`"))?;
            let resource = instance.resource(app.issuer());
            if json {
                return super::print_json(&json!({ "resource": resource, "instance": instance }));
            }
            println!("id            {}", instance.id);
            println!("name          {}", instance.display_name);
            println!("auth mode     {}", instance.auth_mode.as_str());
            println!("resource      {resource}");
            println!("metadata      {}", instance.resource_metadata_url(app.issuer()));
            for (method, scope) in &instance.method_scopes {
                println!("method scope  {method} = {scope}");
            }
            for (tool, scope) in &instance.tool_scopes {
                println!("tool scope    {tool} = {scope}");
            }
        }
        InstancesCommand::Delete { id, json } => {
            registry::delete(&app.db, &id, &Actor::cli()).await?;
            if json {
                return super::print_json(&json!({ "deleted": id }));
            }
            println!("deleted instance {id}");
        }
    }
    Ok(())
}
