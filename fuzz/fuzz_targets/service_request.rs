//! The service's parsing of what a client sends, with arbitrary bytes: the
//! form, JSON and query parameters of the token, revocation, introspection
//! and authorization endpoints; registration metadata (RFC 7591) and its
//! redirect URIs; the requested scope; PKCE. Each must answer with a value or
//! an error, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_authz::clients::metadata::{self, Registrar, RegistrationRequest};
use sekisho_authz::clients::redirect_uri;
use sekisho_authz::params::Params;
use sekisho_authz::{pkce, targets};

fn read(params: &Params) {
    for name in ["grant_type", "scope", "resource", "code_verifier", "redirect_uri", "state", "client_id"] {
        let _ = params.one(name);
        let _ = params.all(name);
    }
    if let Ok(scope) = params.one("scope") {
        let _ = targets::parse_scope(scope);
    }
    let _ = pkce::check_challenge(params.one("code_challenge").ok().flatten(), params.one("code_challenge_method").ok().flatten());
    if let (Ok(Some(verifier)), Ok(Some(challenge))) = (params.one("code_verifier"), params.one("code_challenge")) {
        let _ = pkce::verify(verifier, challenge);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = Params::from_form(data) {
        read(&params);
    }
    if let Ok(params) = Params::from_json(data) {
        read(&params);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        read(&Params::from_query(Some(text)));
        let _ = redirect_uri::validate(text);
        let _ = redirect_uri::display_host(text);
        let _ = redirect_uri::csp_source(text);
    }
    if let Ok(request) = serde_json::from_slice::<RegistrationRequest>(data) {
        for registrar in [Registrar::Dynamic, Registrar::Operator] {
            let _ = metadata::validate(request.clone(), registrar);
        }
    }
});
