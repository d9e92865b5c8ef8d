//! The project's tasks as a library: where things live in the workspace
//! ([`workspace`]), how the tools the tests need are found or installed
//! ([`setup`]), and how the Envoy template becomes a configuration
//! ([`envoy_config`]).
//!
//! The `xtask` binary (`cargo xtask …`) drives these; the end-to-end harness
//! (`sekisho-e2e`) uses them to find the same Envoy and render the same
//! template, so a test run and `cargo xtask up` cannot drift apart. This crate
//! starts no long-running process itself: the stack lives in `sekisho-e2e`.

pub mod envoy_config;
pub mod process;
pub mod setup;
pub mod wasm_exports;
pub mod workspace;
