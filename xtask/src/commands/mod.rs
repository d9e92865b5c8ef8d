//! One module per `cargo xtask` command.

pub mod bench;
pub mod fuzz;
pub mod render_compose;
pub mod test;
pub mod up;
pub mod validate_envoy;
