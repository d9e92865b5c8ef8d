//! The filter's decisions, as plain Rust: given what a request carries, allow it
//! (with the identity to hand upstream), ask for its body, or refuse it the way
//! MCP clients expect (RFC 6750 + RFC 9728 challenges).
//!
//! [`Gate`] is one worker's view of the world: the configuration, the latest
//! policy and key set, and the verified-credential cache. The proxy-wasm shell
//! feeds it and acts on its verdicts; it never decides anything itself.

use std::collections::HashSet;
use std::rc::Rc;

use sekisho_contract::api_key::{self, InvalidReason, Verdict, VerifyResponse};
use sekisho_contract::challenge::{BearerError, Challenge};
use sekisho_contract::claims::{AccessTokenClaims, ClaimsError, Expectations};
use sekisho_contract::identity::{self, AuthKind};
use sekisho_contract::policy::{AuthMode, FilterPolicy, InstancePolicy, Operation};
use sekisho_contract::resource;
use sekisho_contract::scope::{self, ScopeSet};

use crate::cache::CredentialCache;
use crate::config::FilterConfig;
use crate::jsonrpc::{self, BodyError};
use crate::keys::KeySet;
use crate::request::{self, Credential, CredentialError, CredentialSources};
use crate::stats::{Counter, Tally};
use crate::token::{self, SignatureVerifier, TokenError, VerifiedToken};

/// The scopes suggested to a client that sent no credential: what it needs to
/// use an MCP server normally.
const DEFAULT_SCOPE_HINT: &str = "mcp:read mcp:write";

/// What the head of a request (method, path, headers) carries.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    pub method: &'a [u8],
    pub path: &'a str,
    pub authorization: Option<&'a [u8]>,
    pub api_key: Option<&'a [u8]>,
    /// Seconds since the Unix epoch.
    pub now: i64,
}

#[derive(Debug)]
pub enum HeadVerdict {
    /// Not for the filter: a CORS preflight, or not an MCP path.
    PassThrough,
    Refuse(Refusal),
    /// Authenticated and allowed whatever the body holds.
    Allow(Grant),
    /// Authenticated; the JSON-RPC body decides (see [`Gate::decide_body`]).
    ReadBody(Grant),
    /// Signed with a key this worker does not know: refresh the keys and ask
    /// again with `may_fetch = false`.
    UnknownKey,
    /// A well-formed API key not seen lately: ask the service
    /// ([`Gate::record_api_key`]) and ask again with `may_fetch = false`.
    LookupApiKey(String),
}

/// Who a verified credential speaks for. Built once, when the credential is
/// first verified, and shared by every request that presents it again: the
/// hot path copies nothing and renders no header value.
#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    pub kind: AuthKind,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub scopes: ScopeSet,
    /// `scopes` as the upstream receives them.
    scopes_header: String,
}

impl Identity {
    pub fn new(kind: AuthKind, subject: Option<String>, client_id: Option<String>, scopes: ScopeSet) -> Rc<Identity> {
        let scopes_header = scopes.to_string();
        Rc::new(Identity { kind, subject, client_id, scopes, scopes_header })
    }
}

/// An authenticated caller, and what to change in the request before it goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub instance: Rc<str>,
    pub identity: Rc<Identity>,
    /// The `:path` without the `api-key` query parameter, when it had one.
    pub rewritten_path: Option<String>,
}

impl Grant {
    pub fn scopes(&self) -> &ScopeSet {
        &self.identity.scopes
    }

    /// The identity headers for the upstream (SPEC F6).
    pub fn identity_headers(&self) -> impl Iterator<Item = (&'static str, &str)> + Clone {
        let id = &*self.identity;
        [
            Some((identity::AUTH, id.kind.as_str())),
            Some((identity::INSTANCE, &*self.instance)),
            Some((identity::SCOPES, id.scopes_header.as_str())),
            id.subject.as_deref().map(|s| (identity::SUBJECT, s)),
            id.client_id.as_deref().map(|c| (identity::CLIENT_ID, c)),
        ]
        .into_iter()
        .flatten()
    }
}

