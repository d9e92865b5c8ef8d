//! The Envoy template (`envoy/sekisho.yaml.tmpl`) and how it becomes a
//! configuration: `${NAME}` placeholders replaced from [`EnvoyVars`], and
//! `#% if FLAG` … `#% end` sections kept or dropped, strictly.
//!
//! Strict because a placeholder left in YAML is valid YAML and only fails
//! later, inside Envoy, with a message about a port or a file that names no
//! placeholder. Here any placeholder or flag without a value, and any value
//! that could change the YAML's structure, is an error.
//!
//! One template serves every topology: the loopback stack of the tests and
//! `cargo xtask up` ([`EnvoyVars::loopback`]), with or without TLS and with
//! one or several service replicas, and the docker-compose example
//! ([`EnvoyVars::compose`], rendered into `examples/envoy-compose.yaml`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::describe;
use crate::workspace;

/// Everything the template needs.
#[derive(Debug, Clone)]
pub struct EnvoyVars {
    /// Where the public listener binds.
    pub listen_address: String,
    /// Public listener (MCP, OAuth, discovery).
    pub envoy_port: u16,
    /// Envoy's admin interface (always on 127.0.0.1).
    pub envoy_admin_port: u16,
    /// How Envoy resolves the upstream hosts.
    pub discovery: Discovery,
    /// `sekisho-authz` replicas; requests are spread round robin.
    pub authz: Vec<Upstream>,
    /// The MCP server upstream.
    pub demo: Upstream,
    /// The filter module.
    pub wasm_path: PathBuf,
    /// How often the filter refreshes keys and policy from the service.
    pub filter_refresh_seconds: u32,
    /// The listener's certificate and key; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Envoy's per-credential rate limit on the MCP routes.
    pub mcp_rate_limit: McpRateLimit,
}

/// The per-credential limit on `/mcp/` (Envoy's `local_ratelimit`, after the
/// filter authenticated the request): `requests` per `window_seconds` for
/// each token (client and subject) or API key, per Envoy process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpRateLimit {
    pub requests: u32,
    pub window_seconds: u32,
    /// Buckets kept at most; the least recently used are dropped beyond.
    pub max_credentials: u32,
}

impl McpRateLimit {
    /// How long one request's token takes to come back: Envoy refills the
    /// bucket continuously, `requests` per `window_seconds`.
    pub fn retry_after_seconds(&self) -> u32 {
        self.window_seconds.div_ceil(self.requests.max(1)).max(1)
    }
}

impl Default for McpRateLimit {
    fn default() -> Self {
        McpRateLimit { requests: 600, window_seconds: 60, max_credentials: 10_000 }
    }
}

/// A host and port Envoy forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
}

impl Upstream {
    pub fn new(host: &str, port: u16) -> Upstream {
        Upstream { host: host.to_owned(), port }
    }

    fn lb_endpoint(&self) -> String {
        format!(
            "{{ endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }} }}",
            self.host, self.port
        )
    }
}

/// Upstream addresses are IP addresses (`STATIC`) or names to resolve (`STRICT_DNS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    Static,
    StrictDns,
}

/// PEM files of the public listener's certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_chain: PathBuf,
    pub private_key: PathBuf,
}

impl EnvoyVars {
    /// The filter's default refresh period.
    pub const DEFAULT_FILTER_REFRESH_SECONDS: u32 = 30;

    /// Everything on 127.0.0.1 (the test stacks and `cargo xtask up`): one
    /// service replica, plain HTTP, the default refresh period.
    pub fn loopback(envoy_port: u16, envoy_admin_port: u16, authz_port: u16, demo_port: u16, wasm: &Path) -> EnvoyVars {
        EnvoyVars {
            listen_address: "127.0.0.1".to_owned(),
            envoy_port,
            envoy_admin_port,
            discovery: Discovery::Static,
            authz: vec![Upstream::new("127.0.0.1", authz_port)],
            demo: Upstream::new("127.0.0.1", demo_port),
            wasm_path: wasm.to_path_buf(),
            filter_refresh_seconds: Self::DEFAULT_FILTER_REFRESH_SECONDS,
            tls: None,
            mcp_rate_limit: McpRateLimit::default(),
        }
    }

