//! The deployment examples cannot drift from the stack the tests run (SPEC
//! E1, E2; issue 8). There is no Docker engine or Kubernetes cluster here, so
//! what can be checked without one is checked:
//!
//! - `examples/envoy-compose.yaml` is exactly the one template rendered for
//!   compose (`cargo xtask render-compose`), and the real Envoy accepts it;
//! - `examples/docker-compose.yml` agrees with it: cluster addresses are
//!   compose services listening on those ports, the config and the filter are
//!   where Envoy is told to find them, the Dockerfile has every target compose
//!   builds;
//! - the filter configuration embedded in the Envoy template and in the
//!   Kubernetes manifests parses with the filter's own type
//!   (`sekisho_filter::config::FilterConfig`, unknown fields refused), and
//!   names a cluster that exists under that platform's naming rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sekisho_filter::config::FilterConfig;
use serde::Deserialize;
use serde_yaml::Value;
use xtask::envoy_config::{self, COMPOSE_WASM_PATH, EnvoyVars};
use xtask::workspace;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    let mut value: Value =
        serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    value.apply_merge().unwrap();
    value
}

/// Every document of a multi-document YAML file.
fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn examples() -> PathBuf {
    workspace::root().join("examples")
}

fn compose() -> Value {
    yaml(&examples().join("docker-compose.yml"))
}

fn compose_envoy() -> Value {
    yaml(&envoy_config::compose_config_path())
}

fn str_of<'v>(value: &'v Value, what: &str) -> &'v str {
    value.as_str().unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

/// `host:port` → port.
fn port_of(listen: &str) -> u64 {
    listen.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or_else(|| panic!("no port in {listen}"))
}

/// The socket addresses of a cluster's endpoints, as (host, port).
fn cluster_endpoints(envoy: &Value, name: &str) -> Vec<(String, u64)> {
    let clusters = envoy["static_resources"]["clusters"].as_sequence().unwrap();
    let cluster = clusters.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no cluster {name}"));
    let mut out = Vec::new();
    for locality in cluster["load_assignment"]["endpoints"].as_sequence().unwrap() {
        for endpoint in locality["lb_endpoints"].as_sequence().unwrap() {
            let address = &endpoint["endpoint"]["address"]["socket_address"];
            out.push((str_of(&address["address"], "address").to_owned(), address["port_value"].as_u64().unwrap()));
        }
    }
    out
}

/// The public listener's HTTP filters.
fn http_filters(envoy: &Value) -> &Vec<Value> {
    let listener = &envoy["static_resources"]["listeners"][0];
    let manager = &listener["filter_chains"][0]["filters"][0]["typed_config"];
    manager["http_filters"].as_sequence().unwrap()
}

/// The filter's configuration (a `StringValue`) inside an Envoy configuration.
fn wasm_plugin_config(envoy: &Value) -> &Value {
    let wasm = http_filters(envoy).iter().find(|f| f["name"] == "envoy.filters.http.wasm").expect("a wasm filter");
    &wasm["typed_config"]["config"]
}

fn parse_filter_config(json: &[u8], source: &str) -> FilterConfig {
    FilterConfig::parse(json).unwrap_or_else(|e| {
        panic!("{source}: the filter would refuse this configuration: {e}\n{}", String::from_utf8_lossy(json))
    })
}

/// A YAML mapping as the JSON the platform hands the filter.
fn as_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::to_value(value).unwrap()).unwrap()
}

#[test]
fn the_compose_envoy_configs_are_the_template_rendered_for_compose() {
    for (path, rendered) in [
        (envoy_config::compose_config_path(), envoy_config::render_compose().unwrap()),
        (envoy_config::compose_tls_config_path(), envoy_config::render_compose_tls().unwrap()),
    ] {
        let committed = read(&path);
        assert!(committed == rendered, "{} is stale: run `cargo xtask render-compose`", path.display());
    }
}

#[test]
fn envoy_accepts_the_compose_configuration() {
    let envoy = xtask::setup::envoy::find().unwrap_or_else(|| {
        panic!("no Envoy found (${}): run `cargo xtask test` or `cargo xtask setup`", workspace::ENV_ENVOY)
    });
    let wasm = workspace::filter_wasm();
    assert!(wasm.is_file(), "{} is missing (Envoy's validate mode loads it): run `cargo xtask filter`", wasm.display());
    // Validate mode loads the module and the certificate files from the paths
    // in the configuration: the compose configurations with only those paths
    // pointed at the local build and at certificates made here.
    let dir = tempfile::tempdir().unwrap();
    let certificates = sekisho_e2e::tls::generate(&dir.path().join("tls")).unwrap();
    let template = read(&workspace::envoy_template());
    for (name, vars) in [
        ("envoy-compose.yaml", EnvoyVars { wasm_path: wasm.clone(), ..EnvoyVars::compose() }),
        (
            "envoy-compose-tls.yaml",
            EnvoyVars { wasm_path: wasm.clone(), tls: Some(certificates.server.clone()), ..EnvoyVars::compose_tls() },
        ),
    ] {
        let config = dir.path().join(name);
        std::fs::write(&config, envoy_config::render(&template, &vars).unwrap()).unwrap();
        if let Err(error) = envoy_config::validate(&envoy, &config) {
            panic!("Envoy refuses {name}:\n{error:#}");
        }
    }
}

