//! The Envoy configuration: the template renders completely, documents its
//! placeholders, keeps credentials out of the access log, and Envoy itself
//! accepts the result (`envoy --mode validate`, which also loads the filter).
//!
//! No silent skip: without Envoy or the filter module these tests fail and
//! say how to get them (`cargo xtask test` installs and builds both).

use std::path::PathBuf;

use xtask::envoy_config::{self, EnvoyVars};
use xtask::workspace;

fn template() -> String {
    std::fs::read_to_string(workspace::envoy_template()).expect("the Envoy template is readable")
}

fn vars(wasm_path: PathBuf) -> EnvoyVars {
    EnvoyVars::loopback(18080, 19901, 19000, 19100, &wasm_path)
}

#[test]
fn envoy_accepts_the_rendered_configuration() {
    let envoy = xtask::setup::envoy::find().unwrap_or_else(|| {
        panic!(
            "no Envoy found (${}, PATH, {}): run `cargo xtask test` or `cargo xtask setup`",
            workspace::ENV_ENVOY,
            xtask::setup::envoy::venv_dir().display()
        )
    });
    let wasm = workspace::filter_wasm();
    assert!(
        wasm.is_file(),
        "{} is missing; Envoy's validate mode loads it. Build it with `cargo xtask setup` \
         or `cargo build -p sekisho-filter --target wasm32-wasip1 --release`",
        wasm.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("envoy.yaml");
    envoy_config::render_to_file(&vars(wasm), &config).unwrap();
    if let Err(error) = envoy_config::validate(&envoy, &config) {
        panic!("Envoy refuses the rendered configuration:\n{error:#}");
    }
}

#[test]
fn every_placeholder_is_documented_at_the_top() {
    let template = template();
    let (header, body) = template.split_once("\nadmin:").expect("the template has an admin section");
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').expect("placeholder is closed") + start;
        let placeholder = &rest[start..=end];
        assert!(header.contains(placeholder), "{placeholder} is used but not documented in the header");
        rest = &rest[end..];
    }
}

#[test]
fn the_access_log_never_records_the_query_string_or_credentials() {
    let rendered = envoy_config::render(&template(), &vars(PathBuf::from("/f.wasm"))).unwrap();
    let format_line = rendered
        .lines()
        .find(|l| l.trim_start().starts_with("inline_string:") && l.contains("%START_TIME%"))
        .expect("the access log has an explicit text format");
    assert!(format_line.contains("%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%"), "{format_line}");
    let upper = format_line.to_ascii_uppercase();
    // The path with its query, and every header that may carry a credential
    // or a claimed identity.
    for forbidden in
        ["%REQ(:PATH)%", "%REQ(X-ENVOY-ORIGINAL-PATH", "AUTHORIZATION", "API-KEY", "COOKIE", "REFERER", "X-SEKISHO"]
    {
        assert!(!upper.contains(forbidden), "the access log format mentions {forbidden}: {format_line}");
    }
}

#[test]
fn the_filter_configuration_is_written_once() {
    let template = template();
    assert_eq!(template.matches("\"authz_cluster\"").count(), 1);
    assert_eq!(template.matches("envoy.wasm.runtime.v8").count(), 1);
}
