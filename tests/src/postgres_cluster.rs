//! A private PostgreSQL server for fault tests: its own data directory and
//! port, so a test can stop it, crash it and start it again without touching
//! the machine's shared server (which other tests use at the same time).
//!
//! The server binaries come from `SEKISHO_POSTGRES_BIN` or the newest
//! `/usr/lib/postgresql/*/bin`; without them the test fails and says so.
//! PostgreSQL refuses to run as root, so as root the server runs as the
//! `postgres` user. `postgres` runs in the foreground as a
//! [`ManagedProcess`], so it never outlives the test.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::process::ManagedProcess;

const ENV_POSTGRES_BIN: &str = "SEKISHO_POSTGRES_BIN";
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct PostgresCluster {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// `(uid, gid)` of `postgres` when we are root.
    run_as: Option<(u32, u32)>,
    server: Option<ManagedProcess>,
}

impl PostgresCluster {
    /// Initialises a cluster (trust authentication, user `postgres`) and starts it.
    pub fn start() -> Result<PostgresCluster> {
        let bin = server_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("sekisho-pg-").tempdir().context("cannot create a data directory")?;
        let run_as = if unsafe { libc::geteuid() } == 0 { Some(postgres_user()?) } else { None };
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), uid, gid)?;
        }
        // Free now; PostgreSQL binds it a moment later (the usual small race).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cluster = PostgresCluster { bin, dir, port, run_as, server: None };
        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(cluster.data_dir()).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        let out = initdb.output().context("cannot run initdb")?;
        if !out.status.success() {
            bail!("initdb failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        cluster.start_server()?;
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = crate::process::clean_command(&self.bin.join(program));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Starts the server (again, after [`stop`](Self::stop) or [`crash`](Self::crash)) and waits until it answers.
    pub fn start_server(&mut self) -> Result<()> {
        if self.server.is_some() {
            bail!("the PostgreSQL server is already running");
        }
        let mut postgres = self.command("postgres");
        postgres
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c"])
            .arg(format!("unix_socket_directories={}", self.dir.path().display()));
        let mut server = ManagedProcess::spawn("postgres", postgres, self.dir.path())?;
        let deadline = Instant::now() + START_TIMEOUT;
        while self.query("postgres", "SELECT 1").is_err() {
            if let Some(status) = server.exited() {
                bail!("postgres exited ({status})\n{}", server.log_tail(30));
            }
            if Instant::now() > deadline {
                bail!("postgres did not answer within {START_TIMEOUT:?}\n{}", server.log_tail(30));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.server = Some(server);
        Ok(())
    }

    /// Fast shutdown (SIGINT): open transactions are rolled back, clients disconnected.
    pub fn stop(&mut self) {
        self.signal_and_wait(libc::SIGINT);
    }

    /// Immediate shutdown (SIGQUIT): like a crash; the next start recovers from the WAL.
    pub fn crash(&mut self) {
        self.signal_and_wait(libc::SIGQUIT);
    }

    fn signal_and_wait(&mut self, signal: libc::c_int) {
        let Some(mut server) = self.server.take() else { return };
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(server.pid() as libc::pid_t, signal);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while server.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        server.stop();
    }

    /// `CREATE DATABASE name`; returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        self.query("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(name))
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` with psql; returns its unaligned, tuples-only output
    /// (one row per line, columns separated by `|`).
    pub fn query(&self, database: &str, sql: &str) -> Result<String> {
        let psql = if self.bin.join("psql").is_file() { self.bin.join("psql") } else { PathBuf::from("psql") };
        let out = crate::process::clean_command(&psql)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", database])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .context("cannot run psql")?;
        if !out.status.success() {
            bail!("psql failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        self.crash();
    }
}

/// `$SEKISHO_POSTGRES_BIN`, or the newest `/usr/lib/postgresql/<version>/bin`.
fn server_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(ENV_POSTGRES_BIN) {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server binaries (initdb, postgres) in /usr/lib/postgresql/*/bin: \
             install Debian's postgresql package or set ${ENV_POSTGRES_BIN}"
        ),
    }
}

fn postgres_user() -> Result<(u32, u32)> {
    let name = CString::new("postgres").context("user name")?;
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy
    // the two fields at once, from this one thread.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!("running as root, and there is no `postgres` user to run the PostgreSQL server as");
    }
    // SAFETY: non-null, checked above.
    Ok(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("cannot chown {}", path.display()))
}
