//! One module per `cargo xtask` command.

pub mod test;
pub mod up;
pub mod validate_envoy;
