//! `sekisho-authz token mint`: prints an access token, and only that, on stdout
//! (`TOKEN=$(sekisho-authz token mint …)`), or with `--json` a token response.

use clap::{Args, Subcommand};

use crate::app::App;
use crate::audit::Actor;
use crate::tokens::mint::{self, MintRequest};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint an access token for an instance.
    Mint(MintArgs),
}

#[derive(Debug, Args)]
pub struct MintArgs {
    /// Instance id (or give --resource).
    #[arg(long, required_unless_present = "resource", conflicts_with = "resource")]
    instance: Option<String>,
    /// Resource URI of the instance.
    #[arg(long)]
    resource: Option<String>,
    /// Space-separated scopes, e.g. "mcp:read mcp:write".
    #[arg(long)]
    scope: String,
    /// Subject; defaults to the client id.
    #[arg(long)]
    sub: Option<String>,
    #[arg(long)]
    client_id: Option<String>,
    /// Lifetime in seconds; at most SEKISHO_ACCESS_TOKEN_TTL.
    #[arg(long)]
    ttl: Option<i64>,
    /// Print a token response (access_token, expires_in, scope, jti, kid) as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(app: App, command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Mint(args) = command;
    let request = MintRequest {
        instance: args.instance,
        resource: args.resource,
        scope: Some(args.scope),
        sub: args.sub,
        client_id: args.client_id,
        ttl: args.ttl,
    };
    let issued = mint::mint(&app, &request, &Actor::cli()).await?;
    if args.json {
        return super::print_json(&serde_json::json!({
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "expires_at": issued.expires_at,
            "scope": issued.scope,
            "jti": issued.jti,
            "kid": issued.kid,
        }));
    }
    println!("{}", issued.token);
    Ok(())
}
