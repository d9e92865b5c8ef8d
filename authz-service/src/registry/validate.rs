//! Validation of instance settings before they are stored. What passes here is
//! safe to put in a path, a header, a log line and the filter's policy.

use std::collections::BTreeMap;

use sekisho_contract::resource::{MAX_INSTANCE_ID, is_valid_instance_id};
use sekisho_contract::scope::{OFFLINE_ACCESS, ScopeSet};

use crate::error::{Error, Result};
use crate::registry::InstanceSpec;

const MAX_DISPLAY_NAME: usize = 200;
const MAX_NAME: usize = 128;
const MAX_ENTRIES: usize = 256;

pub fn instance(id: &str, spec: &InstanceSpec) -> Result<()> {
    if !is_valid_instance_id(id) {
        return Err(Error::invalid_request(format!(
            "instance id must be 1 to {MAX_INSTANCE_ID} characters of A-Z, a-z, 0-9, `-` and `_`"
        )));
    }
    if let Some(name) = &spec.display_name {
        let length = name.chars().count();
        if length == 0 || length > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
            return Err(Error::invalid_request(format!(
                "display_name must be 1 to {MAX_DISPLAY_NAME} characters without control characters"
            )));
        }
    }
    scope_map("method_scopes", "method", &spec.method_scopes)?;
    scope_map("tool_scopes", "tool", &spec.tool_scopes)
}

fn scope_map(field: &str, what: &str, map: &BTreeMap<String, String>) -> Result<()> {
    if map.len() > MAX_ENTRIES {
        return Err(Error::invalid_request(format!("{field} has more than {MAX_ENTRIES} entries")));
    }
    for (name, scope) in map {
        if name.is_empty() || name.len() > MAX_NAME || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid_request(format!(
                "{field}: a {what} name must be 1 to {MAX_NAME} visible ASCII characters"
            )));
        }
        let parsed =
            ScopeSet::parse(scope).map_err(|e| Error::invalid_request(format!("{field}: scope of `{name}`: {e}")))?;
        if parsed.iter().count() != 1 {
            return Err(Error::invalid_request(format!("{field}: `{name}` must map to exactly one scope")));
        }
        if parsed.contains(OFFLINE_ACCESS) {
            return Err(Error::invalid_request(format!(
                "{field}: `{OFFLINE_ACCESS}` asks for a refresh token; it is not a resource scope"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_tool(tool: &str, scope: &str) -> InstanceSpec {
        let mut spec = InstanceSpec::default();
        spec.tool_scopes.insert(tool.into(), scope.into());
        spec
    }

    #[test]
    fn accepts_plain_settings() {
        assert!(instance("demo", &InstanceSpec::default()).is_ok());
        assert!(instance("a-b_C9", &spec_with_tool("deploy", "ops:deploy")).is_ok());
    }

    #[test]
    fn refuses_bad_ids_names_and_scopes() {
        assert!(instance("", &InstanceSpec::default()).is_err());
        assert!(instance("de/mo", &InstanceSpec::default()).is_err());
        assert!(instance(&"x".repeat(65), &InstanceSpec::default()).is_err());
        let named = InstanceSpec { display_name: Some("bad\nname".into()), ..Default::default() };
        assert!(instance("demo", &named).is_err());
        assert!(instance("demo", &spec_with_tool("deploy", "mcp:read mcp:write")).is_err());
        assert!(instance("demo", &spec_with_tool("deploy", "")).is_err());
        assert!(instance("demo", &spec_with_tool("deploy", "a\"b")).is_err());
        assert!(instance("demo", &spec_with_tool("deploy", "offline_access")).is_err());
        assert!(instance("demo", &spec_with_tool("has space", "mcp:read")).is_err());
    }
}
