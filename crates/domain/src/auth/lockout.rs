//! Account lockout after repeated failed logins, with exponential backoff.
//!
//! The `threshold`-th consecutive failure locks the account for `first`; every
//! further failure (each made after the previous lock ran out) doubles it, up
//! to `cap`: 1, 2, 4 … 60 minutes by default. A successful login, or a
//! password reset, starts the count again.
//!
//! Guesses sent at once are all checked before the first failure is
//! counted, so the lock is decided when each check *ends*: a failure is
//! counted (and the lock it reaches set) only if the account is not locked
//! by then ([`FailedAttempt`]), and a right password is refused too when
//! concurrent failures locked the account meanwhile. Either way, once the
//! lock is set every answer is the lock, so the guesses checked after it
//! tell nothing.

use chrono::Duration;

use crate::item::Timestamp;

/// The lockout rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    threshold: u32,
    first: Duration,
    cap: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            threshold: 5,
            first: Duration::minutes(1),
            cap: Duration::hours(1),
        }
    }
}

impl LockoutPolicy {
    /// How long to lock the account after its `consecutive`-th failure in a row,
    /// or `None` while below the threshold.
    #[must_use]
    pub fn lock_for(&self, consecutive: u32) -> Option<Duration> {
        let doublings = consecutive.checked_sub(self.threshold)?;
        Some(self.lock_after(doublings))
    }

    /// The lock after the threshold's failure and `doublings` more.
    fn lock_after(&self, doublings: u32) -> Duration {
        // 2^doublings overflows nothing before the cap: stop doubling at 2^20.
        let factor = 1i32 << doublings.min(MAX_DOUBLINGS);
        (self.first * factor).min(self.cap)
    }

    /// Every failure count at which the lock changes, with that lock, in
    /// order: the threshold's, each doubling, and the first to reach the cap.
    /// Any later count locks for as long as the last one.
    #[must_use]
    pub fn schedule(&self) -> Vec<(u32, Duration)> {
        let mut steps = Vec::new();
        for count in self.threshold..=self.threshold.saturating_add(MAX_DOUBLINGS) {
            let lock = self.lock_after(count - self.threshold);
            steps.push((count, lock));
            if lock >= self.cap {
                break;
            }
        }
        steps
    }
}

/// Doubling stops here at the latest (2^20 minutes is far past any cap).
const MAX_DOUBLINGS: u32 = 20;

/// What recording a wrong password found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedAttempt {
    /// Counted: `failures` includes it, and `locks_for` is the lock it set
    /// because it reached the threshold.
    Counted {
        /// Consecutive failures, this one included.
        failures: u32,
        /// The lock this failure set, if it reached the threshold.
        locks_for: Option<Duration>,
    },
    /// The account was locked meanwhile (by failures checked concurrently):
    /// nothing counted, and the answer must be the lock, not the failure.
    AlreadyLocked {
        /// Until the lock lifts.
        retry_after: Duration,
    },
}

/// An account's consecutive failed logins and current lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LoginFailures {
    /// Failures since the last success.
    pub consecutive: u32,
    /// Locked until then, if at all.
    pub locked_until: Option<Timestamp>,
}

impl LoginFailures {
    /// How much longer the account stays locked at `now`, if it is.
    #[must_use]
    pub fn remaining_lock(&self, now: Timestamp) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn backoff_starts_at_the_fifth_failure_and_doubles_to_an_hour() {
        let policy = LockoutPolicy::default();
        let minutes: Vec<Option<i64>> = (1..=13)
            .map(|n| policy.lock_for(n).map(|d| d.num_minutes()))
            .collect();
        assert_eq!(
            minutes,
            [
                None,
                None,
                None,
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(32),
                Some(60),
                Some(60),
                Some(60)
            ]
        );
        assert_eq!(policy.lock_for(u32::MAX), Some(Duration::hours(1)));
    }

    #[test]
    fn the_schedule_lists_each_lock_up_to_the_cap() {
        let minutes: Vec<(u32, i64)> = LockoutPolicy::default()
            .schedule()
            .into_iter()
            .map(|(count, lock)| (count, lock.num_minutes()))
            .collect();
        assert_eq!(
            minutes,
            [(5, 1), (6, 2), (7, 4), (8, 8), (9, 16), (10, 32), (11, 60)]
        );
    }

    #[test]
    fn a_lock_lasts_until_its_time() {
        let now = Utc::now();
        let locked = LoginFailures {
            consecutive: 5,
            locked_until: Some(now + Duration::seconds(30)),
        };
        assert_eq!(locked.remaining_lock(now), Some(Duration::seconds(30)));
        assert_eq!(locked.remaining_lock(now + Duration::seconds(30)), None);
        assert_eq!(LoginFailures::default().remaining_lock(now), None);
    }
}
