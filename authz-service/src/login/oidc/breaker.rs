//! The circuit breaker around every call to the upstream provider (SPEC U3).
//!
//! ```text
//! closed ──N consecutive failures──▶ open ──cool-down elapsed──▶ half-open
//!   ▲                                  ▲                            │
//!   └──────────── a call succeeds ─────┼────────────────────────────┤
//!                                      └──── a call fails ──────────┘
//! ```
//!
//! Closed: calls go through; a success resets the failure count. Open: calls
//! are refused at once (no network), with the time left until the cool-down
//! ends. Half-open: calls go through as trials; the first result decides
//! (success closes, failure re-opens for a full cool-down).
//!
//! Plain state, no I/O: the caller makes the call, reports its outcome, and
//! audits the [`Transition`]s it is handed. Time comes from a [`Clock`] so the
//! state machine is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const DEFAULT_FAILURES: u32 = 5;
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker (`SEKISHO_BREAKER_FAILURES`).
    pub failures: u32,
    /// How long it stays open before a trial (`SEKISHO_BREAKER_COOLDOWN_SECS`).
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings { failures: DEFAULT_FAILURES, cooldown: DEFAULT_COOLDOWN }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

/// A change of state, for the audit log and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    /// Consecutive failures counted when it happened.
    pub failures: u32,
}

/// Monotonic time, injectable.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The breaker refused the call: the provider is considered down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Until the cool-down ends (at least one second, for `Retry-After`).
    pub retry_after: Duration,
}

struct Inner {
    state: State,
    failures: u32,
    opened_at: Option<Instant>,
}

pub struct Breaker<C: Clock = SystemClock> {
    settings: BreakerSettings,
    clock: C,
    inner: Mutex<Inner>,
}

impl Breaker<SystemClock> {
    pub fn new(settings: BreakerSettings) -> Self {
        Self::with_clock(settings, SystemClock)
    }
}

