//! Client metadata (RFC 7591 §2): what a registration request may say, the
//! defaults RFC 7591 gives what it leaves out, and the checks every client
//! passes — registered by DCR, by an operator, or described by a Client ID
//! Metadata Document.
//!
//! Parsing is lenient on purpose: real clients send minimal bodies (the
//! TypeScript SDK), `null` for absent fields and OIDC's `application_type`
//! (the Python SDK), and fields we do not know, which RFC 7591 §2 says to
//! ignore. The checks are strict: a value we accept is one we can honour.

use sekisho_contract::scope::ScopeSet;
use serde::{Deserialize, Serialize};

use crate::clients::redirect_uri;
use crate::error::{Error, ErrorCode};

const MAX_TEXT: usize = 200;
const MAX_URI: usize = 2000;
const MAX_REDIRECT_URIS: usize = 20;
const MAX_CONTACTS: usize = 10;

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client: no secret, PKCE binds its codes.
    None,
}

impl AuthMethod {
    pub const SUPPORTED: [&'static str; 3] = ["client_secret_basic", "client_secret_post", "none"];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<AuthMethod> {
        [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost, AuthMethod::None]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] =
        [GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// The metadata of a client after defaults and checks: what is stored, and
/// what registration responses echo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// The scopes the client may ask for; `None` means no restriction beyond
    /// what the instances offer (authorization code) or the configured default
    /// scope (client credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// OIDC Dynamic Client Registration: `web` or `native`. Recorded, not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
}

impl ClientMetadata {
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == AuthMethod::None
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    pub fn registered_scope(&self) -> Option<ScopeSet> {
        self.scope.as_deref().and_then(|s| ScopeSet::parse(s).ok())
    }
}

/// A registration request as clients send it. Every field is optional, `null`
/// counts as absent, and unknown fields are ignored (RFC 7591 §2).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub client_uri: Option<String>,
    #[serde(default)]
    pub logo_uri: Option<String>,
    #[serde(default)]
    pub tos_uri: Option<String>,
    #[serde(default)]
    pub policy_uri: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub contacts: Option<Vec<String>>,
    #[serde(default)]
    pub software_id: Option<String>,
    #[serde(default)]
    pub software_version: Option<String>,
    #[serde(default)]
    pub application_type: Option<String>,
    /// Only meaningful in RFC 7592 updates and metadata documents.
    #[serde(default)]
    pub client_id: Option<String>,
    /// RFC 7592 updates may echo it; a metadata document must not carry one.
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// Who is describing the client; each may ask for different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrar {
    /// Anyone, through `POST /oauth/register`: user-facing grants only, since
    /// an open endpoint must not hand out machine credentials.
    Dynamic,
    /// An operator, through the CLI: any grant, including client credentials.
    Operator,
    /// A Client ID Metadata Document: a public client (no shared secret).
    MetadataDocument,
}

/// Why metadata was refused, in RFC 7591 terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataError {
    pub code: ErrorCode,
    pub description: String,
}

impl MetadataError {
    fn metadata(description: impl Into<String>) -> Self {
        MetadataError { code: ErrorCode::InvalidClientMetadata, description: description.into() }
    }

    fn redirect(description: impl Into<String>) -> Self {
        MetadataError { code: ErrorCode::InvalidRedirectUri, description: description.into() }
    }
}

impl From<MetadataError> for Error {
    fn from(e: MetadataError) -> Self {
        Error::refused(e.code, e.description)
    }
}

