//! The stack's child processes: each in a process group of its own, its
//! stdout and stderr in files, and never outliving the harness.
//!
//! Three layers make sure nothing is orphaned:
//! - [`ManagedProcess::stop`] (also on drop) signals the whole process group:
//!   SIGTERM, then SIGKILL after a grace period;
//! - every child is spawned with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel
//!   kills it if the harness dies without dropping anything (a test binary
//!   killed by a timeout, a `Stack` in a static);
//! - the death signal fires when the *thread* that forked the child exits, so
//!   all children are forked by one spawner thread that lives as long as the
//!   process, not by the test thread that asked for them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

/// How long a process gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

pub struct ManagedProcess {
    name: String,
    child: Child,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
    /// Set once the child has been reaped.
    status: Option<ExitStatus>,
}

impl ManagedProcess {
    /// Spawns `cmd` as `name`, appending its output to `<log_dir>/<name>.{stdout,stderr}.log`
    /// (appending, so a restarted process keeps its earlier lines).
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Self> {
        let stdout_log = log_dir.join(format!("{name}.stdout.log"));
        let stderr_log = log_dir.join(format!("{name}.stderr.log"));
        cmd.stdin(Stdio::null()).stdout(append(&stdout_log)?).stderr(append(&stderr_log)?).process_group(0);
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // exec keeps the signal mask and ignored signals, and std does
                // not reset them: a child of `sekisho-stack` (which blocks
                // SIGTERM to wait for it) or of a shell's background job (which
                // ignores SIGINT) would otherwise never see our SIGTERM.
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let program = cmd.get_program().to_string_lossy().into_owned();
        let child = spawn_from_spawner_thread(cmd).with_context(|| format!("cannot start {name} ({program})"))?;
        Ok(Self { name: name.to_owned(), child, stdout_log, stderr_log, status: None })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited (it is reaped then).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Stops the process group: SIGTERM, SIGKILL after [`GRACE`], reaped either way.
    pub fn stop(&mut self) {
        let group = self.child.id() as libc::pid_t;
        if self.exited().is_none() {
            signal_group(group, libc::SIGTERM);
            let deadline = Instant::now() + GRACE;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.exited().is_none() {
                signal_group(group, libc::SIGKILL);
                self.status = self.child.wait().ok().or(Some(ExitStatus::from_raw(libc::SIGKILL)));
            }
        }
        // Anything the leader left behind in its group.
        signal_group(group, libc::SIGKILL);
    }

    /// The last `lines` lines of each log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for path in [&self.stdout_log, &self.stderr_log] {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            out.push_str(&format!("--- {} (last {} lines)\n", path.display(), all.len() - start));
            for line in &all[start..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn append(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("cannot open {}", path.display()))
}

fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // ESRCH (the group is gone) is the expected outcome of the final sweep.
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe {
        libc::killpg(group, signal);
    }
}

type SpawnJob = (Command, Sender<io::Result<Child>>);

/// Forks `cmd` on the process-lifetime spawner thread (see the module docs).
fn spawn_from_spawner_thread(cmd: Command) -> Result<Child> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("sekisho-e2e-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in queue {
                    // The requester may have given up; nothing to do then.
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| eprintln!("sekisho-e2e: cannot start the spawner thread: {e}"));
        Mutex::new(jobs)
    });
    let (reply, answer) = channel();
    spawner
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send((cmd, reply))
        .map_err(|_| anyhow!("the spawner thread is gone"))?;
    answer.recv().map_err(|_| anyhow!("the spawner thread is gone"))?.map_err(Into::into)
}

/// A command with an environment reduced to what any program needs: a
/// developer's `DATABASE_URL`, `AUTH0_*` or proxy settings must not leak into
/// a test's service. What a stack wants it sets explicitly.
pub fn clean_command(program: &Path) -> Command {
    const PASSED: [&str; 7] = ["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "RUST_LOG", "RUST_BACKTRACE"];
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for name in PASSED {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd
}
