//! The answer to the filter's question about one key
//! (`POST /internal/v1/api-keys/verify`, `sekisho_contract::api_key::VerifyResponse`).
//!
//! A key that fails the format and checksum check is `malformed` without a
//! lookup. Otherwise its keyed hash is looked up: no row is `unknown`, then
//! `revoked` wins over `expired`. Every answer, valid or not, may be cached by
//! the filter for `cache_seconds`: the configured revocation bound, cut short
//! by the key's expiry or scheduled revocation so a cached "yes" never
//! outlives the key. Nothing here writes to the database: use and refusals go
//! to [`super::activity`].

use sekisho_contract::api_key::{InvalidReason, ValidKey, Verdict, VerifyResponse, check_format, display_prefix};

use crate::api_keys::{Status, instances_of};
use crate::app::App;
use crate::crypto::secret_hash::Purpose;
use crate::error::Result;
use crate::storage::api_keys;
use crate::time::now_unix;

pub async fn verify(app: &App, presented: &str) -> Result<VerifyResponse> {
    let now = now_unix();
    let bound = app.config.api_keys.cache_seconds;
    let activity = &app.api_key_activity;
    if check_format(presented).is_err() {
        activity.record_refusal(InvalidReason::Malformed, None, None, now);
        return Ok(invalid(InvalidReason::Malformed, bound));
    }
    let hash = app.hasher.hash(Purpose::API_KEY, presented);
    let Some(row) = api_keys::find_by_hash(app.db.pool(), &hash).await? else {
        let prefix = display_prefix(presented);
        activity.record_refusal(InvalidReason::Unknown, None, Some(prefix), now);
        return Ok(invalid(InvalidReason::Unknown, bound));
    };
    let refused = match Status::at(now, row.expires_at, row.revoked_at) {
        Status::Revoked => InvalidReason::Revoked,
        Status::Expired => InvalidReason::Expired,
        Status::Active => {
            let instances = instances_of(&row)?;
            activity.record_use(&row.id, now);
            return Ok(VerifyResponse {
                cache_seconds: cache_seconds(bound, now, [row.expires_at, row.revoked_at]),
                verdict: Verdict::Valid(ValidKey {
                    key_id: row.id,
                    instances,
                    scope: row.scope,
                    expires_at: row.expires_at,
                }),
            });
        }
    };
    activity.record_refusal(refused, Some(&row.id), Some(&row.display_prefix), now);
    Ok(invalid(refused, bound))
}

fn invalid(reason: InvalidReason, cache_seconds: u32) -> VerifyResponse {
    VerifyResponse { verdict: Verdict::Invalid(reason), cache_seconds }
}

/// `bound`, or less if a deadline comes sooner. Deadlines are in the future
/// for an active key, so the answer is at least 1.
fn cache_seconds(bound: u32, now: i64, deadlines: [Option<i64>; 2]) -> u32 {
    deadlines
        .into_iter()
        .flatten()
        .map(|at| u32::try_from(at.saturating_sub(now).max(1)).unwrap_or(u32::MAX))
        .fold(bound, u32::min)
}

#[cfg(test)]
mod tests {
    use super::cache_seconds;

    #[test]
    fn caching_never_outlives_the_key() {
        assert_eq!(cache_seconds(30, 100, [None, None]), 30);
        assert_eq!(cache_seconds(30, 100, [Some(1_000), None]), 30);
        assert_eq!(cache_seconds(30, 100, [Some(110), None]), 10);
        assert_eq!(cache_seconds(30, 100, [Some(110), Some(105)]), 5);
        assert_eq!(cache_seconds(30, 100, [None, Some(101)]), 1);
        assert_eq!(cache_seconds(30, 100, [Some(i64::MAX), None]), 30);
    }
}
