//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, or `none` for
//! public clients, which then prove nothing but their `client_id` and are held
//! to PKCE and to their own tokens.
//!
//! A confidential client may use either secret method whatever it registered:
//! refusing the other one protects nothing. Every failure is `invalid_client`
//! (401 with a `Basic` challenge, from `crate::error`).

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::app::App;
use crate::clients::{self, Client};
use crate::crypto::secret_hash::Purpose;
use crate::error::{Error, Result};
use crate::params::Params;

/// Whether an endpoint serves public clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Public {
    Allowed,
    Refused,
}

/// The authenticated client of a request.
pub async fn authenticate(app: &App, headers: &HeaderMap, params: &Params, public: Public) -> Result<Client> {
    let basic = basic_credentials(headers)?;
    let body_id = params.one("client_id")?;
    let body_secret = params.one("client_secret")?;
    let (client_id, secret) = match basic {
        Some((id, secret)) => {
            if body_secret.is_some() {
                return Err(Error::invalid_request(
                    "use one client authentication method, not both Basic and client_secret",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(Error::invalid_client("client_id does not match the Basic credentials"));
            }
            (id, secret)
        }
        None => {
            let id = body_id.ok_or_else(|| Error::invalid_client("client authentication is required"))?;
            (id.to_owned(), body_secret.map(str::to_owned))
        }
    };
    let client = clients::find(app, &client_id).await?;
    match (&client.secret_hash, secret.as_deref().filter(|s| !s.is_empty())) {
        (Some(hash), Some(secret)) => {
            if !app.hasher.matches(Purpose::CLIENT_SECRET, secret, hash) {
                return Err(Error::invalid_client("client authentication failed"));
            }
        }
        (Some(_), None) => {
            return Err(Error::invalid_client("this client is confidential: send its client_secret"));
        }
        (None, _) if public == Public::Refused => {
            return Err(Error::invalid_client("this endpoint needs a confidential client"));
        }
        // A public client: whatever it sends as a secret proves nothing.
        (None, _) => {}
    }
    Ok(client)
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`
/// (RFC 6749 §2.3.1). Another scheme is not client authentication and is ignored.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, Option<String>)>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || Error::invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id);
    if id.is_empty() {
        return Err(malformed());
    }
    let secret = form_decode(secret);
    Ok(Some((id, (!secret.is_empty()).then_some(secret))))
}

fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn reads_basic_credentials_with_form_encoding() {
        let encoded = STANDARD.encode("my%20client:s%3Acret+x");
        let got = basic_credentials(&with_authorization(&format!("Basic {encoded}"))).unwrap();
        assert_eq!(got, Some(("my client".into(), Some("s:cret x".into()))));
        let public = STANDARD.encode("abc:");
        assert_eq!(
            basic_credentials(&with_authorization(&format!("basic {public}"))).unwrap(),
            Some(("abc".into(), None))
        );
        assert_eq!(basic_credentials(&with_authorization("Bearer xyz")).unwrap(), None);
        for bad in ["Basic !!!", "Basic eHl6", "Basic OnNlY3JldA=="] {
            assert!(basic_credentials(&with_authorization(bad)).is_err(), "{bad}");
        }
    }
}