/// A local reply: status, headers and a small JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub counter: Counter,
}

impl Refusal {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    fn json(status: u16, body: String, counter: Counter) -> Refusal {
        Refusal {
            status,
            headers: vec![("content-type", "application/json".into()), ("cache-control", "no-store".into())],
            body,
            counter,
        }
    }

    fn error(status: u16, error: &str, description: &str, counter: Counter) -> Refusal {
        let body = serde_json::json!({ "error": error, "error_description": description }).to_string();
        Refusal::json(status, body, counter)
    }

    fn challenge(challenge: Challenge, counter: Counter) -> Refusal {
        let mut r = Refusal::json(challenge.status(), challenge.body(), counter);
        r.headers.push(("www-authenticate", challenge.header_value()));
        r
    }

    fn jsonrpc(status: u16, code: i32, message: &str) -> Refusal {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message }
        })
        .to_string();
        Refusal::json(status, body, Counter::DeniedBadRequest)
    }
}

pub struct Gate {
    pub config: FilterConfig,
    policy: Option<FilterPolicy>,
    /// `jti`s of access tokens revoked before they expire, from the policy.
    revoked: HashSet<String>,
    keys: KeySet,
    /// Per instance of the policy, in its order: the shared id and the
    /// resource URI a token's audience must name, rendered once per policy.
    resources: Vec<Resource>,
    issuer: Rc<str>,
    /// The identity of every request to an instance without authentication.
    anonymous: Rc<Identity>,
    tokens: CredentialCache<CachedToken>,
    api_keys: CredentialCache<KeyVerdict>,
    pub tally: Tally,
}

struct Resource {
    id: Rc<str>,
    uri: Rc<str>,
}

/// A verified token as the cache keeps it: the claims checked on each use,
/// and the identity every use shares.
struct CachedToken {
    claims: AccessTokenClaims,
    identity: Rc<Identity>,
}

impl Gate {
    pub fn new(config: FilterConfig) -> Gate {
        let tokens = CredentialCache::new(config.cache_entries);
        let api_keys = CredentialCache::new(config.cache_entries);
        Gate {
            config,
            policy: None,
            revoked: HashSet::new(),
            keys: KeySet::default(),
            resources: Vec::new(),
            issuer: Rc::from(""),
            anonymous: Identity::new(AuthKind::Anonymous, None, None, ScopeSet::from_iter([scope::ADMIN])),
            tokens,
            api_keys,
            tally: Tally::default(),
        }
    }

    pub fn has_policy(&self) -> bool {
        self.policy.is_some()
    }

    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn cached_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// A new policy. A changed issuer invalidates every cached token.
    pub fn set_policy(&mut self, policy: FilterPolicy) {
        if self.policy.as_ref().is_some_and(|p| p.issuer != policy.issuer) {
            self.tokens.clear();
        }
        self.revoked = policy.revoked.iter().map(|r| r.jti.clone()).collect();
        self.resources = policy
            .instances
            .iter()
            .map(|i| Resource {
                id: Rc::from(i.id.as_str()),
                uri: Rc::from(resource::resource_uri(&policy.issuer, &i.id)),
            })
            .collect();
        self.issuer = Rc::from(policy.issuer.as_str());
        self.policy = Some(policy);
    }

    /// A new key set. Cached tokens are dropped, because one of them may have
    /// been signed with a key that has just been withdrawn.
    pub fn set_keys(&mut self, keys: KeySet) {
        self.tokens.clear();
        self.keys = keys;
    }

