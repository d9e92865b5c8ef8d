//! The benchmark's table (stdout) and JSON (file), with every ratio the
//! targets are stated in.
//!
//! Every listener is measured once per round, and the rounds interleave the
//! listeners, so slow drift of this virtual machine's CPU lands on all of them
//! alike. A ratio is taken within each round (two runs seconds apart) and the
//! median of those is reported with its spread: one noisy run moves the
//! spread, not the figure.

use serde::Serialize;

use crate::instructions::Counted;
use crate::memory::Memory;
use crate::wrk::WrkResult;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    /// `hot` (one repeated credential), `cold` (a new token per request),
    /// `latency` (one connection), or a service endpoint.
    pub path: String,
    pub round: u32,
    pub connections: u32,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub requests: u64,
    /// The server's CPU time per request (Envoy with every thread, or the
    /// OAuth server), in microseconds; `None` when it could not be read.
    pub server_cpu_us: Option<f64>,
}

impl Row {
    pub fn new(name: &str, path: &str, round: u32, connections: u32, r: WrkResult) -> Row {
        Row {
            name: name.into(),
            path: path.into(),
            round,
            connections,
            rps: r.rps(),
            p50_us: r.p50_us,
            p99_us: r.p99_us,
            requests: r.requests,
            server_cpu_us: None,
        }
    }

    pub fn with_server_cpu(mut self, us_per_request: Option<f64>) -> Row {
        self.server_cpu_us = us_per_request;
        self
    }
}

/// One listener and path over every round: medians.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub name: String,
    pub path: String,
    pub connections: u32,
    pub rounds: usize,
    pub rps: f64,
    pub rps_min: f64,
    pub rps_max: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// Median server CPU time per request, µs.
    pub server_cpu_us: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub what: String,
    /// Median of the per-round ratios.
    pub value: f64,
    pub min: f64,
    pub max: f64,
    pub rounds: usize,
    /// `None` for ratios that explain the others (the wasm floor) and have no target.
    pub target: Option<f64>,
    pub met: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub cores: usize,
    pub seconds_per_run: u32,
    pub connections: u32,
    pub rounds: u32,
    pub summary: Vec<Summary>,
    pub ratios: Vec<Ratio>,
    /// Every run, in the order it ran.
    pub rows: Vec<Row>,
    pub envoy_rss_after_runs_kib: Option<u64>,
    pub memory: Option<Memory>,
    /// With `--instructions`: callgrind's counts instead of timed filter runs.
    pub instructions: Vec<Counted>,
    pub notes: Vec<String>,
}

