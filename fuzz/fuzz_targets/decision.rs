//! Whole requests through the gate: head then body, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_contract::policy::{AuthMode, FilterPolicy, InstancePolicy};
use sekisho_filter::config::FilterConfig;
use sekisho_filter::decision::{Gate, Head, HeadVerdict};
use sekisho_filter::token::PureRust;

fuzz_target!(|data: &[u8]| {
    let mut gate = Gate::new(FilterConfig::default());
    gate.set_policy(FilterPolicy {
        issuer: "http://127.0.0.1:8080".into(),
        instances: vec![
            InstancePolicy { id: "demo".into(), auth_mode: AuthMode::Both, ..Default::default() },
            InstancePolicy { id: "open".into(), auth_mode: AuthMode::None, ..Default::default() },
        ],
        revoked: vec![],
    });
    let mut parts = data.splitn(4, |b| *b == 0xff);
    let method = parts.next().unwrap_or_default();
    let path = parts.next().and_then(|p| std::str::from_utf8(p).ok()).unwrap_or("/mcp/demo");
    let authorization = parts.next();
    let body = parts.next().unwrap_or_default();
    let head = Head { method, path, authorization, api_key: None, now: 1_800_000_000 };
    if let HeadVerdict::ReadBody(grant) = gate.decide_head(&head, &PureRust, true) {
        let _ = gate.decide_body(&grant, body);
    }
});