    pub fn decide_head(&mut self, head: &Head<'_>, verifier: &dyn SignatureVerifier, may_fetch: bool) -> HeadVerdict {
        match self.authenticate(head, verifier, may_fetch) {
            Ok(Authenticated::Grant(grant)) => self.decide_without_body(head, grant),
            Ok(Authenticated::PassThrough) => HeadVerdict::PassThrough,
            Ok(Authenticated::UnknownKey) => HeadVerdict::UnknownKey,
            Ok(Authenticated::LookupApiKey(key)) => HeadVerdict::LookupApiKey(key),
            Err(refusal) => self.refuse(refusal),
        }
    }

    /// Decides from the JSON-RPC body of a request whose head asked for it.
    pub fn decide_body(&mut self, grant: &Grant, body: &[u8]) -> Result<(), Refusal> {
        let verdict = self.authorize_body(grant, body);
        match &verdict {
            Ok(()) => self.tally.bump(Counter::Allowed),
            Err(r) => self.tally.bump(r.counter),
        }
        verdict
    }

    /// Headers the host did not hand over, or in a shape the filter cannot read: it
    /// cannot tell what the request is for, so it refuses rather than guess.
    pub fn unreadable_request(&mut self) -> HeadVerdict {
        self.refuse(Refusal::error(
            400,
            "invalid_request",
            "the request headers cannot be read",
            Counter::DeniedBadRequest,
        ))
    }

    /// Envoy did not take the credential out or the identity in (SPEC F6):
    /// the request must not go upstream, and it is not the client's doing.
    pub fn rewrite_failed(&mut self) -> Refusal {
        let r = Refusal::error(
            500,
            "server_error",
            "the gateway could not prepare the request for the MCP server",
            Counter::Unavailable,
        );
        self.tally.bump(r.counter);
        r
    }

    /// A body larger than the filter reads.
    pub fn body_too_large(&mut self) -> Refusal {
        let r = Refusal::jsonrpc(413, -32600, "request body is too large");
        self.tally.bump(r.counter);
        r
    }

    fn refuse(&mut self, refusal: Refusal) -> HeadVerdict {
        self.tally.bump(refusal.counter);
        HeadVerdict::Refuse(refusal)
    }

    fn authenticate(
        &mut self,
        head: &Head<'_>,
        verifier: &dyn SignatureVerifier,
        may_fetch: bool,
    ) -> Result<Authenticated, Refusal> {
        if head.method == b"OPTIONS" {
            return Ok(Authenticated::PassThrough);
        }
        let Some(instance_id) = resource::instance_from_path(head.path) else {
            if head.path.starts_with("/mcp/") {
                return Err(not_found());
            }
            return Ok(Authenticated::PassThrough);
        };
        let Some(policy) = self.policy.as_ref() else {
            return Err(unavailable(self.config.retry_seconds));
        };
        // `resources` follows the policy's instances one for one (`set_policy`).
        let (resource, instance) =
            self.resources.iter().zip(&policy.instances).find(|(r, _)| &*r.id == instance_id).ok_or_else(not_found)?;
        let mode = instance.auth_mode;
        let at = Target {
            issuer: Rc::clone(&self.issuer),
            instance: Rc::clone(&resource.id),
            resource: Rc::clone(&resource.uri),
            rewritten_path: request::path_without_param(head.path, request::API_KEY_PARAM),
        };
        if !matches!(head.method, b"GET" | b"POST" | b"DELETE") {
            let mut r =
                Refusal::error(405, "invalid_request", "MCP uses GET, POST and DELETE", Counter::DeniedBadRequest);
            r.headers.push(("allow", "GET, POST, DELETE, OPTIONS".into()));
            return Err(r);
        }
        let sources =
            CredentialSources { authorization: head.authorization, api_key_header: head.api_key, path: head.path };
        let credential = request::credential(&sources).map_err(|e| {
            let description = match e {
                CredentialError::Ambiguous => "send exactly one credential",
                CredentialError::MalformedBearer => "the Authorization header is malformed",
                CredentialError::MalformedApiKey => "the API key is malformed",
            };
            at.refuse(Some(BearerError::InvalidRequest), description, Counter::DeniedBadRequest)
        })?;
        if mode == AuthMode::None {
            return Ok(Authenticated::Grant(at.grant(&self.anonymous)));
        }
        match credential {
            None => Err(Refusal::challenge(
                at.challenge(None, "", Some(DEFAULT_SCOPE_HINT)),
                Counter::DeniedMissingCredential,
            )),
            Some(Credential::ApiKey(_)) if !mode.accepts_api_key() => {
                Err(at.invalid_token("this MCP server does not accept API keys"))
            }
            Some(Credential::Bearer(_)) if !mode.accepts_jwt() => {
                Err(at.invalid_token("this MCP server accepts API keys only"))
            }
            Some(Credential::ApiKey(key)) => self.authenticate_api_key(&at, key, head.now, may_fetch),
            Some(Credential::Bearer(token)) => self.authenticate_bearer(&at, token, head.now, verifier, may_fetch),
        }
    }