/// The ratios the targets are stated in: (label, numerator, denominator, target).
type RatioSpec = (&'static str, (&'static str, &'static str), (&'static str, &'static str), Option<f64>);

const RATIOS: [RatioSpec; 12] = [
    ("hot: sekisho_jwt / no_auth", ("sekisho_jwt", "hot"), ("no_auth", "hot"), Some(0.95)),
    ("hot: sekisho_jwt / jwt_authn_cache", ("sekisho_jwt", "hot"), ("jwt_authn_cache", "hot"), Some(1.0)),
    ("cold: sekisho_jwt / jwt_authn (no cache)", ("sekisho_jwt", "cold"), ("jwt_authn", "cold"), Some(1.0)),
    ("hot: sekisho_api_key / no_auth", ("sekisho_api_key", "hot"), ("no_auth", "hot"), Some(0.95)),
    // What any proxy-wasm filter costs, and what Sekisho adds to that.
    ("hot: wasm_floor / no_auth", ("wasm_floor", "hot"), ("no_auth", "hot"), None),
    ("hot: sekisho_jwt / wasm_floor", ("sekisho_jwt", "hot"), ("wasm_floor", "hot"), None),
    // What taking the credential out and the identity in costs through the ABI,
    // and what Sekisho's decisions add to that.
    ("hot: wasm_rewrite / no_auth", ("wasm_rewrite", "hot"), ("no_auth", "hot"), None),
    ("hot: sekisho_jwt / wasm_rewrite", ("sekisho_jwt", "hot"), ("wasm_rewrite", "hot"), None),
    // With --baseline-wasm: what a change to the filter did, within each round.
    ("hot: sekisho_jwt / sekisho_baseline", ("sekisho_jwt", "hot"), ("sekisho_baseline", "hot"), None),
    (
        "token (client_credentials): sekisho / oidc-provider",
        ("sekisho_authz", "token"),
        ("oidc_provider", "token"),
        Some(3.0),
    ),
    ("register (DCR): sekisho / oidc-provider", ("sekisho_authz", "register"), ("oidc_provider", "register"), None),
    ("discovery: sekisho / oidc-provider", ("sekisho_authz", "discovery"), ("oidc_provider", "discovery"), None),
];

impl Report {
    pub fn new(cores: usize, seconds_per_run: u32, connections: u32, rounds: u32) -> Report {
        Report {
            cores,
            seconds_per_run,
            connections,
            rounds,
            summary: vec![],
            ratios: vec![],
            rows: vec![],
            envoy_rss_after_runs_kib: None,
            memory: None,
            instructions: vec![],
            notes: vec![],
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
        self.summarise();
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub fn set_envoy_rss_kib(&mut self, kib: Option<u64>) {
        self.envoy_rss_after_runs_kib = kib;
    }

    pub fn set_instructions(&mut self, counted: Vec<Counted>) {
        self.instructions = counted;
    }

    pub fn set_memory(&mut self, m: Memory) {
        self.memory = Some(m);
    }

    fn rps(&self, (name, path): (&str, &str), round: u32) -> Option<f64> {
        self.rows.iter().find(|r| r.name == name && r.path == path && r.round == round).map(|r| r.rps)
    }

    fn summarise(&mut self) {
        let mut keys: Vec<(String, String, u32)> = vec![];
        for r in &self.rows {
            if !keys.iter().any(|(n, p, c)| *n == r.name && *p == r.path && *c == r.connections) {
                keys.push((r.name.clone(), r.path.clone(), r.connections));
            }
        }
        self.summary = keys
            .into_iter()
            .map(|(name, path, connections)| {
                let runs: Vec<&Row> = self.rows.iter().filter(|r| r.name == name && r.path == path).collect();
                let rps: Vec<f64> = runs.iter().map(|r| r.rps).collect();
                let cpu: Vec<f64> = runs.iter().filter_map(|r| r.server_cpu_us).collect();
                Summary {
                    server_cpu_us: (!cpu.is_empty()).then(|| median(&cpu)),
                    rounds: runs.len(),
                    rps: median(&rps),
                    rps_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
                    rps_max: rps.iter().copied().fold(0.0, f64::max),
                    p50_us: median_u64(runs.iter().map(|r| r.p50_us)),
                    p99_us: median_u64(runs.iter().map(|r| r.p99_us)),
                    name,
                    path,
                    connections,
                }
            })
            .collect();
        let rounds: Vec<u32> = {
            let mut r: Vec<u32> = self.rows.iter().map(|r| r.round).collect();
            r.sort_unstable();
            r.dedup();
            r
        };
        self.ratios = RATIOS
            .iter()
            .filter_map(|(what, a, b, target)| {
                let per_round: Vec<f64> =
                    rounds.iter().filter_map(|&round| Some(self.rps(*a, round)? / self.rps(*b, round)?)).collect();
                if per_round.is_empty() {
                    return None;
                }
                let value = median(&per_round);
                Some(Ratio {
                    what: (*what).into(),
                    value,
                    min: per_round.iter().copied().fold(f64::INFINITY, f64::min),
                    max: per_round.iter().copied().fold(0.0, f64::max),
                    rounds: per_round.len(),
                    target: *target,
                    met: target.map(|t| value >= t),
                })
            })
            .collect();
    }

    pub fn table(&self) -> String {
        if self.rows.is_empty() {
            // `--instructions`: nothing was timed.
            let mut out = crate::instructions::table(&self.instructions);
            for n in &self.notes {
                out.push_str(&format!("note: {n}\n"));
            }
            return out;
        }
        let mut out = format!(
            "\nSekisho benchmark: Envoy (1 worker) or the OAuth server on core 0, wrk on core 1, {} s per run, \
             {} rounds, {} cores\n(medians over the rounds; req/s range = slowest..fastest round; cpu = the server's CPU time per request)\n\n",
            self.seconds_per_run, self.rounds, self.cores
        );
        out.push_str(&format!(
            "{:<18} {:<9} {:>4} {:>9} {:>17} {:>9} {:>9} {:>11}\n",
            "listener", "path", "conn", "req/s", "range", "p50 µs", "p99 µs", "cpu µs/req"
        ));
        for s in &self.summary {
            out.push_str(&format!(
                "{:<18} {:<9} {:>4} {:>9.0} {:>17} {:>9} {:>9} {:>11}\n",
                s.name,
                s.path,
                s.connections,
                s.rps,
                format!("{:.0}..{:.0}", s.rps_min, s.rps_max),
                s.p50_us,
                s.p99_us,
                s.server_cpu_us.map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"))
            ));
        }
        out.push_str("\nratios (median of per-round ratios, [min..max], target):\n");
        for r in &self.ratios {
            let verdict = match (r.target, r.met) {
                (Some(t), Some(true)) => format!("(≥ {t:.2}) met"),
                (Some(t), _) => format!("(≥ {t:.2}) NOT met"),
                (None, _) => "(no target)".to_owned(),
            };
            out.push_str(&format!("  {:<52} {:>6.3}  [{:.3}..{:.3}]  {verdict}\n", r.what, r.value, r.min, r.max));
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

/// The middle value (the mean of the two middle values for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    let v: Vec<f64> = values.map(|x| x as f64).collect();
    median(&v).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rps: u64) -> WrkResult {
        WrkResult { requests: rps, duration_us: 1_000_000, errors: 0, non2xx: 0, p50_us: 100, p99_us: 900 }
    }

    #[test]
    fn a_ratio_is_the_median_of_per_round_ratios() {
        let mut report = Report::new(2, 1, 32, 3);
        // Round 1 is slow for everyone; round 2 has one outlier run.
        for (round, no_auth, jwt) in [(0, 1000, 900), (1, 500, 460), (2, 1000, 600)] {
            report.push(Row::new("no_auth", "hot", round, 32, result(no_auth)));
            report.push(Row::new("sekisho_jwt", "hot", round, 32, result(jwt)));
        }
        let ratio = report.ratios.iter().find(|r| r.what == "hot: sekisho_jwt / no_auth").unwrap();
        assert_eq!(ratio.rounds, 3);
        assert!((ratio.value - 0.9).abs() < 1e-9, "{}", ratio.value);
        assert!((ratio.min - 0.6).abs() < 1e-9 && (ratio.max - 0.92).abs() < 1e-9);
        assert_eq!(ratio.met, Some(false));
        let no_auth = report.summary.iter().find(|s| s.name == "no_auth").unwrap();
        assert_eq!((no_auth.rps, no_auth.rps_min, no_auth.rps_max), (1000.0, 500.0, 1000.0));
    }

    #[test]
    fn server_cpu_is_the_median_of_the_runs_that_read_it() {
        let mut report = Report::new(2, 1, 32, 3);
        for (round, cpu) in [(0, Some(60.0)), (1, None), (2, Some(80.0))] {
            report.push(Row::new("sekisho_jwt", "hot", round, 32, result(1000)).with_server_cpu(cpu));
        }
        report.push(Row::new("no_auth", "hot", 0, 32, result(1000)));
        let cpu = |name: &str| report.summary.iter().find(|s| s.name == name).unwrap().server_cpu_us;
        assert_eq!(cpu("sekisho_jwt"), Some(70.0));
        assert_eq!(cpu("no_auth"), None);
        let table = report.table();
        let row = table.lines().find(|l| l.starts_with("no_auth")).unwrap();
        assert!(row.trim_end().ends_with('-'), "{row}");
    }

    #[test]
    fn a_ratio_needs_both_sides_in_the_same_round() {
        let mut report = Report::new(2, 1, 32, 2);
        report.push(Row::new("no_auth", "hot", 0, 32, result(1000)));
        report.push(Row::new("sekisho_jwt", "hot", 1, 32, result(1000)));
        assert!(report.ratios.iter().all(|r| r.what != "hot: sekisho_jwt / no_auth"));
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