#[test]
fn the_tls_override_mounts_the_tls_config_and_the_certificates_where_envoy_reads_them() {
    let base = compose();
    let tls = yaml(&examples().join("docker-compose.tls.yml"));
    let mounts = |compose: &Value| -> Vec<(String, String)> {
        let volumes = compose["services"]["envoy"]["volumes"].as_sequence().unwrap();
        volumes
            .iter()
            .map(|v| match v.as_str() {
                // Short syntax, source:target[:mode].
                Some(short) => {
                    let mut parts = short.split(':');
                    (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned())
                }
                None => (str_of(&v["source"], "source").to_owned(), str_of(&v["target"], "target").to_owned()),
            })
            .collect()
    };
    // Compose merges volumes by their target: the override's config mount
    // replaces the base one only if the targets are the same.
    let (_, base_target) = mounts(&base).into_iter().find(|(source, _)| source == "./envoy-compose.yaml").unwrap();
    let tls_mounts = mounts(&tls);
    assert!(tls_mounts.contains(&("./envoy-compose-tls.yaml".to_owned(), base_target)), "{tls_mounts:?}");
    assert!(tls_mounts.iter().any(|(_, target)| target == envoy_config::COMPOSE_TLS_DIR), "{tls_mounts:?}");

    let envoy = yaml(&envoy_config::compose_tls_config_path());
    let socket = &envoy["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"];
    let certificate = &socket["typed_config"]["common_tls_context"]["tls_certificates"][0];
    for file in [&certificate["certificate_chain"]["filename"], &certificate["private_key"]["filename"]] {
        let file = str_of(file, "certificate file");
        assert!(
            file.starts_with(&format!("{}/", envoy_config::COMPOSE_TLS_DIR)),
            "{file} is not in the mounted directory"
        );
    }
    for service in ["authz", "authz-setup"] {
        let issuer = str_of(&tls["services"][service]["environment"]["PUBLIC_BASE_URL"], "PUBLIC_BASE_URL");
        assert!(issuer.contains(":-https://"), "{service}: the issuer must default to https under TLS: {issuer}");
    }
}