    fn authenticate_bearer(
        &mut self,
        at: &Target,
        token: &str,
        now: i64,
        verifier: &dyn SignatureVerifier,
        may_fetch: bool,
    ) -> Result<Authenticated, Refusal> {
        let expect =
            Expectations { issuer: &at.issuer, audience: &at.resource, now, leeway: self.config.leeway_seconds };
        // A seen token is checked where it lies in the cache, and the grant
        // shares its identity: almost every request takes this path. (The
        // cache is emptied with the keys, so it holds nothing without them.)
        if let Some(v) = self.tokens.get(token, now) {
            self.tally.bump(Counter::CacheHit);
            return granted_or_refused(at, v, &expect, &self.revoked);
        }
        if !request::is_token68(token) {
            return Err(at.refuse(
                Some(BearerError::InvalidRequest),
                "the Authorization header is malformed",
                Counter::DeniedBadRequest,
            ));
        }
        if self.keys.is_empty() {
            return Err(unavailable(self.config.retry_seconds));
        }
        self.tally.bump(Counter::CacheMiss);
        match token::verify(token, &self.keys, verifier, &expect, self.config.max_token_bytes) {
            Ok(VerifiedToken { claims, scopes }) => {
                let identity =
                    Identity::new(AuthKind::Jwt, Some(claims.sub.clone()), Some(claims.client_id.clone()), scopes);
                let v = CachedToken { claims, identity };
                let result = granted_or_refused(at, &v, &expect, &self.revoked);
                let valid_until = v.claims.exp.saturating_add(self.config.leeway_seconds);
                self.tokens.insert(token, v, valid_until);
                result
            }
            Err(e) => refuse_token(at, e, may_fetch),
        }
    }

    /// A key is checked for shape locally; its verdict comes from the service
    /// once and is cached for as long as the service allows (SPEC K3).
    fn authenticate_api_key(
        &mut self,
        at: &Target,
        key: &str,
        now: i64,
        may_fetch: bool,
    ) -> Result<Authenticated, Refusal> {
        // Only well-formed keys are ever cached, so a cached key needs no
        // second format check (its checksum is a CRC over every character).
        let Some(verdict) = self.api_keys.get(key, now) else {
            if api_key::check_format(key).is_err() {
                return Err(at.invalid_token("the API key is malformed"));
            }
            self.tally.bump(Counter::CacheMiss);
            if may_fetch {
                return Ok(Authenticated::LookupApiKey(key.to_owned()));
            }
            // The service could not be asked about a key never seen before.
            return Err(unavailable(self.config.retry_seconds));
        };
        self.tally.bump(Counter::CacheHit);
        match verdict {
            KeyVerdict::Invalid(reason) => Err(at.invalid_token(match reason {
                InvalidReason::Revoked => "the API key has been revoked",
                InvalidReason::Expired => "the API key has expired",
                InvalidReason::Unknown | InvalidReason::Malformed => "the API key is not recognised",
            })),
            KeyVerdict::Valid { instances, .. } if !instances.iter().any(|i| **i == *at.instance) => Err(at.refuse(
                Some(BearerError::InsufficientScope),
                "the API key is not valid for this MCP server",
                Counter::DeniedInsufficientScope,
            )),
            KeyVerdict::Valid { identity, .. } => Ok(Authenticated::Grant(at.grant(identity))),
        }
    }

