//! `sekisho-authz`: the authorization service and its operator CLI in one binary.

use std::process::ExitCode;

use clap::Parser;
use sekisho_authz::cli::{self, Cli};
use sekisho_authz::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sekisho-authz: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    cli::run(cli, config).await
}