#[test]
fn compose_services_are_what_the_envoy_config_points_at() {
    let compose = compose();
    let envoy = compose_envoy();
    let services = compose["services"].as_mapping().expect("compose has services");
    let service = |name: &str| -> &Value {
        services.get(name).unwrap_or_else(|| panic!("compose has no service `{name}`; Envoy's config points at it"))
    };

    // The service replicas: compose service `authz`, listening on the port Envoy dials.
    for (host, port) in cluster_endpoints(&envoy, "sekisho_authz") {
        let listen = str_of(&service(&host)["environment"]["SEKISHO_LISTEN"], "SEKISHO_LISTEN");
        assert_eq!(port_of(listen), port, "sekisho_authz → {host}:{port}, but {host} listens on {listen}");
        assert!(listen.starts_with("0.0.0.0:"), "{host} must listen beyond its container: {listen}");
    }
    // The MCP server likewise.
    for (host, port) in cluster_endpoints(&envoy, "demo_mcp") {
        let listen = str_of(&service(&host)["environment"]["DEMO_MCP_LISTEN"], "DEMO_MCP_LISTEN");
        assert_eq!(port_of(listen), port, "demo_mcp → {host}:{port}, but {host} listens on {listen}");
    }

    // Envoy reads the mounted configuration, and publishes its listener (and not its admin port).
    let envoy_service = service("envoy");
    let command: Vec<&str> =
        envoy_service["command"].as_sequence().unwrap().iter().map(|v| str_of(v, "command")).collect();
    let config_path = command.iter().skip_while(|a| **a != "-c").nth(1).expect("envoy is started with -c");
    let mounts: Vec<&str> =
        envoy_service["volumes"].as_sequence().unwrap().iter().map(|v| str_of(v, "volume")).collect();
    assert!(
        mounts.contains(&format!("./envoy-compose.yaml:{config_path}:ro").as_str()),
        "envoy runs -c {config_path} but mounts {mounts:?}"
    );
    let listener = &envoy["static_resources"]["listeners"][0]["address"]["socket_address"];
    assert_eq!(listener["address"], "0.0.0.0", "the listener must be reachable from outside the container");
    let listener_port = listener["port_value"].as_u64().unwrap();
    let published: Vec<&str> =
        envoy_service["ports"].as_sequence().unwrap().iter().map(|v| str_of(v, "port")).collect();
    assert!(published.iter().any(|p| port_of(p) == listener_port), "{published:?} does not publish {listener_port}");
    let admin_port = envoy["admin"]["address"]["socket_address"]["port_value"].as_u64().unwrap();
    assert!(published.iter().all(|p| port_of(p) != admin_port), "Envoy's admin port must never be published");
    assert_eq!(envoy["admin"]["address"]["socket_address"]["address"], "127.0.0.1");

    // The issuer is the published listener.
    let issuer = str_of(&service("authz")["environment"]["PUBLIC_BASE_URL"], "PUBLIC_BASE_URL");
    let default_issuer = issuer.split_once(":-").map(|(_, d)| d.trim_end_matches('}')).unwrap_or(issuer);
    let host_port = published.iter().find(|p| port_of(p) == listener_port).unwrap().split(':').next().unwrap();
    assert!(default_issuer.ends_with(&format!(":{host_port}")), "issuer {default_issuer} is not the published port");

    // The service and its set-up job use the compose database.
    let postgres = &service("postgres")["environment"];
    for name in ["authz", "authz-setup"] {
        let url = str_of(&service(name)["environment"]["DATABASE_URL"], "DATABASE_URL");
        let user = str_of(&postgres["POSTGRES_USER"], "POSTGRES_USER");
        let database = str_of(&postgres["POSTGRES_DB"], "POSTGRES_DB");
        assert!(url.starts_with(&format!("postgresql://{user}:")), "{name}: {url}");
        assert!(url.ends_with(&format!("@postgres:5432/{database}")), "{name}: {url}");
    }
}

#[test]
fn the_dockerfile_builds_every_image_compose_needs_and_puts_the_filter_where_envoy_loads_it() {
    let dockerfile = read(&examples().join("docker").join("Dockerfile"));
    let mut stages: Vec<(String, Vec<&str>)> = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        if let Some(from) = line.strip_prefix("FROM ") {
            let name = from.split_whitespace().skip_while(|w| !w.eq_ignore_ascii_case("AS")).nth(1).unwrap_or("");
            stages.push((name.to_owned(), Vec::new()));
        } else if let Some((_, lines)) = stages.last_mut() {
            lines.push(line);
        }
    }
    let names: BTreeSet<&str> = stages.iter().map(|(name, _)| name.as_str()).collect();

    let compose = compose();
    for (service, definition) in compose["services"].as_mapping().unwrap() {
        let build = &definition["build"];
        if build.is_null() {
            continue;
        }
        assert_eq!(build["dockerfile"], "examples/docker/Dockerfile", "{service:?}");
        assert_eq!(build["context"], "..", "{service:?}: the context is the repository root");
        let target = str_of(&build["target"], "build target");
        assert!(names.contains(target), "{service:?} builds target {target}, which the Dockerfile lacks ({names:?})");
    }

    let envoy_stage = &stages.iter().find(|(name, _)| name == "envoy").expect("an envoy stage").1;
    let copies_filter = envoy_stage.iter().any(|line| {
        line.starts_with("COPY ") && line.contains("sekisho_filter.wasm") && line.ends_with(COMPOSE_WASM_PATH)
    });
    assert!(copies_filter, "the envoy image must hold the filter at {COMPOSE_WASM_PATH}: {envoy_stage:?}");
    let envoy = compose_envoy();
    let code = &wasm_plugin_config(&envoy)["vm_config"]["code"]["local"]["filename"];
    assert_eq!(code, COMPOSE_WASM_PATH);
}

#[test]
fn the_filter_configuration_of_the_envoy_template_parses_with_the_filters_type() {
    let envoy = compose_envoy();
    let configuration = &wasm_plugin_config(&envoy)["configuration"];
    assert_eq!(configuration["@type"], "type.googleapis.com/google.protobuf.StringValue");
    let config = parse_filter_config(str_of(&configuration["value"], "configuration").as_bytes(), "envoy template");
    assert!(!cluster_endpoints(&envoy, &config.authz_cluster).is_empty(), "authz_cluster names no cluster");
}