    /// The docker-compose stack (`examples/docker-compose.yml`): upstreams
    /// are compose services found by name, the filter is where the Envoy
    /// image's Dockerfile puts it.
    pub fn compose() -> EnvoyVars {
        EnvoyVars {
            listen_address: "0.0.0.0".to_owned(),
            envoy_port: 8080,
            envoy_admin_port: 9901,
            discovery: Discovery::StrictDns,
            authz: vec![Upstream::new("authz", 9000)],
            demo: Upstream::new("demo-mcp", 9100),
            wasm_path: PathBuf::from(COMPOSE_WASM_PATH),
            filter_refresh_seconds: Self::DEFAULT_FILTER_REFRESH_SECONDS,
            tls: None,
            mcp_rate_limit: McpRateLimit::default(),
        }
    }

    /// The compose stack with HTTPS on Envoy's listener
    /// (`examples/docker-compose.tls.yml`): the certificate chain and key are
    /// mounted at [`COMPOSE_TLS_DIR`].
    pub fn compose_tls() -> EnvoyVars {
        let dir = Path::new(COMPOSE_TLS_DIR);
        let tls = TlsFiles { cert_chain: dir.join("server.pem"), private_key: dir.join("server.key") };
        EnvoyVars { tls: Some(tls), ..EnvoyVars::compose() }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        Some(match name {
            "LISTEN_ADDRESS" => self.listen_address.clone(),
            "ENVOY_PORT" => self.envoy_port.to_string(),
            "ENVOY_ADMIN_PORT" => self.envoy_admin_port.to_string(),
            "CLUSTER_TYPE" => match self.discovery {
                Discovery::Static => "STATIC".to_owned(),
                Discovery::StrictDns => "STRICT_DNS".to_owned(),
            },
            "AUTHZ_ENDPOINTS" => {
                let endpoints: Vec<String> = self.authz.iter().map(Upstream::lb_endpoint).collect();
                format!("[{}]", endpoints.join(", "))
            }
            "DEMO_HOST" => self.demo.host.clone(),
            "DEMO_PORT" => self.demo.port.to_string(),
            "WASM_PATH" => self.wasm_path.to_string_lossy().into_owned(),
            "FILTER_REFRESH_SECONDS" => self.filter_refresh_seconds.to_string(),
            "MCP_RATE_LIMIT_REQUESTS" => self.mcp_rate_limit.requests.to_string(),
            "MCP_RATE_LIMIT_WINDOW_SECONDS" => self.mcp_rate_limit.window_seconds.to_string(),
            "MCP_RATE_LIMIT_MAX_CREDENTIALS" => self.mcp_rate_limit.max_credentials.to_string(),
            "MCP_RATE_LIMIT_RETRY_AFTER_SECONDS" => self.mcp_rate_limit.retry_after_seconds().to_string(),
            "TLS_CERT_CHAIN" => self.tls.as_ref()?.cert_chain.to_string_lossy().into_owned(),
            "TLS_PRIVATE_KEY" => self.tls.as_ref()?.private_key.to_string_lossy().into_owned(),
            _ => return None,
        })
    }

    /// Host names go into a YAML flow list unquoted: nothing but a name or an address.
    fn check(&self) -> Result<()> {
        if self.authz.is_empty() {
            bail!("at least one sekisho-authz replica is needed");
        }
        let limit = self.mcp_rate_limit;
        if limit.requests == 0 || limit.window_seconds == 0 || limit.max_credentials == 0 {
            bail!("the MCP rate limit needs at least one request, one second and one credential: {limit:?}");
        }
        for upstream in self.authz.iter().chain([&self.demo]) {
            let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
            if upstream.host.is_empty() || !upstream.host.chars().all(plain) {
                bail!("upstream host {:?} is not a host name or IPv4 address", upstream.host);
            }
        }
        Ok(())
    }

    fn flag(&self, name: &str) -> Option<bool> {
        match name {
            "TLS" => Some(self.tls.is_some()),
            _ => None,
        }
    }
}

/// Where `examples/docker/Dockerfile` puts the filter in the Envoy image.
pub const COMPOSE_WASM_PATH: &str = "/etc/envoy/sekisho_filter.wasm";

/// Where `examples/docker-compose.tls.yml` mounts the listener's certificate and key.
pub const COMPOSE_TLS_DIR: &str = "/etc/envoy/tls";

/// The rendered compose configuration, committed so that compose needs no
/// renderer (`cargo xtask render-compose` writes it; a test checks it is current).
pub fn compose_config_path() -> PathBuf {
    workspace::root().join("examples").join("envoy-compose.yaml")
}