/// Applies RFC 7591 defaults and checks the result.
pub fn validate(request: RegistrationRequest, registrar: Registrar) -> Result<ClientMetadata, MetadataError> {
    let default_method = match registrar {
        Registrar::MetadataDocument => AuthMethod::None,
        // RFC 7591 §2: the default is client_secret_basic.
        Registrar::Dynamic | Registrar::Operator => AuthMethod::ClientSecretBasic,
    };
    let token_endpoint_auth_method = match request.token_endpoint_auth_method.as_deref() {
        None => default_method,
        Some(method) => AuthMethod::parse(method).ok_or_else(|| {
            MetadataError::metadata(format!(
                "token_endpoint_auth_method `{method}` is not supported; use one of {}",
                AuthMethod::SUPPORTED.join(", ")
            ))
        })?,
    };
    if registrar == Registrar::MetadataDocument && token_endpoint_auth_method != AuthMethod::None {
        return Err(MetadataError::metadata(
            "a client described by a metadata document has no shared secret; its token_endpoint_auth_method must be none",
        ));
    }

    let grant_types = match request.grant_types {
        None => vec![GrantType::AuthorizationCode],
        Some(names) => {
            let mut grants = Vec::new();
            for name in &names {
                let grant = GrantType::parse(name)
                    .ok_or_else(|| MetadataError::metadata(format!("grant type `{name}` is not supported")))?;
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
            grants
        }
    };
    if grant_types.is_empty() {
        return Err(MetadataError::metadata("grant_types must not be empty"));
    }
    if grant_types.contains(&GrantType::ClientCredentials) {
        if registrar != Registrar::Operator {
            return Err(MetadataError::metadata(
                "client_credentials clients are registered by an operator (sekisho-authz clients register)",
            ));
        }
        if token_endpoint_auth_method == AuthMethod::None {
            return Err(MetadataError::metadata("client_credentials needs a confidential client"));
        }
    }

    let response_types = match request.response_types {
        None => {
            if grant_types.contains(&GrantType::AuthorizationCode) {
                vec!["code".to_owned()]
            } else {
                Vec::new()
            }
        }
        Some(types) => {
            if let Some(other) = types.iter().find(|t| t.as_str() != "code") {
                return Err(MetadataError::metadata(format!("response type `{other}` is not supported; only code is")));
            }
            let mut types = types;
            types.dedup();
            types
        }
    };
    if grant_types.contains(&GrantType::AuthorizationCode) && response_types.is_empty() {
        return Err(MetadataError::metadata("the authorization_code grant needs the response type code"));
    }

    let redirect_uris = request.redirect_uris.unwrap_or_default();
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(MetadataError::redirect(format!("at most {MAX_REDIRECT_URIS} redirect URIs")));
    }
    for uri in &redirect_uris {
        redirect_uri::validate(uri).map_err(|why| MetadataError::redirect(format!("{uri}: {why}")))?;
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(MetadataError::redirect("redirect_uris is required for the authorization_code grant"));
    }

    let scope = match request.scope {
        None => None,
        Some(s) => {
            let parsed = ScopeSet::parse(&s).map_err(|e| MetadataError::metadata(format!("scope: {e}")))?;
            (!parsed.is_empty()).then(|| parsed.to_string())
        }
    };

    let application_type = match request.application_type.as_deref() {
        None => None,
        Some(t @ ("web" | "native")) => Some(t.to_owned()),
        Some(other) => {
            return Err(MetadataError::metadata(format!("application_type `{other}` is neither web nor native")));
        }
    };

    let contacts = match request.contacts {
        None => None,
        Some(contacts) => {
            if contacts.len() > MAX_CONTACTS {
                return Err(MetadataError::metadata(format!("at most {MAX_CONTACTS} contacts")));
            }
            for contact in &contacts {
                text("contacts", contact)?;
            }
            Some(contacts)
        }
    };

    Ok(ClientMetadata {
        redirect_uris,
        token_endpoint_auth_method,
        grant_types,
        response_types,
        client_name: optional_text("client_name", request.client_name)?,
        client_uri: web_uri("client_uri", request.client_uri)?,
        logo_uri: web_uri("logo_uri", request.logo_uri)?,
        tos_uri: web_uri("tos_uri", request.tos_uri)?,
        policy_uri: web_uri("policy_uri", request.policy_uri)?,
        scope,
        contacts,
        software_id: optional_text("software_id", request.software_id)?,
        software_version: optional_text("software_version", request.software_version)?,
        application_type,
    })
}

