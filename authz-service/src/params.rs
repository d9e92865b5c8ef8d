//! OAuth request parameters as they arrive: in a query string (authorization
//! endpoint), a form body (what real clients send to the token endpoint), or a
//! JSON object (what the seed's examples send).
//!
//! One multimap for all three, with the rules of RFC 6749 §3.1/§3.2: a
//! parameter without a value counts as absent, and a parameter that may appear
//! once is refused when repeated. `resource` (RFC 8707) may repeat. Anything
//! unreadable is `invalid_request`, never a 500.

use axum::http::{HeaderMap, header};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn from_query(query: Option<&str>) -> Params {
        Params::from_urlencoded(query.unwrap_or_default().as_bytes())
    }

    /// A body, by its `Content-Type`: `application/x-www-form-urlencoded` or
    /// `application/json`. An empty body without a type has no parameters.
    pub fn from_body(headers: &HeaderMap, body: &[u8]) -> Result<Params> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        match content_type.as_deref() {
            Some("application/x-www-form-urlencoded") => Params::from_form(body),
            Some(t) if t == "application/json" || t.ends_with("+json") => Params::from_json(body),
            None if body.is_empty() => Ok(Params::default()),
            _ => Err(Error::invalid_request("the body must be application/x-www-form-urlencoded or application/json")),
        }
    }

    pub fn from_form(body: &[u8]) -> Result<Params> {
        if std::str::from_utf8(body).is_err() {
            return Err(Error::invalid_request("the form body is not valid UTF-8"));
        }
        Ok(Params::from_urlencoded(body))
    }

    /// A JSON object whose values are strings, numbers, booleans, or arrays of
    /// strings (a repeated parameter); `null` counts as absent.
    pub fn from_json(body: &[u8]) -> Result<Params> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| Error::invalid_request("the body is not valid JSON"))?;
        let serde_json::Value::Object(object) = value else {
            return Err(Error::invalid_request("the JSON body must be an object"));
        };
        let mut pairs = Vec::new();
        for (name, value) in object {
            match value {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => pairs.push((name, s)),
                serde_json::Value::Number(n) => pairs.push((name, n.to_string())),
                serde_json::Value::Bool(b) => pairs.push((name, b.to_string())),
                serde_json::Value::Array(items) => {
                    for item in items {
                        let serde_json::Value::String(s) = item else {
                            return Err(Error::invalid_request(format!(
                                "`{name}` must be a string or an array of strings"
                            )));
                        };
                        pairs.push((name.clone(), s));
                    }
                }
                serde_json::Value::Object(_) => {
                    return Err(Error::invalid_request(format!("`{name}` must be a string or an array of strings")));
                }
            }
        }
        Ok(Params { pairs })
    }

    fn from_urlencoded(bytes: &[u8]) -> Params {
        Params { pairs: form_urlencoded::parse(bytes).into_owned().collect() }
    }

    /// A parameter that may appear at most once; `invalid_request` if repeated
    /// or if it holds a NUL, which no OAuth parameter has and PostgreSQL
    /// cannot store or compare.
    pub fn one(&self, name: &str) -> Result<Option<&str>> {
        let mut values = self.values(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(Error::invalid_request(format!("`{name}` must not be repeated")));
        }
        if first.is_some_and(|v| v.contains('\0')) {
            return Err(Error::invalid_request(format!("`{name}` must not contain a null byte")));
        }
        Ok(first)
    }

    pub fn required(&self, name: &str) -> Result<&str> {
        self.one(name)?.ok_or_else(|| Error::invalid_request(format!("`{name}` is required")))
    }

    /// Every value of a parameter that may repeat (`resource`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values(name).collect()
    }

    fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.pairs.iter().filter(move |(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn typed(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    #[test]
    fn form_and_json_read_the_same() {
        let form = Params::from_body(
            &typed("application/x-www-form-urlencoded; charset=UTF-8"),
            b"grant_type=authorization_code&resource=a&resource=b&scope=",
        )
        .unwrap();
        let json = Params::from_body(
            &typed("application/json"),
            br#"{"grant_type":"authorization_code","resource":["a","b"],"scope":null}"#,
        )
        .unwrap();
        for p in [form, json] {
            assert_eq!(p.one("grant_type").unwrap(), Some("authorization_code"));
            assert_eq!(p.all("resource"), vec!["a", "b"]);
            assert!(p.one("resource").is_err());
            assert_eq!(p.one("scope").unwrap(), None);
            assert!(p.required("code").is_err());
        }
    }

    #[test]
    fn unreadable_bodies_are_invalid_request() {
        for (content_type, body) in [
            ("application/json", &b"{not json"[..]),
            ("application/json", b"[1,2]"),
            ("application/json", br#"{"a":{"b":1}}"#),
            ("application/json", br#"{"a":[1]}"#),
            ("application/x-www-form-urlencoded", b"\xff\xfe"),
            ("text/plain", b"grant_type=x"),
        ] {
            let err = Params::from_body(&typed(content_type), body).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{content_type}");
        }
        assert!(Params::from_body(&HeaderMap::new(), b"").is_ok());
        assert!(Params::from_body(&HeaderMap::new(), b"x=1").is_err());
    }
}