/// The same with TLS ([`EnvoyVars::compose_tls`]).
pub fn compose_tls_config_path() -> PathBuf {
    workspace::root().join("examples").join("envoy-compose-tls.yaml")
}

/// What `cargo xtask render-compose` writes to [`compose_config_path`]: the
/// template rendered with [`EnvoyVars::compose`], under a line saying so.
pub fn render_compose() -> Result<String> {
    render_generated(&EnvoyVars::compose())
}

/// What `cargo xtask render-compose` writes to [`compose_tls_config_path`].
pub fn render_compose_tls() -> Result<String> {
    render_generated(&EnvoyVars::compose_tls())
}

fn render_generated(vars: &EnvoyVars) -> Result<String> {
    let template_path = workspace::envoy_template();
    let template =
        std::fs::read_to_string(&template_path).with_context(|| format!("cannot read {}", template_path.display()))?;
    let rendered = render(&template, vars)?;
    Ok(format!(
        "# GENERATED by `cargo xtask render-compose` from envoy/sekisho.yaml.tmpl: edit the template.\n{rendered}"
    ))
}

const SECTION_START: &str = "#% if ";
const SECTION_END: &str = "#% end";

/// Renders `template` with `vars`. Whole-line `#` comments are copied as they
/// are: they document the placeholders by name. `#%` lines are directives.
pub fn render(template: &str, vars: &EnvoyVars) -> Result<String> {
    vars.check()?;
    let mut out = String::with_capacity(template.len());
    let mut unknown: Vec<&str> = Vec::new();
    // `Some(kept)` inside a section.
    let mut section: Option<bool> = None;
    for (number, line) in template.split_inclusive('\n').enumerate() {
        let directive = line.trim();
        if let Some(flag) = directive.strip_prefix(SECTION_START) {
            if section.is_some() {
                bail!("line {}: sections do not nest", number + 1);
            }
            let Some(kept) = vars.flag(flag.trim()) else {
                bail!("line {}: unknown section flag `{}`", number + 1, flag.trim());
            };
            section = Some(kept);
        } else if directive == SECTION_END {
            if section.take().is_none() {
                bail!("line {}: `{SECTION_END}` without `{SECTION_START}…`", number + 1);
            }
        } else if directive.starts_with("#%") {
            bail!("line {}: unknown directive `{directive}`", number + 1);
        } else if section == Some(false) {
            // Dropped with its placeholders: they need no value.
        } else if directive.starts_with('#') {
            out.push_str(line);
        } else {
            render_line(line, vars, &mut out, &mut unknown)?;
        }
    }
    if section.is_some() {
        bail!("a `{SECTION_START}…` section is never closed with `{SECTION_END}`");
    }
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        bail!("the Envoy template uses placeholders with no value: {}", unknown.join(", "));
    }
    Ok(out)
}

fn render_line<'t>(line: &'t str, vars: &EnvoyVars, out: &mut String, unknown: &mut Vec<&'t str>) -> Result<()> {
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            bail!("unterminated placeholder in `{}`", line.trim());
        };
        let name = &after[..end];
        match vars.lookup(name) {
            Some(value) => {
                // Values land inside quoted or plain YAML scalars (or, for
                // the endpoint list, a flow sequence built here); these
                // characters would end the scalar or start a comment.
                if value.contains(['"', '\\', '\n', '\r', '#']) {
                    bail!("value of ${{{name}}} contains a character the template cannot hold: {value:?}");
                }
                out.push_str(&value);
            }
            None => unknown.push(name),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(())
}

/// Reads the project's template, renders it and writes the result to `out`.
pub fn render_to_file(vars: &EnvoyVars, out: &Path) -> Result<()> {
    let template_path = workspace::envoy_template();
    let template =
        std::fs::read_to_string(&template_path).with_context(|| format!("cannot read {}", template_path.display()))?;
    let rendered = render(&template, vars).with_context(|| format!("rendering {}", template_path.display()))?;
    std::fs::write(out, rendered).with_context(|| format!("cannot write {}", out.display()))
}