    /// Remembers the service's answer about `key` (SPEC K3: both answers are
    /// cached, so revocation takes at most the bound and guessing cannot flood
    /// the service). Returns the time until which it is kept: `now` when it
    /// is not kept at all (a malformed key, an unusable key id).
    /// `not_after` caps it further (an answer another worker cached earlier).
    pub fn record_api_key(&mut self, key: &str, answer: &VerifyResponse, now: i64, not_after: i64) -> i64 {
        // The hot path skips the format check for cached keys: keep it true
        // that only well-formed keys are cached.
        if api_key::check_format(key).is_err() {
            return now;
        }
        let seconds = i64::from(answer.cache_seconds).min(self.config.max_api_key_cache_seconds);
        let mut valid_until = now.saturating_add(seconds).min(not_after);
        let verdict = match &answer.verdict {
            // The key id travels upstream as `x-sekisho-subject`. An answer
            // that could not is treated like an unreadable one: not cached,
            // so the request gets a 503 and the next one asks again.
            Verdict::Valid(k) if !identity::is_header_safe(&k.key_id) => return now,
            Verdict::Valid(k) => {
                if let Some(exp) = k.expires_at {
                    valid_until = valid_until.min(exp);
                }
                match ScopeSet::parse(&k.scope) {
                    Ok(scopes) => KeyVerdict::Valid {
                        instances: k.instances.clone(),
                        identity: Identity::new(AuthKind::ApiKey, Some(k.key_id.clone()), None, scopes),
                    },
                    Err(_) => KeyVerdict::Invalid(InvalidReason::Malformed),
                }
            }
            Verdict::Invalid(reason) => KeyVerdict::Invalid(*reason),
        };
        self.api_keys.insert(key, verdict, valid_until);
        valid_until
    }

    /// GET and DELETE carry no JSON-RPC; a POST needs its body read unless the
    /// credential allows every operation of the instance.
    fn decide_without_body(&mut self, head: &Head<'_>, grant: Grant) -> HeadVerdict {
        let Some(instance) = self.instance(&grant.instance) else {
            return self.refuse(not_found());
        };
        let op = match head.method {
            b"GET" => Operation::Listen,
            b"DELETE" => Operation::EndSession,
            _ if instance.allows_every_operation(grant.scopes()) => {
                self.tally.bump(Counter::Allowed);
                return HeadVerdict::Allow(grant);
            }
            _ => return HeadVerdict::ReadBody(grant),
        };
        let required = instance.required_scope(&op).to_owned();
        if grant.scopes().grants(&required) {
            self.tally.bump(Counter::Allowed);
            HeadVerdict::Allow(grant)
        } else {
            let refusal = self.insufficient_scope(&grant.instance, &[required]);
            self.refuse(refusal)
        }
    }

    fn authorize_body(&self, grant: &Grant, body: &[u8]) -> Result<(), Refusal> {
        let instance = self.instance(&grant.instance).ok_or_else(not_found)?;
        let ops = jsonrpc::operations(body).map_err(|e| match e {
            BodyError::NotJson => Refusal::jsonrpc(400, -32700, "parse error: the body is not JSON"),
            other => Refusal::jsonrpc(400, -32600, &other.to_string()),
        })?;
        let mut required: Vec<String> = Vec::new();
        for op in &ops {
            let scope = instance.required_scope(&op.as_operation());
            if !required.iter().any(|r| r == scope) {
                required.push(scope.to_owned());
            }
        }
        if grant.scopes().grants_all(required.iter().map(String::as_str)) {
            return Ok(());
        }
        Err(self.insufficient_scope(&grant.instance, &required))
    }

