//! `sekisho-e2e`: the one place that starts the real stack for tests.
//!
//! [`Stack::start`] runs Envoy (with the sekisho wasm filter), `sekisho-authz`
//! and the demo MCP server on free loopback ports, each in its own process
//! group with its output captured under the stack's data directory, and stops
//! them all when the [`Stack`] is dropped. Scenarios in `tests/` drive it
//! through the helpers here: the service's admin API (`mint_token`, `rotate_keys`), the
//! MCP helpers (`mcp_post`, `session`), Envoy's stats and the captured logs.
//! [`forge`] makes tokens the service would never issue. [`clients`] runs the
//! real MCP SDKs and a headless browser against a stack; [`oauth`] is a
//! step-by-step OAuth client for scenarios. A stack can serve HTTPS with a
//! CA of its own ([`tls`]) and run several service replicas on a database of
//! its own ([`postgres`]).
//!
//! Nothing here builds or installs: `cargo xtask test` does that first and
//! exports where everything is (see [`binaries`]).

pub mod authz;
pub mod binaries;
pub mod clients;
pub mod forge;
pub mod http;
pub mod mcp;
pub mod oauth;
pub mod oidc_provider;
pub mod options;
pub mod ports;
pub mod postgres;
pub mod postgres_cluster;
pub mod process;
mod random;
mod restart;
pub mod secret_scan;
pub mod stack;
pub mod tls;
mod wait;

pub use binaries::Binaries;
pub use mcp::{McpResponse, McpSession};
pub use oidc_provider::{OidcProvider, OidcProviderOptions};
pub use options::{Instance, StackOptions};
pub use ports::Ports;
pub use stack::{LogFile, Stack};