/// `envoy --mode validate -c config`. Envoy's validate mode also loads the wasm
/// module (and refuses one without a proxy-wasm ABI), so the filter must exist.
pub fn validate(envoy: &Path, config: &Path) -> Result<()> {
    let mut cmd = Command::new(envoy);
    cmd.args(["--mode", "validate", "--disable-hot-restart", "-c"]).arg(config);
    let out = cmd.output().with_context(|| format!("cannot run `{}`", describe(&cmd)))?;
    if out.status.success() {
        return Ok(());
    }
    let mut message = format!("`{}` failed ({})", describe(&cmd), out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    // Envoy's own explanation is in its error and critical lines.
    for line in log.lines().filter(|l| l.contains("[error]") || l.contains("[critical]")) {
        let _ = write!(message, "\n  {line}");
    }
    if !message.contains('\n') {
        let _ = write!(message, "\n{log}{}", String::from_utf8_lossy(&out.stdout));
    }
    bail!(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> EnvoyVars {
        EnvoyVars { filter_refresh_seconds: 5, ..EnvoyVars::loopback(1, 2, 3, 4, Path::new("/x/f.wasm")) }
    }

    fn with_tls() -> EnvoyVars {
        let tls = TlsFiles { cert_chain: "/t/cert.pem".into(), private_key: "/t/key.pem".into() };
        EnvoyVars { tls: Some(tls), ..vars() }
    }

    #[test]
    fn replaces_every_placeholder() {
        let out = render("a ${ENVOY_PORT} b ${WASM_PATH}${DEMO_PORT} ${DEMO_HOST}", &vars()).unwrap();
        assert_eq!(out, "a 1 b /x/f.wasm4 127.0.0.1");
    }

    #[test]
    fn refuses_placeholders_without_a_value() {
        let err = render("${ENVOY_PORT} ${NOPE} ${ALSO_NOPE}", &vars()).unwrap_err().to_string();
        assert!(err.contains("ALSO_NOPE, NOPE"), "{err}");
        assert!(render("${ENVOY_PORT", &vars()).is_err());
        // TLS files have no value without TLS.
        assert!(render("${TLS_CERT_CHAIN}", &vars()).is_err());
    }

    #[test]
    fn leaves_comment_lines_alone() {
        let out = render("# ${ENVOY_PORT} is the port\nport: ${ENVOY_PORT} # ${DEMO_PORT}\n", &vars()).unwrap();
        assert_eq!(out, "# ${ENVOY_PORT} is the port\nport: 1 # 4\n");
    }

    #[test]
    fn refuses_values_that_would_break_the_yaml() {
        let mut v = vars();
        v.wasm_path = PathBuf::from("/x/\"evil\n.wasm");
        assert!(render("${WASM_PATH}", &v).is_err());
        let mut v = vars();
        v.authz.push(Upstream::new("a, b: c", 1));
        assert!(render("${AUTHZ_ENDPOINTS}", &v).is_err());
        v.authz.clear();
        assert!(render("x", &v).is_err());
    }

    #[test]
    fn sections_are_kept_only_when_their_flag_is_set() {
        let template = "a\n#% if TLS\ncert: ${TLS_CERT_CHAIN}\n#% end\nb\n";
        assert_eq!(render(template, &vars()).unwrap(), "a\nb\n");
        assert_eq!(render(template, &with_tls()).unwrap(), "a\ncert: /t/cert.pem\nb\n");
    }

    #[test]
    fn malformed_sections_are_refused() {
        for template in
            ["#% if TLS\n", "#% end\n", "#% if NOPE\n#% end\n", "#% if TLS\n#% if TLS\n#% end\n#% end\n", "#% else\n"]
        {
            assert!(render(template, &with_tls()).is_err(), "{template:?}");
        }
    }

    #[test]
    fn every_replica_becomes_an_endpoint() {
        let mut v = vars();
        v.authz.push(Upstream::new("127.0.0.1", 7));
        let out = render("${AUTHZ_ENDPOINTS}", &v).unwrap();
        assert_eq!(out.matches("endpoint:").count(), 2, "{out}");
        assert!(out.contains("port_value: 3 ") && out.contains("port_value: 7 "), "{out}");
    }

    #[test]
    fn the_project_template_renders_completely() {
        let template = std::fs::read_to_string(workspace::envoy_template()).unwrap();
        for v in [vars(), with_tls(), EnvoyVars::compose(), EnvoyVars::compose_tls()] {
            let out = render(&template, &v).unwrap();
            let mut config_lines = out.lines().filter(|l| !l.trim_start().starts_with('#'));
            assert!(config_lines.all(|l| !l.contains("${")));
        }
    }
}