    fn insufficient_scope(&self, instance: &str, required: &[String]) -> Refusal {
        let issuer = self.policy.as_ref().map_or("", |p| p.issuer.as_str());
        let scope = required.join(" ");
        let challenge = Challenge {
            resource_metadata: resource::protected_resource_metadata_url(issuer, instance),
            error: Some(BearerError::InsufficientScope),
            description: Some(format!("this operation needs {scope}")),
            scope: Some(scope),
        };
        Refusal::challenge(challenge, Counter::DeniedInsufficientScope)
    }

    fn instance(&self, id: &str) -> Option<&InstancePolicy> {
        self.policy.as_ref()?.instance(id)
    }
}

enum Authenticated {
    Grant(Grant),
    PassThrough,
    UnknownKey,
    LookupApiKey(String),
}

/// What the service last said about an API key.
#[derive(Debug, Clone)]
enum KeyVerdict {
    Valid { instances: Vec<String>, identity: Rc<Identity> },
    Invalid(InvalidReason),
}

/// The instance a request addresses, for building grants and refusals.
struct Target {
    issuer: Rc<str>,
    instance: Rc<str>,
    /// The instance's resource URI: the audience its tokens must name.
    resource: Rc<str>,
    rewritten_path: Option<String>,
}

impl Target {
    fn grant(&self, identity: &Rc<Identity>) -> Grant {
        Grant {
            instance: Rc::clone(&self.instance),
            identity: Rc::clone(identity),
            rewritten_path: self.rewritten_path.clone(),
        }
    }

    fn challenge(&self, error: Option<BearerError>, description: &str, scope: Option<&str>) -> Challenge {
        Challenge {
            resource_metadata: resource::protected_resource_metadata_url(&self.issuer, &self.instance),
            error,
            description: (!description.is_empty()).then(|| description.to_owned()),
            scope: scope.map(str::to_owned),
        }
    }

    fn refuse(&self, error: Option<BearerError>, description: &str, counter: Counter) -> Refusal {
        Refusal::challenge(self.challenge(error, description, None), counter)
    }

    fn invalid_token(&self, description: &str) -> Refusal {
        self.refuse(Some(BearerError::InvalidToken), description, Counter::DeniedInvalidToken)
    }
}

/// The grant for a verified token, unless its audience, time or revocation says no.
fn granted_or_refused(
    at: &Target,
    v: &CachedToken,
    expect: &Expectations<'_>,
    revoked: &HashSet<String>,
) -> Result<Authenticated, Refusal> {
    if let Err(e) = expect.check_audience_and_time(&v.claims) {
        return refuse_token(at, TokenError::Claims(e), false);
    }
    // Hashing the jti costs a SipHash per request; most policies revoke nothing.
    if !revoked.is_empty() && revoked.contains(&v.claims.jti) {
        return refuse_token(at, TokenError::Revoked, false);
    }
    Ok(Authenticated::Grant(at.grant(&v.identity)))
}

fn refuse_token(at: &Target, e: TokenError, may_fetch: bool) -> Result<Authenticated, Refusal> {
    match e {
        TokenError::UnknownKey { .. } if may_fetch => Ok(Authenticated::UnknownKey),
        e => {
            let counter = match e {
                TokenError::Claims(ClaimsError::WrongAudience) => Counter::DeniedWrongAudience,
                _ => Counter::DeniedInvalidToken,
            };
            Err(at.refuse(Some(BearerError::InvalidToken), &e.to_string(), counter))
        }
    }
}

fn not_found() -> Refusal {
    Refusal::error(404, "not_found", "no MCP server is configured at this path", Counter::DeniedNotFound)
}

/// Keys or policy not loaded yet: the service has not been reached since start.
fn unavailable(retry_seconds: u64) -> Refusal {
    let mut r =
        Refusal::error(503, "temporarily_unavailable", "the gateway has not loaded its keys yet", Counter::Unavailable);
    r.headers.push(("retry-after", retry_seconds.to_string()));
    r
}
