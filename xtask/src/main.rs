//! `cargo xtask <command>`: the project's tasks.
//!
//! - `up [stack flags]`   set up, then run the whole stack in the foreground
//!   (Envoy :8080, admin :9901, sekisho-authz :9000, demo MCP :9100; data in
//!   `.sekisho/data`) until Ctrl-C. `cargo xtask up --help` lists the flags.
//! - `test [-- cargo test args]`   set up, then run every test suite; exits
//!   non-zero on any failure and ends with a summary.
//! - `validate-envoy`     render `envoy/sekisho.yaml.tmpl` and run
//!   `envoy --mode validate` on it.
//! - `render-compose`     render the template for docker-compose into
//!   `examples/envoy-compose.yaml` and `examples/envoy-compose-tls.yaml`.
//! - `setup`              only the set-up (tools, builds).
//! - `filter`             only the deployable filter module (prints its path).
//! - `bench [-- flags]`   the benchmark (filter vs. no auth vs. jwt_authn).
//! - `fuzz [seconds]`     every cargo-fuzz target for that long (default 30 s).

mod commands;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <up|test|validate-envoy|render-compose|setup|filter|bench|fuzz> [args]

  up [flags]              run the stack in the foreground until Ctrl-C (flags: up --help)
  test [-- <args>]        set up and run every test suite (args go to cargo test)
  validate-envoy          render envoy/sekisho.yaml.tmpl and validate it with Envoy
  render-compose          render it for docker-compose into examples/envoy-compose{,-tls}.yaml
  setup                   install and build what the stack and the tests need
  filter                  build only the deployable filter module and print its path
  bench [-- <flags>]      benchmark the filter against no auth and Envoy's jwt_authn
  fuzz [seconds]          run every fuzz target for that long (default 30)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match command.as_str() {
        "up" => commands::up::run(&rest),
        "test" => commands::test::run(&rest),
        "validate-envoy" => commands::validate_envoy::run(),
        "render-compose" => commands::render_compose::run(),
        "bench" => commands::bench::run(&rest),
        "fuzz" => commands::fuzz::run(&rest),
        "setup" => xtask::setup::all().and_then(|tools| {
            let clients = xtask::setup::clients()?;
            for (name, path) in tools.env().into_iter().chain(clients.env()) {
                println!("{name}={}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }),
        "filter" => {
            xtask::setup::rust::ensure_wasm_target().and_then(|()| xtask::setup::rust::build_filter()).map(|path| {
                println!("{}", path.display());
                ExitCode::SUCCESS
            })
        }
        "" | "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprintln!("unknown command `{other}`\n\n{USAGE}");
            Ok(ExitCode::from(2))
        }
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}
