//! Runs `wrk` (pinned to its own core) and reads its summary, which a small
//! Lua `done` hook prints as one JSON line.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct WrkResult {
    pub requests: u64,
    pub duration_us: u64,
    pub errors: u64,
    pub non2xx: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

impl WrkResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
}

/// What each request carries.
#[derive(Clone, Copy)]
pub enum Load<'a> {
    /// The same headers on every request (hot path).
    Same(&'a [(&'a str, String)]),
    /// `Authorization: Bearer <line>` from a file, a new line per request
    /// (cold path), starting at the given line.
    BearerFromFile(&'a Path, usize),
    /// Any request, the same every time (the service endpoints).
    Request { method: &'a str, headers: &'a [(&'a str, String)], body: &'a str },
}

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

pub struct Wrk<'a> {
    pub cpu: Option<u32>,
    pub seconds: u32,
    pub connections: u32,
    pub work_dir: &'a Path,
}

impl Wrk<'_> {
    /// The warm-up before a measured run (V8's JIT, caches, connections):
    /// longer in the first round, as V8 compiles the module lazily.
    pub fn warm_up(&self, round: u32) -> Self {
        Wrk { seconds: if round == 0 { 2 } else { 1 }, ..*self }
    }

    /// [`Wrk::run`], and the CPU time per request of the server process `pid`.
    pub fn run_measuring(
        &self,
        url: &str,
        load: Load<'_>,
        connections: Option<u32>,
        pid: u32,
    ) -> Result<(WrkResult, Option<f64>)> {
        let before = crate::cpu::cpu_time(pid).ok();
        let result = self.run(url, load, connections)?;
        let after = crate::cpu::cpu_time(pid).ok();
        let cpu = before.zip(after).and_then(|(b, a)| crate::cpu::per_request_us(b, a, result.requests));
        Ok((result, cpu))
    }

    pub fn run(&self, url: &str, load: Load<'_>, connections: Option<u32>) -> Result<WrkResult> {
        let script = self.work_dir.join("load.lua");
        std::fs::write(&script, lua(load)).context("writing the wrk script")?;
        let connections = connections.unwrap_or(self.connections);
        let mut cmd = match self.cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string(), "wrk"]);
                c
            }
            None => Command::new("wrk"),
        };
        cmd.args(["-t1", &format!("-c{connections}"), &format!("-d{}s", self.seconds), "--timeout", "5s", "-s"])
            .arg(&script)
            .arg(url);
        let out = cmd.output().context("running wrk (apt-get install wrk)")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!("wrk failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
        }
        let line = stdout.lines().rev().find(|l| l.starts_with("{\"requests\"")).context("no summary from wrk")?;
        let result: WrkResult = serde_json::from_str(line).context("reading wrk's summary")?;
        if result.non2xx > 0 || result.errors > 0 {
            bail!(
                "{url}: {} non-2xx answers and {} socket errors: the run does not count",
                result.non2xx,
                result.errors
            );
        }
        Ok(result)
    }
}

/// Lua that sets wrk's one fixed request (method, `headers`, and the body in
/// the Lua variable `body_var`), so no Lua runs per request.
fn fixed(method: &str, body_var: &str) -> String {
    format!(
        "wrk.method = '{method}'\nwrk.body = {body_var}\nfor k, v in pairs(headers) do wrk.headers[k] = v end\n\
         if wrk.body == '' then wrk.body = nil end\n"
    )
}

/// `s` inside a single-quoted Lua string.
fn lua_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

fn lua(load: Load<'_>) -> String {
    let done = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"#;
    let body = format!("local body = '{}'\n", lua_escape(BODY));
    let request = match load {
        Load::Request { method, headers, body } => {
            let mut h = String::from("local headers = {}\n");
            for (name, value) in headers {
                h.push_str(&format!("headers['{name}'] = '{}'\n", lua_escape(value)));
            }
            // Built once: wrk sends the same bytes without calling Lua per request.
            format!("{h}local payload = '{}'\n{}", lua_escape(body), fixed(method, "payload"))
        }
        Load::Same(headers) => {
            let mut h = String::from(
                "local headers = {['Content-Type'] = 'application/json', ['Accept'] = 'application/json, text/event-stream'}\n",
            );
            for (name, value) in headers {
                h.push_str(&format!("headers['{name}'] = '{value}'\n"));
            }
            format!("{h}{}", fixed("POST", "body"))
        }
        Load::BearerFromFile(path, start) => format!(
            r#"local tokens = {{}}
for line in io.lines('{}') do tokens[#tokens + 1] = line end
local i = {start}
local headers = {{['Content-Type'] = 'application/json', ['Accept'] = 'application/json, text/event-stream'}}
request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  headers['Authorization'] = 'Bearer ' .. tokens[i]
  return wrk.format('POST', nil, headers, body)
end
"#,
            path.display(),
            start = start
        ),
    };
    format!("{body}{request}{done}")
}
