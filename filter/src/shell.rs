//! The proxy-wasm shell: gathers input from Envoy, asks [`crate::decision`],
//! and acts on the verdict. No policy lives here.
//!
//! Each Envoy worker runs its own VM. The JWKS and the policy are fetched by one
//! VM at a time (a lease in shared data), published in shared data, and picked
//! up by every VM on its next tick; the last good copy stays in use when the
//! service cannot be reached (static stability, SPEC F2).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};
use sekisho_contract::api_key::{VerifyRequest, VerifyResponse};
use sekisho_contract::paths;
use sekisho_contract::policy::FilterPolicy;

use crate::config::FilterConfig;
use crate::decision::{Gate, Grant, Head, HeadVerdict, Refusal};
use crate::envoy_crypto;
use crate::header_map::HeaderMap;
use crate::keys::Key;
use crate::keys::KeySet;
use crate::shared_keys;
use crate::stats::Counter;
use crate::token::{PureRust, SignatureVerifier};
use crate::upstream;

const SHARED_JWKS: &str = "sekisho.jwks";
const SHARED_POLICY: &str = "sekisho.policy";
/// Unix seconds before which no VM starts another scheduled fetch.
const SHARED_NEXT_FETCH: &str = "sekisho.next_fetch";
const TICK: Duration = Duration::from_secs(1);
/// Largest JWKS or policy document accepted from the service.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Verifies with Envoy's BoringSSL through the `verify_signature` foreign
/// function; falls back to pure Rust where the host does not offer it.
struct EnvoyCrypto {
    available: Cell<bool>,
}

impl SignatureVerifier for EnvoyCrypto {
    fn verify(&self, key: &Key, signing_input: &[u8], signature: &[u8; 64]) -> bool {
        if self.available.get() {
            let der = envoy_crypto::ecdsa_der(signature);
            let args = envoy_crypto::encode_verify_request("sha256", &key.spki_der, &der, signing_input);
            match hostcalls::call_foreign_function("verify_signature", Some(&args)) {
                Ok(Some(result)) => {
                    return envoy_crypto::decode_verify_result(&result) == Some(true);
                }
                Ok(None) => return false,
                Err(proxy_wasm::types::Status::NotFound) => {
                    log::warn!("sekisho: Envoy has no verify_signature function; verifying inside the VM");
                    self.available.set(false);
                }
                Err(_) => return false,
            }
        }
        PureRust.verify(key, signing_input, signature)
    }
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// What one VM knows, shared by its root context and its HTTP contexts.
struct Worker {
    gate: RefCell<Gate>,
    crypto: EnvoyCrypto,
    metrics: Vec<u32>,
    jwks_cas: Cell<Option<u32>>,
    policy_cas: Cell<Option<u32>>,
    last_unknown_kid_refresh: Cell<i64>,
}

impl Worker {
    /// Hands the counts since the last tick to Envoy. Counting per request
    /// would cost a call into Envoy per counter per request.
    fn flush_stats(&self) {
        let counts: Vec<(Counter, u32)> = self.gate.borrow_mut().tally.drain().collect();
        for (counter, n) in counts {
            if let Some(id) = self.metrics.get(counter as usize) {
                let _ = hostcalls::increment_metric(*id, i64::from(n));
            }
        }
    }

    /// Takes newer documents another VM published.
    fn sync_from_shared(&self) {
        if let Ok((Some(bytes), cas)) = hostcalls::get_shared_data(SHARED_JWKS)
            && cas != self.jwks_cas.get()
        {
            self.jwks_cas.set(cas);
            self.accept_jwks(&bytes);
        }
        if let Ok((Some(bytes), cas)) = hostcalls::get_shared_data(SHARED_POLICY)
            && cas != self.policy_cas.get()
        {
            self.policy_cas.set(cas);
            self.accept_policy(&bytes);
        }
    }

    fn accept_jwks(&self, bytes: &[u8]) -> bool {
        match KeySet::from_jwks(bytes) {
            Ok(keys) => {
                self.gate.borrow_mut().set_keys(keys);
                true
            }
            Err(e) => {
                log::warn!("sekisho: keeping the last good keys: {e}");
                false
            }
        }
    }