impl<C: Clock> Breaker<C> {
    pub fn with_clock(settings: BreakerSettings, clock: C) -> Self {
        let settings = BreakerSettings { failures: settings.failures.max(1), ..settings };
        Breaker { settings, clock, inner: Mutex::new(Inner { state: State::Closed, failures: 0, opened_at: None }) }
    }

    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves consistent state behind.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state now (an open breaker whose cool-down is over reads as
    /// half-open only once a call asks, see [`Breaker::check`]).
    pub fn state(&self) -> State {
        self.lock().state
    }

    /// Time until an open breaker allows a trial; `None` unless open.
    pub fn retry_after(&self) -> Option<Duration> {
        let inner = self.lock();
        self.remaining(&inner)
    }

    fn remaining(&self, inner: &Inner) -> Option<Duration> {
        if inner.state != State::Open {
            return None;
        }
        let elapsed = inner.opened_at.map_or(Duration::ZERO, |at| self.clock.now().saturating_duration_since(at));
        Some(self.settings.cooldown.saturating_sub(elapsed))
    }

    /// May a call go out? Moves open → half-open when the cool-down is over.
    pub fn check(&self) -> (Result<(), Rejected>, Option<Transition>) {
        let mut inner = self.lock();
        match self.remaining(&inner) {
            None => (Ok(()), None),
            Some(left) if !left.is_zero() => (Err(Rejected { retry_after: left.max(Duration::from_secs(1)) }), None),
            Some(_) => {
                inner.state = State::HalfOpen;
                (Ok(()), Some(Transition { from: State::Open, to: State::HalfOpen, failures: inner.failures }))
            }
        }
    }

    /// The provider answered.
    pub fn success(&self) -> Option<Transition> {
        let mut inner = self.lock();
        let from = inner.state;
        let failures = inner.failures;
        inner.failures = 0;
        inner.opened_at = None;
        inner.state = State::Closed;
        (from != State::Closed).then_some(Transition { from, to: State::Closed, failures })
    }

    /// The provider did not answer, or answered with a server error.
    pub fn failure(&self) -> Option<Transition> {
        let mut inner = self.lock();
        inner.failures = inner.failures.saturating_add(1);
        let open = match inner.state {
            State::Closed => inner.failures >= self.settings.failures,
            State::HalfOpen => true,
            // A call that went out before the breaker opened: the cool-down
            // is not extended by stragglers.
            State::Open => false,
        };
        if !open {
            return None;
        }
        let from = inner.state;
        inner.state = State::Open;
        inner.opened_at = Some(self.clock.now());
        Some(Transition { from, to: State::Open, failures: inner.failures })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[derive(Clone)]
    struct FakeClock(Arc<Mutex<Instant>>);

    impl FakeClock {
        fn new() -> Self {
            FakeClock(Arc::new(Mutex::new(Instant::now())))
        }
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn breaker(failures: u32, cooldown_secs: u64) -> (Breaker<FakeClock>, FakeClock) {
        let clock = FakeClock::new();
        let settings = BreakerSettings { failures, cooldown: Duration::from_secs(cooldown_secs) };
        (Breaker::with_clock(settings, clock.clone()), clock)
    }

    fn t(from: State, to: State, failures: u32) -> Option<Transition> {
        Some(Transition { from, to, failures })
    }

    #[test]
    fn opens_after_n_consecutive_failures_only() {
        let (b, _) = breaker(3, 30);
        assert_eq!(b.failure(), None);
        assert_eq!(b.failure(), None);
        // A success in between resets the count.
        assert_eq!(b.success(), None);
        assert_eq!(b.failure(), None);
        assert_eq!(b.failure(), None);
        assert_eq!(b.state(), State::Closed);
        assert!(b.check().0.is_ok());
        assert_eq!(b.failure(), t(State::Closed, State::Open, 3));
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn open_refuses_with_the_time_left_until_the_cooldown_ends() {
        let (b, clock) = breaker(1, 30);
        b.failure();
        assert_eq!(b.check(), (Err(Rejected { retry_after: Duration::from_secs(30) }), None));
        clock.advance(Duration::from_secs(10));
        assert_eq!(b.check().0, Err(Rejected { retry_after: Duration::from_secs(20) }));
        assert_eq!(b.retry_after(), Some(Duration::from_secs(20)));
        // Never "retry after 0".
        clock.advance(Duration::from_millis(19_600));
        assert_eq!(b.check().0, Err(Rejected { retry_after: Duration::from_secs(1) }));
        // Stragglers failing while open do not extend the cool-down.
        assert_eq!(b.failure(), None);
        assert_eq!(b.retry_after(), Some(Duration::from_millis(400)));
    }

    #[test]
    fn half_open_after_the_cooldown_then_a_success_closes() {
        let (b, clock) = breaker(2, 30);
        b.failure();
        b.failure();
        clock.advance(Duration::from_secs(30));
        assert_eq!(b.check(), (Ok(()), t(State::Open, State::HalfOpen, 2)));
        assert_eq!(b.state(), State::HalfOpen);
        // Further calls in half-open are trials too, without a new transition.
        assert_eq!(b.check(), (Ok(()), None));
        assert_eq!(b.success(), t(State::HalfOpen, State::Closed, 2));
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.retry_after(), None);
        // Counting starts afresh.
        assert_eq!(b.failure(), None);
    }

    #[test]
    fn a_failed_trial_reopens_for_a_full_cooldown() {
        let (b, clock) = breaker(5, 30);
        for _ in 0..5 {
            b.failure();
        }
        clock.advance(Duration::from_secs(31));
        assert!(b.check().0.is_ok());
        assert_eq!(b.failure(), t(State::HalfOpen, State::Open, 6));
        assert_eq!(b.check().0, Err(Rejected { retry_after: Duration::from_secs(30) }));
        clock.advance(Duration::from_secs(30));
        assert_eq!(b.check(), (Ok(()), t(State::Open, State::HalfOpen, 6)));
    }

    #[test]
    fn zero_failures_setting_means_one() {
        let (b, _) = breaker(0, 1);
        assert_eq!(b.failure(), t(State::Closed, State::Open, 1));
    }
}
