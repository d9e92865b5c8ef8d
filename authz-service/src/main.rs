//! `sekisho-authz`: the authorization service and its operator CLI in one binary.
//!
//! Exit status: 0 done; 1 the command failed (database unreachable, no such
//! record, the port is taken); 2 the configuration or the command line is
//! wrong, said in one line on stderr that names the variable or argument.

use std::process::ExitCode;

use clap::Parser;
use sekisho_authz::cli::{self, Cli};
use sekisho_authz::config::Config;

/// mimalloc rather than glibc's malloc: a token request allocates in the
/// handler, in hyper and in the SQLite worker threads, and glibc's arenas spent
/// a fifth of the token endpoint's CPU in malloc and free (`perf record`
/// under `wrk`, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    cli::run(cli, config).await
}
