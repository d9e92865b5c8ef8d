//! The counters the filter reports to Envoy (SPEC F9).
//!
//! Decisions only [`Tally::bump`] them; the proxy-wasm shell turns the tally into
//! Envoy metrics after each callback, so counting is tested natively too.
//! Envoy shows them under `wasmcustom.sekisho.*` in `/stats` and
//! `/stats/prometheus`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Allowed,
    DeniedMissingCredential,
    DeniedInvalidToken,
    DeniedWrongAudience,
    DeniedInsufficientScope,
    DeniedBadRequest,
    DeniedNotFound,
    Unavailable,
    CacheHit,
    CacheMiss,
    JwksRefreshOk,
    JwksRefreshFailed,
    PolicyRefreshOk,
    PolicyRefreshFailed,
    UnknownKidRefresh,
    ApiKeyLookup,
    ApiKeyLookupFailed,
    ApiKeySharedHit,
}

impl Counter {
    pub const ALL: [Counter; 18] = [
        Counter::Allowed,
        Counter::DeniedMissingCredential,
        Counter::DeniedInvalidToken,
        Counter::DeniedWrongAudience,
        Counter::DeniedInsufficientScope,
        Counter::DeniedBadRequest,
        Counter::DeniedNotFound,
        Counter::Unavailable,
        Counter::CacheHit,
        Counter::CacheMiss,
        Counter::JwksRefreshOk,
        Counter::JwksRefreshFailed,
        Counter::PolicyRefreshOk,
        Counter::PolicyRefreshFailed,
        Counter::UnknownKidRefresh,
        Counter::ApiKeyLookup,
        Counter::ApiKeyLookupFailed,
        Counter::ApiKeySharedHit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Allowed => "sekisho.requests.allowed",
            Counter::DeniedMissingCredential => "sekisho.requests.denied.missing_credential",
            Counter::DeniedInvalidToken => "sekisho.requests.denied.invalid_token",
            Counter::DeniedWrongAudience => "sekisho.requests.denied.wrong_audience",
            Counter::DeniedInsufficientScope => "sekisho.requests.denied.insufficient_scope",
            Counter::DeniedBadRequest => "sekisho.requests.denied.bad_request",
            Counter::DeniedNotFound => "sekisho.requests.denied.not_found",
            Counter::Unavailable => "sekisho.requests.unavailable",
            Counter::CacheHit => "sekisho.cache.hit",
            Counter::CacheMiss => "sekisho.cache.miss",
            Counter::JwksRefreshOk => "sekisho.jwks.refresh_ok",
            Counter::JwksRefreshFailed => "sekisho.jwks.refresh_failed",
            Counter::PolicyRefreshOk => "sekisho.policy.refresh_ok",
            Counter::PolicyRefreshFailed => "sekisho.policy.refresh_failed",
            Counter::UnknownKidRefresh => "sekisho.jwks.unknown_kid_refresh",
            Counter::ApiKeyLookup => "sekisho.api_key.lookups",
            Counter::ApiKeyLookupFailed => "sekisho.api_key.lookup_failed",
            Counter::ApiKeySharedHit => "sekisho.api_key.shared_hit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counts since the last drain.
#[derive(Debug, Default, Clone)]
pub struct Tally([u32; Counter::ALL.len()]);

impl Tally {
    pub fn bump(&mut self, c: Counter) {
        self.0[c.index()] = self.0[c.index()].saturating_add(1);
    }

    pub fn get(&self, c: Counter) -> u32 {
        self.0[c.index()]
    }

    /// Returns the non-zero counts and resets them.
    pub fn drain(&mut self) -> impl Iterator<Item = (Counter, u32)> + use<> {
        let counts = std::mem::take(&mut self.0);
        Counter::ALL.into_iter().zip(counts).filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_the_list_and_names_are_unique() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
    }

    #[test]
    fn drain_reports_and_resets() {
        let mut t = Tally::default();
        t.bump(Counter::CacheHit);
        t.bump(Counter::CacheHit);
        t.bump(Counter::Allowed);
        let drained: Vec<_> = t.drain().collect();
        assert_eq!(drained, vec![(Counter::Allowed, 1), (Counter::CacheHit, 2)]);
        assert_eq!(t.drain().count(), 0);
    }
}
