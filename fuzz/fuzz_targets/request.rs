//! Arbitrary headers and paths: credential extraction and query rewriting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_filter::request::{self, CredentialSources};

fuzz_target!(|data: &[u8]| {
    // Split the input into Authorization, X-API-Key and :path at the first two 0xff bytes.
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let authorization = parts.next();
    let api_key_header = parts.next();
    let path = parts.next().and_then(|p| std::str::from_utf8(p).ok()).unwrap_or("/mcp/demo");
    let _ = request::credential(&CredentialSources { authorization, api_key_header, path });
    if let Some(rewritten) = request::path_without_param(path, request::API_KEY_PARAM) {
        // No parameter named api-key is left (a value may still contain the text).
        let query = rewritten.split_once('?').map_or("", |(_, q)| q);
        assert!(query.split('&').all(|pair| pair.split_once('=').map_or(pair, |(k, _)| k) != request::API_KEY_PARAM));
    }
    let _ = sekisho_contract::resource::instance_from_path(path);
});
