//! `cargo xtask up`: set up, then become the stack runner (`sekisho-stack`,
//! from the `sekisho-e2e` crate) so that Ctrl-C reaches it directly and it
//! stops every process it started. With `--oidc-provider`, set-up also
//! installs the loopback OpenID provider the stack then logs users in at.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use anyhow::{Result, bail};
use xtask::{setup, workspace};

pub fn run(args: &[String]) -> Result<ExitCode> {
    let tools = setup::all()?;
    if args.iter().any(|a| a == "--oidc-provider") {
        setup::step("oidc provider", setup::oidc_provider::ensure)?;
    }
    let stack = workspace::stack_binary();
    if !stack.is_file() {
        bail!("{} was not built (it is sekisho-e2e's binary)", stack.display());
    }
    let mut cmd = Command::new(&stack);
    cmd.args(args);
    for (name, path) in tools.env() {
        cmd.env(name, path);
    }
    // exec only returns on failure.
    let error = cmd.exec();
    bail!("cannot run {}: {error}", stack.display())
}
