//! The operator CLI (SPEC O1): `serve` (the default), `migrate`, and commands
//! that act directly on the database named by the same environment as the
//! service, so scripts and the running service always agree.

mod api_keys;
mod audit;
mod clients;
mod instances;
mod keys;
mod token;
mod users;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{self, App};
use crate::audit::Actor;
use crate::config::Config;
use crate::logging;
use crate::serve;

const ENVIRONMENT_HELP: &str = "\
Configuration comes from the environment; examples/sekisho.env lists every
setting with its default. A bad one stops the command with exit status 2 and
one line naming it. [defaults in brackets]

Service:
  PUBLIC_BASE_URL               issuer and base of resource URIs [http://127.0.0.1:8080]
  SEKISHO_LISTEN                listen address [127.0.0.1:9000]
  SEKISHO_TRUSTED_PROXIES       peers whose X-Forwarded-For names the client [127.0.0.0/8,::1/128]
  SEKISHO_ENV                   development | production [development]
  SEKISHO_DATA_DIR              data directory [.sekisho/data]
  DATABASE_URL                  sqlite:… or postgresql://… [sqlite://{data dir}/sekisho.db?mode=rwc]
  SEKISHO_MASTER_KEY            base64 of 32 bytes: encrypts secrets at rest (required in production)
  SEKISHO_MASTER_KEYS_PREVIOUS  former master keys, comma-separated, until `keys reencrypt`
  SEKISHO_ADMIN_TOKEN           bearer token of the admin API (unset: admin API off)
  SEKISHO_LOG_FORMAT            text | json [text]; RUST_LOG sets levels

Tokens:
  JWT_PRIVATE_KEY               PEM PKCS#8 P-256 signing key (else keys are generated and stored)
  JWT_PUBLIC_KEY                PEM public key; must match JWT_PRIVATE_KEY
  SEKISHO_ACCESS_TOKEN_TTL      access token lifetime, seconds [900]
  SEKISHO_KEY_RELOAD_SECS       how often keys are re-read from the database [5]
  SEKISHO_DEFAULT_SCOPE         scope granted when a request names none [mcp:read mcp:write]
  SEKISHO_REFRESH_TOKEN_TTL     refresh token lifetime, seconds [2592000]
  SEKISHO_REFRESH_REUSE_GRACE_SECS  a spent refresh token retried this soon does not revoke its family [10]
  SEKISHO_CIMD_CACHE_TTL        how long a client metadata document is cached, seconds [300]

User login (Auth0 or any OpenID provider):
  AUTH0_DOMAIN                  the Auth0 tenant's domain (acme.eu.auth0.com)
  AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET  the Auth0 application's credentials
  SEKISHO_OIDC_ISSUER           instead of AUTH0_DOMAIN: any provider's issuer URL
  SEKISHO_OIDC_CLIENT_ID, SEKISHO_OIDC_CLIENT_SECRET  instead of the AUTH0_* pair
  SEKISHO_OIDC_SCOPE            upstream scopes, with openid [openid profile email]
  SEKISHO_BREAKER_FAILURES      consecutive provider failures that open the breaker [5]
  SEKISHO_BREAKER_COOLDOWN_SECS how long the breaker stays open [30]

API keys:
  SEKISHO_API_KEY_CACHE_SECONDS     how long the filter may cache a key check: the revocation bound [30]
  SEKISHO_API_KEY_USAGE_FLUSH_SECS  how often key usage is written to the database [5]

Rate limits (COUNT/WINDOW such as 60/min, or off):
  SEKISHO_RATE_LIMIT            on | off: all limits [on]
  SEKISHO_RATE_LIMIT_REGISTER, SEKISHO_RATE_LIMIT_TOKEN, SEKISHO_RATE_LIMIT_TOKEN_IP,
  SEKISHO_RATE_LIMIT_AUTHORIZE, SEKISHO_RATE_LIMIT_DISCOVERY, SEKISHO_RATE_LIMIT_ADMIN,
  SEKISHO_RATE_LIMIT_INTERNAL   one limit each (see examples/sekisho.env for defaults)
  SEKISHO_RATE_LIMIT_MAX_KEYS   clients and addresses tracked in memory at most [100000]
  SEKISHO_REDIS_URL             redis://… to share the counters between replicas
  SEKISHO_REDIS_PREFIX          prefix of the Redis keys [sekisho:rl:]

Development only (refused in production):
  SEKISHO_DEV_LOGIN             1: every login is the local user dev-user
  SEKISHO_DEV_AUTO_CONSENT      1: consent without asking
  SEKISHO_CIMD_ALLOW_LOOPBACK   1: fetch client metadata documents from loopback, over http

Exit status: 0 done, 1 the command failed, 2 bad configuration or usage.";

#[derive(Debug, Parser)]
#[command(
    name = "sekisho-authz",
    version,
    about = "The Sekisho authorization service (OAuth 2.1 for MCP servers behind Envoy) and its operator CLI",
    long_about = "The Sekisho authorization service (OAuth 2.1 for MCP servers behind Envoy) and its operator CLI.\n\n\
                  Without a command it serves. The other commands act directly on the database of the same \
                  configuration, so run them with the service's environment. Listing, show and create commands \
                  take --json for scripts.",
    after_help = ENVIRONMENT_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage MCP instances.
    #[command(subcommand)]
    Instances(instances::InstancesCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Mint access tokens for tests and local use.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Read the audit log (`audit --since 1h --client … --json`; `audit list …` is the same).
    Audit(audit::AuditArgs),
    /// Manage OAuth clients registered by an operator.
    #[command(subcommand)]
    Clients(clients::ClientsCommand),
    /// Manage API keys.
    #[command(subcommand)]
    ApiKeys(api_keys::ApiKeysCommand),
    /// Users who logged in through the upstream identity provider.
    #[command(subcommand)]
    Users(users::UsersCommand),
}

pub async fn run(cli: Cli, config: Config) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve);
    let serving = matches!(command, Command::Serve);
    // The service logs its work; a CLI command only its warnings (its output is on stdout).
    logging::init(config.log_format, if serving { "info,sqlx=warn" } else { "warn" });
    if serving && let Err(e) = config.check_for_serving() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match execute(command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if serving {
                tracing::error!(error = format!("{e:#}"), "sekisho-authz failed");
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve::run(App::open(config, &Actor::system()).await?).await,
        Command::Migrate => {
            let db = app::connect_and_migrate(&config).await?;
            db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Instances(command) => with_app(config, |app| instances::run(app, command)).await,
        Command::Keys(command) => with_app(config, |app| keys::run(app, command)).await,
        Command::Token(command) => with_app(config, |app| token::run(app, command)).await,
        Command::Audit(command) => with_app(config, |app| audit::run(app, command)).await,
        Command::ApiKeys(command) => with_app(config, |app| api_keys::run(app, command)).await,
        Command::Clients(command) => with_app(config, |app| clients::run(app, command)).await,
        Command::Users(command) => with_app(config, |app| users::run(app, command)).await,
    }
}

/// Opens the service's data for one command and closes it cleanly afterwards.
async fn with_app<F, Fut>(config: Config, command: F) -> anyhow::Result<()>
where
    F: FnOnce(App) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let app = App::open(config, &Actor::cli()).await?;
    let db = app.db.clone();
    let result = command(app).await;
    db.close().await;
    result
}

/// Pretty JSON on stdout, for `--json`.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