/// Text shown to people: bounded, no control characters.
fn text(field: &str, value: &str) -> Result<(), MetadataError> {
    let length = value.chars().count();
    if length == 0 || length > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(MetadataError::metadata(format!(
            "{field} must be 1 to {MAX_TEXT} characters without control characters"
        )));
    }
    Ok(())
}

fn optional_text(field: &str, value: Option<String>) -> Result<Option<String>, MetadataError> {
    match value {
        None => Ok(None),
        Some(v) => text(field, &v).map(|()| Some(v)),
    }
}

/// `client_uri`, `logo_uri` and the like: http(s) URLs, recorded, never fetched.
fn web_uri(field: &str, value: Option<String>) -> Result<Option<String>, MetadataError> {
    let Some(v) = value else { return Ok(None) };
    // The URL parser would quietly drop or encode whitespace and control
    // characters; the string we store and show must be the one it checked.
    let ok = v.len() <= MAX_URI
        && !v.chars().any(|c| c.is_control() || c.is_whitespace())
        && url::Url::parse(&v).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
    if ok { Ok(Some(v)) } else { Err(MetadataError::metadata(format!("{field} must be an http or https URL"))) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(value: serde_json::Value) -> RegistrationRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_minimal_body_gets_the_rfc_defaults() {
        let m = validate(request(json!({"redirect_uris": ["http://localhost:3000/cb"]})), Registrar::Dynamic).unwrap();
        assert_eq!(m.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(m.response_types, vec!["code"]);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert!(m.scope.is_none() && m.client_name.is_none());
    }

    #[test]
    fn a_python_sdk_body_with_nulls_and_application_type_is_accepted() {
        let m = validate(
            request(json!({
                "redirect_uris": ["http://localhost:3030/callback"],
                "token_endpoint_auth_method": "client_secret_post",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "scope": "mcp:read mcp:write",
                "client_name": "Python client",
                "client_uri": null,
                "logo_uri": null,
                "contacts": null,
                "jwks": null,
                "application_type": "native",
                "something_new": {"x": 1},
            })),
            Registrar::Dynamic,
        )
        .unwrap();
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretPost);
        assert!(m.allows(GrantType::RefreshToken));
        assert_eq!(m.application_type.as_deref(), Some("native"));
    }

    #[test]
    fn refusals_carry_the_rfc7591_code() {
        let code = |v: serde_json::Value, r: Registrar| validate(request(v), r).unwrap_err().code;
        let redirect = ErrorCode::InvalidRedirectUri;
        let metadata = ErrorCode::InvalidClientMetadata;
        assert_eq!(code(json!({}), Registrar::Dynamic), redirect);
        assert_eq!(code(json!({"redirect_uris": ["javascript:alert(1)"]}), Registrar::Dynamic), redirect);
        assert_eq!(
            code(json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}), Registrar::Dynamic),
            metadata
        );
        assert_eq!(
            code(
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
                Registrar::Dynamic
            ),
            metadata
        );
        assert_eq!(code(json!({"grant_types": ["client_credentials"]}), Registrar::Dynamic), metadata);
        assert_eq!(
            code(json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}), Registrar::Dynamic),
            metadata
        );
        assert_eq!(
            code(json!({"redirect_uris": ["https://a.example/cb"], "application_type": "tv"}), Registrar::Dynamic),
            metadata
        );
        assert_eq!(
            code(
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
                Registrar::MetadataDocument
            ),
            metadata
        );
    }

    #[test]
    fn operators_may_register_machine_clients() {
        let m =
            validate(request(json!({"grant_types": ["client_credentials"], "scope": "mcp:read"})), Registrar::Operator)
                .unwrap();
        assert!(m.redirect_uris.is_empty() && m.response_types.is_empty());
        assert!(
            validate(
                request(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"})),
                Registrar::Operator,
            )
            .is_err()
        );
    }
}