    fn accept_policy(&self, bytes: &[u8]) -> bool {
        match serde_json::from_slice::<FilterPolicy>(bytes) {
            Ok(policy) if sekisho_contract::resource::validate_base_url(&policy.issuer).is_ok() => {
                self.gate.borrow_mut().set_policy(policy);
                true
            }
            _ => {
                log::warn!("sekisho: keeping the last good policy: the service sent an invalid document");
                false
            }
        }
    }

    fn config(&self) -> FilterConfig {
        self.gate.borrow().config.clone()
    }

    /// Fetches `path` from the service; the response arrives at the calling context.
    fn dispatch(&self, path: &str) -> Option<u32> {
        self.call("GET", path, None)
    }

    /// Calls the service; the response arrives at the calling context.
    fn call(&self, method: &str, path: &str, json: Option<&[u8]>) -> Option<u32> {
        let config = self.config();
        let mut headers = vec![
            (":method", method),
            (":path", path),
            (":authority", config.authz_authority.as_str()),
            ("accept", "application/json"),
        ];
        if json.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let timeout = Duration::from_millis(config.call_timeout_ms);
        match hostcalls::dispatch_http_call(&config.authz_cluster, headers, json, vec![], timeout) {
            Ok(token) => Some(token),
            Err(status) => {
                log::warn!("sekisho: cannot call the authorization service ({status:?})");
                None
            }
        }
    }
}

/// Hands a fetched and validated document to every VM.
fn publish(key: &str, body: &[u8]) {
    let _ = hostcalls::set_shared_data(key, Some(body), None);
}

fn now() -> i64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The response body of an HTTP call, if it succeeded with 200.
fn call_response_body(body_size: usize) -> Option<Vec<u8>> {
    let status = hostcalls::get_map_value_bytes(proxy_wasm::types::MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()?;
    if status.as_slice() != b"200" || body_size == 0 || body_size > MAX_DOCUMENT_BYTES {
        return None;
    }
    hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpCallResponseBody, 0, body_size).ok().flatten()
}

#[derive(Default)]
struct Root {
    worker: Option<Rc<Worker>>,
    jwks_call: Option<u32>,
    policy_call: Option<u32>,
}

impl Root {
    /// Starts a scheduled fetch if it is due and no other VM holds the lease.
    fn maybe_fetch(&mut self, worker: &Worker) {
        let now = now();
        let config = worker.config();
        let (due, cas) = match hostcalls::get_shared_data(SHARED_NEXT_FETCH) {
            Ok((Some(v), cas)) => {
                let next = std::str::from_utf8(&v).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
                (now >= next, cas)
            }
            Ok((None, cas)) => (true, cas),
            Err(_) => (false, None),
        };
        let missing = !worker.gate.borrow().has_keys() || !worker.gate.borrow().has_policy();
        if !due && !missing {
            return;
        }
        if !due && missing && (self.jwks_call.is_some() || self.policy_call.is_some()) {
            return;
        }
        let lease_until = now + i64::try_from(config.retry_seconds).unwrap_or(1);
        if due && hostcalls::set_shared_data(SHARED_NEXT_FETCH, Some(lease_until.to_string().as_bytes()), cas).is_err()
        {
            return; // another VM took the lease
        }
        if self.jwks_call.is_none() {
            self.jwks_call = worker.dispatch(paths::JWKS);
        }
        if self.policy_call.is_none() {
            self.policy_call = worker.dispatch(paths::FILTER_POLICY);
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let Some(worker) = self.worker.clone() else {
            return;
        };
        let body = call_response_body(body_size);
        if self.jwks_call == Some(token) {
            self.jwks_call = None;
            let ok = body.as_deref().is_some_and(|b| worker.accept_jwks(b));
            if let (true, Some(b)) = (ok, &body) {
                publish(SHARED_JWKS, b);
            }
            worker.gate.borrow_mut().tally.bump(if ok { Counter::JwksRefreshOk } else { Counter::JwksRefreshFailed });
        } else if self.policy_call == Some(token) {
            self.policy_call = None;
            let ok = body.as_deref().is_some_and(|b| worker.accept_policy(b));
            if let (true, Some(b)) = (ok, &body) {
                publish(SHARED_POLICY, b);
            }
            worker.gate.borrow_mut().tally.bump(if ok {
                Counter::PolicyRefreshOk
            } else {
                Counter::PolicyRefreshFailed
            });
            if ok {
                let refresh = i64::try_from(worker.config().refresh_seconds).unwrap_or(30);
                let _ =
                    hostcalls::set_shared_data(SHARED_NEXT_FETCH, Some((now() + refresh).to_string().as_bytes()), None);
            }
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = hostcalls::get_buffer(proxy_wasm::types::BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = match FilterConfig::parse(&raw) {
            Ok(c) => c,
            Err(e) => {
                log::error!("sekisho: refusing to start: {e}");
                return false;
            }
        };
        let metrics =
            Counter::ALL.iter().map(|c| hostcalls::define_metric(MetricType::Counter, c.name()).unwrap_or(0)).collect();
        let worker = Rc::new(Worker {
            gate: RefCell::new(Gate::new(config)),
            crypto: EnvoyCrypto { available: Cell::new(true) },
            metrics,
            jwks_cas: Cell::new(None),
            policy_cas: Cell::new(None),
            last_unknown_kid_refresh: Cell::new(0),
        });
        worker.sync_from_shared();
        self.worker = Some(worker);
        self.set_tick_period(TICK);
        true
    }

    fn on_tick(&mut self) {
        let Some(worker) = self.worker.clone() else {
            return;
        };
        worker.flush_stats();
        worker.sync_from_shared();
        self.maybe_fetch(&worker);
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let worker = self.worker.clone()?;
        Some(Box::new(Mcp { worker, state: State::Head, buffered: None, headers: Vec::new() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// What a paused request waits for from the service.
enum Fetch {
    /// The JWKS, for a token with an unknown `kid`.
    Keys,
    /// The verdict on an API key not seen lately.
    ApiKey(String),
}

enum State {
    Head,
    /// Paused while the service is asked something.
    Awaiting {
        call: u32,
        end_of_stream: bool,
        fetch: Fetch,
    },
    /// Authenticated; the body decides.
    AwaitingBody(Grant),
    Decided,
}

struct Mcp {
    worker: Rc<Worker>,
    state: State,
    /// Size of a body that arrived whole while the keys were being refreshed.
    buffered: Option<usize>,
    /// The request header map as Envoy last serialized it (see [`crate::header_map`]).
    headers: Vec<u8>,
}

impl Mcp {
    /// Reads every request header in one call (measured: one call that copies
    /// the whole map costs less than a call per header), then decides.
    fn decide_head(&mut self, may_fetch: bool) -> HeadVerdict {
        self.headers = abi::request_headers();
        // Envoy always hands over `:method` and `:path`; an empty or garbled
        // map means the filter cannot see the request, so it does not pass it.
        let headers = match HeaderMap::parse(&self.headers) {
            Ok(headers) if !headers.is_empty() => headers,
            _ => return self.worker.gate.borrow_mut().unreadable_request(),
        };
        // A path that is not UTF-8 keeps its shape, so an MCP path still
        // fails closed (404) instead of passing unchecked.
        let path = String::from_utf8_lossy(headers.get(":path").unwrap_or_default());
        let head = Head {
            method: headers.get(":method").unwrap_or_default(),
            path: &path,
            authorization: headers.get("authorization"),
            api_key: headers.get("x-api-key"),
            now: now(),
        };
        self.worker.gate.borrow_mut().decide_head(&head, &self.worker.crypto, may_fetch)
    }

    /// Takes the credential out and puts the verified identity in (SPEC F6).
    /// Should Envoy refuse an edit, the request must not go upstream: the
    /// error is the refusal already sent.
    fn apply(&mut self, grant: &Grant) -> Result<(), Action> {
        let done = match HeaderMap::parse(&self.headers) {
            Ok(headers) => upstream::edits(&headers, grant).into_iter().all(abi::edit_request_headers),
            Err(_) => false,
        };
        if done {
            return Ok(());
        }
        let refusal = self.worker.gate.borrow_mut().rewrite_failed();
        Err(self.refuse(&refusal))
    }

    fn refuse(&mut self, r: &Refusal) -> Action {
        self.state = State::Decided;
        let headers: Vec<(&str, &str)> = r.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let _ = hostcalls::send_http_response(u32::from(r.status), headers, Some(r.body.as_bytes()));
        Action::Pause
    }

    /// Acts on a head verdict; `end_of_stream` says the request has no more body.
    fn act(&mut self, verdict: HeadVerdict, end_of_stream: bool) -> Action {
        match verdict {
            HeadVerdict::PassThrough => {
                self.state = State::Decided;
                Action::Continue
            }
            HeadVerdict::Refuse(r) => self.refuse(&r),
            HeadVerdict::Allow(grant) => match self.apply(&grant) {
                Ok(()) => {
                    self.state = State::Decided;
                    Action::Continue
                }
                Err(refused) => refused,
            },
            HeadVerdict::ReadBody(grant) => {
                if let Err(refused) = self.apply(&grant) {
                    return refused;
                }
                if end_of_stream {
                    return self.decide_body(&grant, &[]);
                }
                self.state = State::AwaitingBody(grant);
                Action::Pause
            }
            HeadVerdict::LookupApiKey(key) => self.look_up_api_key(key, end_of_stream),
            HeadVerdict::UnknownKey => {
                let now = now();
                let since = now - self.worker.last_unknown_kid_refresh.get();
                let min = i64::try_from(self.worker.config().unknown_kid_refresh_seconds).unwrap_or(10);
                let call = (since >= min).then(|| self.worker.dispatch(paths::JWKS)).flatten();
                match call {
                    Some(call) => {
                        self.worker.last_unknown_kid_refresh.set(now);
                        self.worker.gate.borrow_mut().tally.bump(Counter::UnknownKidRefresh);
                        self.state = State::Awaiting { call, end_of_stream, fetch: Fetch::Keys };
                        Action::Pause
                    }
                    None => {
                        let verdict = self.decide_head(false);
                        self.act(verdict, end_of_stream)
                    }
                }
            }
        }
    }

    /// A verdict another worker cached, else a call to the service.
    fn look_up_api_key(&mut self, key: String, end_of_stream: bool) -> Action {
        let now = now();
        let (slot, digest) = shared_keys::slot_of(&key);
        if let Ok((Some(stored), _)) = hostcalls::get_shared_data(&slot)
            && let Some((answer, valid_until)) = shared_keys::decode(&stored, &digest, now)
            && let Ok(answer) = serde_json::from_slice::<VerifyResponse>(answer)
        {
            self.worker.gate.borrow_mut().record_api_key(&key, &answer, now, valid_until);
            self.worker.gate.borrow_mut().tally.bump(Counter::ApiKeySharedHit);
            let verdict = self.decide_head(false);
            return self.act(verdict, end_of_stream);
        }
        let request = serde_json::to_vec(&VerifyRequest { api_key: key.clone() }).unwrap_or_default();
        match self.worker.call("POST", paths::API_KEY_VERIFY, Some(&request)) {
            Some(call) => {
                self.worker.gate.borrow_mut().tally.bump(Counter::ApiKeyLookup);
                self.state = State::Awaiting { call, end_of_stream, fetch: Fetch::ApiKey(key) };
                Action::Pause
            }
            None => {
                self.worker.gate.borrow_mut().tally.bump(Counter::ApiKeyLookupFailed);
                let verdict = self.decide_head(false);
                self.act(verdict, end_of_stream)
            }
        }
    }

    /// Takes the service's answer about an API key, and shares it with the other workers.
    fn accept_api_key_answer(&self, key: &str, body: Option<Vec<u8>>) {
        let Some(answer) = body.and_then(|b| serde_json::from_slice::<VerifyResponse>(&b).ok().map(|a| (a, b))) else {
            self.worker.gate.borrow_mut().tally.bump(Counter::ApiKeyLookupFailed);
            return;
        };
        let now = now();
        let valid_until = self.worker.gate.borrow_mut().record_api_key(key, &answer.0, now, i64::MAX);
        if valid_until <= now {
            // Not kept (see `record_api_key`), or kept for no time at all:
            // nothing to share. The answer this request gets is counted there.
            return;
        }
        let (slot, digest) = shared_keys::slot_of(key);
        let _ = hostcalls::set_shared_data(&slot, Some(&shared_keys::encode(&digest, valid_until, &answer.1)), None);
    }

    fn decide_body(&mut self, grant: &Grant, body: &[u8]) -> Action {
        let verdict = self.worker.gate.borrow_mut().decide_body(grant, body);
        match verdict {
            Ok(()) => {
                self.state = State::Decided;
                Action::Continue
            }
            Err(r) => self.refuse(&r),
        }
    }
}

impl Context for Mcp {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let State::Awaiting { call, end_of_stream, .. } = self.state else { return };
        if call != token {
            return;
        }
        let State::Awaiting { fetch, .. } = std::mem::replace(&mut self.state, State::Head) else { return };
        let body = call_response_body(body_size);
        match fetch {
            Fetch::Keys => {
                if let Some(body) = body
                    && self.worker.accept_jwks(&body)
                {
                    publish(SHARED_JWKS, &body);
                    self.worker.gate.borrow_mut().tally.bump(Counter::JwksRefreshOk);
                } else {
                    self.worker.gate.borrow_mut().tally.bump(Counter::JwksRefreshFailed);
                }
            }
            Fetch::ApiKey(key) => self.accept_api_key_answer(&key, body),
        }
        let verdict = self.decide_head(false);
        let action = match (verdict, self.buffered) {
            (HeadVerdict::ReadBody(grant), Some(size)) => match self.apply(&grant) {
                Ok(()) => {
                    let body = hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpRequestBody, 0, size)
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    self.decide_body(&grant, &body)
                }
                Err(refused) => refused,
            },
            (other, _) => self.act(other, end_of_stream),
        };
        // Still waiting for the body: the next body callback decides and continues.
        if matches!(action, Action::Continue) {
            let _ = hostcalls::resume_http_request();
        }
    }
}

impl HttpContext for Mcp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let verdict = self.decide_head(true);
        self.act(verdict, end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Borrowed, not `config()`: this runs for every request with a body.
        let max = self.worker.gate.borrow().config.max_body_bytes;
        if body_size > max && !matches!(self.state, State::Decided) {
            let refusal = self.worker.gate.borrow_mut().body_too_large();
            return self.refuse(&refusal);
        }
        match &self.state {
            State::Awaiting { .. } => {
                self.buffered = end_of_stream.then_some(body_size);
                Action::Pause
            }
            State::AwaitingBody(grant) => {
                if !end_of_stream {
                    return Action::Pause;
                }
                let grant = grant.clone();
                let body = hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpRequestBody, 0, body_size)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                self.decide_body(&grant, &body)
            }
            State::Head | State::Decided => Action::Continue,
        }
    }
}

/// The header-map calls of the proxy-wasm ABI the filter makes itself:
/// byte names and values, without the SDK's copies (see [`crate::header_map`]).
mod abi {
    use proxy_wasm::types::MapType;

    use crate::upstream::Edit;

    /// The ABI's status `Ok`. The status is read as a plain integer: a value
    /// the SDK's `Status` enum does not list must not become an invalid enum.
    const OK: u32 = 0;

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_get_header_map_pairs(map_type: MapType, data: *mut *mut u8, size: *mut usize) -> u32;
        fn proxy_remove_header_map_value(map_type: MapType, name: *const u8, name_size: usize) -> u32;
        fn proxy_replace_header_map_value(
            map_type: MapType,
            name: *const u8,
            name_size: usize,
            value: *const u8,
            value_size: usize,
        ) -> u32;
        fn proxy_add_header_map_value(
            map_type: MapType,
            name: *const u8,
            name_size: usize,
            value: *const u8,
            value_size: usize,
        ) -> u32;
    }

    /// The serialized request headers; empty if Envoy has none to give.
    pub fn request_headers() -> Vec<u8> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: Envoy fills `data` with a buffer of `size` bytes that it got
        // from the SDK's `proxy_on_memory_allocate`, which allocates exactly
        // `size` bytes with Rust's allocator; the SDK reads it back the same way.
        unsafe {
            match proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) {
                OK if !data.is_null() => Vec::from_raw_parts(data, size, size),
                _ => Vec::new(),
            }
        }
    }

    /// Makes one change to the request headers; false if Envoy did not.
    pub fn edit_request_headers(edit: Edit<'_>) -> bool {
        let map = MapType::HttpRequestHeaders;
        // SAFETY: Envoy only reads the given lengths at the given addresses, during the call.
        let status = unsafe {
            match edit {
                Edit::Remove(name) => proxy_remove_header_map_value(map, name.as_ptr(), name.len()),
                Edit::Replace(name, value) => {
                    proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
                }
                Edit::Add(name, value) => {
                    proxy_add_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
                }
            }
        };
        status == OK
    }
}
