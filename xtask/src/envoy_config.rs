//! The Envoy template (`envoy/sekisho.yaml.tmpl`) and how it becomes a
//! configuration: `${NAME}` placeholders replaced from [`EnvoyVars`], strictly.
//!
//! Strict because a placeholder left in YAML is valid YAML and only fails
//! later, inside Envoy, with a message about a port or a file that names no
//! placeholder. Here any placeholder without a value, and any value that could
//! change the YAML's structure, is an error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::describe;
use crate::workspace;

/// Everything the template needs.
#[derive(Debug, Clone)]
pub struct EnvoyVars {
    /// Public listener (MCP, OAuth, discovery).
    pub envoy_port: u16,
    /// Envoy's admin interface.
    pub envoy_admin_port: u16,
    /// `sekisho-authz`.
    pub authz_port: u16,
    /// The MCP server upstream.
    pub demo_port: u16,
    /// The filter module.
    pub wasm_path: PathBuf,
    /// How often the filter refreshes keys and policy from the service.
    pub filter_refresh_seconds: u32,
}

impl EnvoyVars {
    /// The filter's default refresh period.
    pub const DEFAULT_FILTER_REFRESH_SECONDS: u32 = 30;

    fn lookup(&self, name: &str) -> Option<String> {
        Some(match name {
            "ENVOY_PORT" => self.envoy_port.to_string(),
            "ENVOY_ADMIN_PORT" => self.envoy_admin_port.to_string(),
            "AUTHZ_PORT" => self.authz_port.to_string(),
            "DEMO_PORT" => self.demo_port.to_string(),
            "WASM_PATH" => self.wasm_path.to_string_lossy().into_owned(),
            "FILTER_REFRESH_SECONDS" => self.filter_refresh_seconds.to_string(),
            _ => return None,
        })
    }
}

/// Renders `template` with `vars`. Whole-line `#` comments are copied as they
/// are: they document the placeholders by name.
pub fn render(template: &str, vars: &EnvoyVars) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut unknown: Vec<&str> = Vec::new();
    for line in template.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            render_line(line, vars, &mut out, &mut unknown)?;
        }
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
                // Values land inside quoted or plain YAML scalars; these
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
        EnvoyVars {
            envoy_port: 1,
            envoy_admin_port: 2,
            authz_port: 3,
            demo_port: 4,
            wasm_path: PathBuf::from("/x/f.wasm"),
            filter_refresh_seconds: 5,
        }
    }

    #[test]
    fn replaces_every_placeholder() {
        let out = render("a ${ENVOY_PORT} b ${WASM_PATH}${DEMO_PORT}", &vars()).unwrap();
        assert_eq!(out, "a 1 b /x/f.wasm4");
    }

    #[test]
    fn refuses_placeholders_without_a_value() {
        let err = render("${ENVOY_PORT} ${NOPE} ${ALSO_NOPE}", &vars()).unwrap_err().to_string();
        assert!(err.contains("ALSO_NOPE, NOPE"), "{err}");
        assert!(render("${ENVOY_PORT", &vars()).is_err());
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
    }

    #[test]
    fn the_project_template_renders_completely() {
        let template = std::fs::read_to_string(workspace::envoy_template()).unwrap();
        let out = render(&template, &vars()).unwrap();
        let mut config_lines = out.lines().filter(|l| !l.trim_start().starts_with('#'));
        assert!(config_lines.all(|l| !l.contains("${")));
    }
}
