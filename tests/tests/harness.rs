//! The harness's own promise: a process it starts, and everything that
//! process starts, is gone once it is stopped — even one that ignores SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use sekisho_e2e::process::ManagedProcess;

/// Live (not zombie) processes in process group `group`, from `/proc`.
fn live_members(group: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // `pid (comm) state ppid pgrp …`; comm may contain spaces.
            let fields: Vec<&str> =
                stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string()
        })
        .count()
}

fn start(script: &str, dir: &std::path::Path) -> ManagedProcess {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    let process = ManagedProcess::spawn("sleeper", cmd, dir).unwrap();
    // Let the shell start its children.
    std::thread::sleep(Duration::from_millis(200));
    process
}

#[test]
fn stopping_a_process_stops_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = start("sleep 300 & sleep 300 & wait", dir.path());
    let group = process.pid();
    assert_eq!(live_members(group), 3);

    process.stop();

    assert_eq!(live_members(group), 0);
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = start("trap '' TERM; sleep 300 & wait", dir.path());
    let group = process.pid();
    let started = Instant::now();

    process.stop();

    assert_eq!(live_members(group), 0);
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn output_is_captured_in_the_log_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = start("echo to-stdout; echo to-stderr >&2", dir.path());
    process.stop();
    let stdout = std::fs::read_to_string(dir.path().join("sleeper.stdout.log")).unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("sleeper.stderr.log")).unwrap();
    assert_eq!(stdout, "to-stdout\n");
    assert_eq!(stderr, "to-stderr\n");
}
