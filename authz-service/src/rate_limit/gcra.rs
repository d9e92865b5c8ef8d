//! The generic cell rate algorithm, in plain arithmetic: the in-process store
//! runs it in Rust, the Redis store runs the same steps in a Lua script
//! (`redis_store.rs`), so both refuse at the same request.
//!
//! The state of a key is one number, its theoretical arrival time (TAT): when
//! the key would be back to a full burst if nothing more came. A request is
//! allowed while pushing the TAT one interval further keeps it within one
//! window of now.

use std::time::Duration;

use crate::rate_limit::policy::Rate;

/// What a store answers for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed { remaining: u32 },
    Limited { retry_after: Duration },
}

/// `(window, interval)` in microseconds, the two numbers the algorithm needs.
pub fn micros(rate: Rate) -> (u64, u64) {
    let window = u64::try_from(rate.window.as_micros()).unwrap_or(u64::MAX);
    // Rounded down, so that `count` requests always fit in one window.
    (window, (window / u64::from(rate.count)).max(1))
}

/// One step: `tat` is the key's state (`None` when it has none), `now` the
/// clock, both in microseconds. Returns the verdict and the new state (only
/// changed when the request is allowed).
pub fn step(rate: Rate, tat: Option<u64>, now: u64) -> (Verdict, Option<u64>) {
    let (window, interval) = micros(rate);
    let new_tat = tat.map_or(now, |t| t.max(now)).saturating_add(interval);
    let ahead = new_tat - now;
    if ahead > window {
        let retry_after = Duration::from_micros(ahead - window);
        return (Verdict::Limited { retry_after }, tat);
    }
    let remaining = u32::try_from((window - ahead) / interval).unwrap_or(u32::MAX);
    (Verdict::Allowed { remaining }, Some(new_tat))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000;

    fn rate(count: u32, secs: u64) -> Rate {
        Rate { count, window: Duration::from_secs(secs) }
    }

    #[test]
    fn a_burst_of_count_is_allowed_and_the_next_is_refused() {
        let r = rate(3, 6);
        let mut tat = None;
        for expected_remaining in [2, 1, 0] {
            let (verdict, next) = step(r, tat, 100 * SECOND);
            assert_eq!(verdict, Verdict::Allowed { remaining: expected_remaining });
            tat = next;
        }
        let (verdict, next) = step(r, tat, 100 * SECOND);
        assert_eq!(verdict, Verdict::Limited { retry_after: Duration::from_secs(2) });
        assert_eq!(next, tat, "a refusal does not change the state");
    }

    #[test]
    fn after_the_announced_wait_one_more_request_passes() {
        let r = rate(2, 4);
        let (_, tat) = step(r, None, 0);
        let (_, tat) = step(r, tat, 0);
        let Verdict::Limited { retry_after } = step(r, tat, SECOND / 2).0 else {
            panic!("should be limited")
        };
        assert_eq!(retry_after, Duration::from_micros(3 * SECOND / 2));
        let later = SECOND / 2 + u64::try_from(retry_after.as_micros()).unwrap();
        assert!(matches!(step(r, tat, later).0, Verdict::Allowed { .. }));
    }

    #[test]
    fn an_idle_key_is_back_to_a_full_burst() {
        let r = rate(5, 10);
        let (_, tat) = step(r, None, 0);
        assert_eq!(step(r, tat, 60 * SECOND).0, Verdict::Allowed { remaining: 4 });
    }
}
