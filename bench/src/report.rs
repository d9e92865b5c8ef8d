//! The benchmark's table (stdout) and JSON (file), with every ratio the
//! targets are stated in.

use serde::Serialize;

use crate::memory::Memory;
use crate::wrk::WrkResult;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    /// `hot` (one repeated credential), `cold` (a new token per request), `latency` (one connection).
    pub path: String,
    pub connections: u32,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub requests: u64,
}

impl Row {
    pub fn new(name: &str, path: &str, connections: u32, r: WrkResult) -> Row {
        Row {
            name: name.into(),
            path: path.into(),
            connections,
            rps: r.rps(),
            p50_us: r.p50_us,
            p99_us: r.p99_us,
            requests: r.requests,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub what: String,
    pub value: f64,
    /// `None` for ratios that explain the others (the wasm floor) and have no target.
    pub target: Option<f64>,
    pub met: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub cores: usize,
    pub seconds_per_run: u32,
    pub connections: u32,
    pub rows: Vec<Row>,
    pub ratios: Vec<Ratio>,
    pub envoy_rss_after_runs_kib: Option<u64>,
    pub memory: Option<Memory>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(cores: usize, seconds_per_run: u32, connections: u32) -> Report {
        Report {
            cores,
            seconds_per_run,
            connections,
            rows: vec![],
            ratios: vec![],
            envoy_rss_after_runs_kib: None,
            memory: None,
            notes: vec![],
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
        self.compute_ratios();
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub fn set_envoy_rss_kib(&mut self, kib: Option<u64>) {
        self.envoy_rss_after_runs_kib = kib;
    }

    pub fn set_memory(&mut self, m: Memory) {
        self.memory = Some(m);
    }

    fn rps(&self, name: &str, path: &str) -> Option<f64> {
        self.rows.iter().find(|r| r.name == name && r.path == path).map(|r| r.rps)
    }

    fn compute_ratios(&mut self) {
        let targets = [
            ("hot: sekisho_jwt / no_auth", ("sekisho_jwt", "hot"), ("no_auth", "hot"), Some(0.95)),
            ("hot: sekisho_jwt / jwt_authn_cache", ("sekisho_jwt", "hot"), ("jwt_authn_cache", "hot"), Some(1.0)),
            ("cold: sekisho_jwt / jwt_authn (no cache)", ("sekisho_jwt", "cold"), ("jwt_authn", "cold"), Some(1.0)),
            ("hot: sekisho_api_key / no_auth", ("sekisho_api_key", "hot"), ("no_auth", "hot"), Some(0.95)),
            // What any proxy-wasm filter costs, and what Sekisho adds to that.
            ("hot: wasm_floor / no_auth", ("wasm_floor", "hot"), ("no_auth", "hot"), None),
            ("hot: sekisho_jwt / wasm_floor", ("sekisho_jwt", "hot"), ("wasm_floor", "hot"), None),
            (
                "token (client_credentials): sekisho / oidc-provider",
                ("sekisho_authz", "token"),
                ("oidc_provider", "token"),
                Some(3.0),
            ),
            (
                "register (DCR): sekisho / oidc-provider",
                ("sekisho_authz", "register"),
                ("oidc_provider", "register"),
                Some(3.0),
            ),
            (
                "discovery: sekisho / oidc-provider",
                ("sekisho_authz", "discovery"),
                ("oidc_provider", "discovery"),
                None,
            ),
        ];
        self.ratios = targets
            .iter()
            .filter_map(|(what, a, b, target)| {
                let value = self.rps(a.0, a.1)? / self.rps(b.0, b.1)?;
                Some(Ratio { what: (*what).into(), value, target: *target, met: target.map(|t| value >= t) })
            })
            .collect();
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "\nSekisho benchmark: Envoy (1 worker) or the OAuth server on core 0, wrk on core 1, {} s per run, {} cores\n\n",
            self.seconds_per_run, self.cores
        );
        out.push_str(&format!(
            "{:<18} {:<8} {:>4} {:>10} {:>9} {:>9}\n",
            "listener", "path", "conn", "req/s", "p50 µs", "p99 µs"
        ));
        for r in &self.rows {
            out.push_str(&format!(
                "{:<18} {:<8} {:>4} {:>10.0} {:>9} {:>9}\n",
                r.name, r.path, r.connections, r.rps, r.p50_us, r.p99_us
            ));
        }
        out.push_str("\nratios (target):\n");
        for r in &self.ratios {
            let verdict = match (r.target, r.met) {
                (Some(t), Some(true)) => format!("(≥ {t:.2}) met"),
                (Some(t), _) => format!("(≥ {t:.2}) NOT met"),
                (None, _) => "(no target: explains the others)".to_owned(),
            };
            out.push_str(&format!("  {:<44} {:>6.3}  {verdict}\n", r.what, r.value));
        }
        if let Some(m) = &self.memory {
            out.push_str(&format!(
                "\nEnvoy RSS, 1 worker: {} KiB without the filter, {} KiB with it; one more worker VM: {} KiB\n",
                m.without_filter_kib, m.with_filter_kib, m.per_worker_vm_kib
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }
}
