//! `sekisho-authz clients register|list|revoke`: OAuth clients registered by an
//! operator — the only way to get a `client_credentials` client, since the
//! open registration endpoint does not hand those out.

use clap::{Args, Subcommand};

use crate::app::App;
use crate::audit::Actor;
use crate::clients::metadata::{Registrar, RegistrationRequest};
use crate::clients::registration;
use crate::time::format_unix;

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its client_id, and its secret once.
    Register(RegisterArgs),
    /// List registered clients (never their secrets).
    List {
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a client: it can no longer authenticate, its refresh tokens and
    /// the access tokens issued with them are revoked.
    Revoke {
        client_id: String,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Shown on the consent page.
    #[arg(long)]
    name: String,
    /// A redirect URI (repeatable); needed for the authorization_code grant.
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// A confidential client with a secret (client_secret_basic); otherwise public.
    #[arg(long)]
    confidential: bool,
    /// The scopes the client may ask for, space-separated.
    #[arg(long)]
    scope: Option<String>,
    /// authorization_code, refresh_token or client_credentials (repeatable)
    /// [default: authorization_code].
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// Print the registration as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(app: App, command: ClientsCommand) -> anyhow::Result<()> {
    match command {
        ClientsCommand::Register(args) => register(&app, args).await,
        ClientsCommand::List { json } => {
            let clients = registration::list(&app).await?;
            if json {
                return super::print_json(&clients);
            }
            println!("{:<34} {:<12} {:<8} {:<5} {:<32} NAME", "CLIENT_ID", "TYPE", "BY", "STATE", "GRANTS");
            for c in &clients {
                println!(
                    "{:<34} {:<12} {:<8} {:<5} {:<32} {}",
                    c.client_id,
                    if c.public { "public" } else { "confidential" },
                    c.registered_by,
                    if c.revoked_at.is_some() { "revoked" } else { "live" },
                    c.grant_types.join(","),
                    c.client_name.as_deref().unwrap_or("-"),
                );
            }
            Ok(())
        }
        ClientsCommand::Revoke { client_id, json } => {
            registration::revoke(&app, &client_id, &Actor::cli()).await?;
            if json {
                return super::print_json(&serde_json::json!({ "revoked": client_id }));
            }
            println!("revoked client {client_id}");
            Ok(())
        }
    }
}

async fn register(app: &App, args: RegisterArgs) -> anyhow::Result<()> {
    let request = RegistrationRequest {
        client_name: Some(args.name),
        redirect_uris: Some(args.redirect_uris),
        token_endpoint_auth_method: Some(if args.confidential { "client_secret_basic" } else { "none" }.to_owned()),
        scope: args.scope,
        grant_types: (!args.grant_types.is_empty()).then_some(args.grant_types),
        ..RegistrationRequest::default()
    };
    let info = registration::register(app, request, Registrar::Operator, &Actor::cli()).await?;
    if args.json {
        return super::print_json(&info);
    }
    println!("client_id      {}", info.client_id);
    if let Some(secret) = &info.client_secret {
        println!("client_secret  {secret}");
        eprintln!("The client secret is shown only now; only its hash is stored.");
    }
    println!("registered     {}", format_unix(info.client_id_issued_at));
    Ok(())
}