/// The Kubernetes Service of sekisho-authz: (in-cluster host name, port).
fn authz_service() -> (String, u64) {
    let docs = documents(&examples().join("kubernetes").join("sekisho-authz.yaml"));
    let service = docs.iter().find(|d| d["kind"] == "Service").expect("a Service for sekisho-authz");
    let name = str_of(&service["metadata"]["name"], "name");
    let namespace = str_of(&service["metadata"]["namespace"], "namespace");
    let port = service["spec"]["ports"][0]["port"].as_u64().unwrap();
    (format!("{name}.{namespace}.svc.cluster.local"), port)
}

#[test]
fn the_istio_wasm_plugin_configures_the_filter_with_a_cluster_istio_creates() {
    let docs = documents(&examples().join("kubernetes").join("istio").join("wasm-plugin.yaml"));
    let plugin = docs.iter().find(|d| d["kind"] == "WasmPlugin").expect("a WasmPlugin");
    assert_eq!(plugin["spec"]["phase"], "AUTHN");
    assert_eq!(plugin["spec"]["failStrategy"], "FAIL_CLOSE");
    assert_eq!(str_of(&plugin["spec"]["sha256"], "sha256").len(), 64, "the module is pinned by its digest");
    let config = parse_filter_config(&as_json(&plugin["spec"]["pluginConfig"]), "Istio WasmPlugin");

    let (host, port) = authz_service();
    assert_eq!(config.authz_cluster, format!("outbound|{port}||{host}"), "Istio's outbound cluster of the Service");
    assert_eq!(config.authz_authority, host);
    // The gateway routes the OAuth paths to the same Service.
    let routes = docs.iter().find(|d| d["kind"] == "VirtualService").expect("a VirtualService");
    let destinations: Vec<&Value> =
        routes["spec"]["http"].as_sequence().unwrap().iter().map(|r| &r["route"][0]["destination"]).collect();
    assert!(destinations.iter().any(|d| d["host"] == host.as_str() && d["port"]["number"] == port), "{destinations:?}");
}

#[test]
fn the_envoy_gateway_policy_configures_the_filter_with_the_cluster_of_the_oauth_route() {
    let docs = documents(&examples().join("kubernetes").join("envoy-gateway").join("extension-policy.yaml"));
    let policy = docs.iter().find(|d| d["kind"] == "EnvoyExtensionPolicy").expect("an EnvoyExtensionPolicy");
    let wasm = &policy["spec"]["wasm"][0];
    assert_eq!(wasm["failOpen"], false);
    assert_eq!(str_of(&wasm["code"]["http"]["sha256"], "sha256").len(), 64, "the module is pinned by its digest");
    let config = parse_filter_config(&as_json(&wasm["config"]), "Envoy Gateway EnvoyExtensionPolicy");

    // Envoy Gateway names a route rule's cluster httproute/<namespace>/<name>/rule/<index>.
    let (host, port) = authz_service();
    let service_name = host.split('.').next().unwrap();
    let oauth_route = docs
        .iter()
        .filter(|d| d["kind"] == "HTTPRoute")
        .find(|d| {
            let cluster = format!(
                "httproute/{}/{}/rule/0",
                str_of(&d["metadata"]["namespace"], "namespace"),
                str_of(&d["metadata"]["name"], "name")
            );
            cluster == config.authz_cluster
        })
        .unwrap_or_else(|| panic!("no HTTPRoute whose rule 0 is the cluster {}", config.authz_cluster));
    let backend = &oauth_route["spec"]["rules"][0]["backendRefs"][0];
    assert_eq!(backend["name"], service_name);
    assert_eq!(backend["port"].as_u64(), Some(port));
    // The policy protects the MCP route, not the one clients get tokens from.
    let target = str_of(&policy["spec"]["targetRefs"][0]["name"], "target");
    assert_ne!(target, str_of(&oauth_route["metadata"]["name"], "name"));
}

#[test]
fn a_misspelt_setting_in_a_manifest_would_be_caught() {
    let docs = documents(&examples().join("kubernetes").join("istio").join("wasm-plugin.yaml"));
    let plugin = docs.iter().find(|d| d["kind"] == "WasmPlugin").unwrap();
    let mut config = serde_json::to_value(&plugin["spec"]["pluginConfig"]).unwrap();
    config["refresh_second"] = serde_json::json!(30);
    assert!(FilterConfig::parse(&serde_json::to_vec(&config).unwrap()).is_err());
}

#[test]
fn every_kubernetes_manifest_is_named_and_typed() {
    let mut files = Vec::new();
    let mut dirs = vec![examples().join("kubernetes")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        for doc in documents(&file) {
            for field in ["apiVersion", "kind"] {
                assert!(doc[field].is_string(), "{}: a document without {field}", file.display());
            }
            assert!(doc["metadata"]["name"].is_string(), "{}: a {:?} without a name", file.display(), doc["kind"]);
        }
    }
}
