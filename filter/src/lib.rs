//! The Sekisho proxy-wasm filter.
//!
//! Everything that decides lives in plain Rust modules tested natively:
//! [`config`] (the plugin configuration), [`request`] (what a request carries),
//! [`jsonrpc`] (which MCP operations a body holds), [`keys`] and [`token`]
//! (verifying a Bearer JWT), [`cache`] (verified credentials) and [`decision`]
//! (allow or refuse, and how), [`shared_keys`] (API key verdicts shared
//! across workers), [`envoy_crypto`] (the message format of Envoy's
//! native signature check), [`header_map`] (Envoy's serialized header map,
//! read in place) and [`upstream`] (the headers the MCP server receives).
//! [`shell`] is the thin proxy-wasm layer that
//! gathers input from Envoy, calls them and acts on the verdict; it is compiled
//! for wasm only.

pub mod cache;
pub mod config;
pub mod decision;
pub mod envoy_crypto;
pub mod header_map;
pub mod jsonrpc;
pub mod keys;
pub mod request;
pub mod shared_keys;
pub mod stats;
pub mod token;
pub mod upstream;

#[cfg(target_arch = "wasm32")]
mod shell;
