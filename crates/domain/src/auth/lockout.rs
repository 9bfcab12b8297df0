//! Account lockout after repeated failed logins, with exponential backoff.
//!
//! The `threshold`-th consecutive failure locks the account for `first`; every
//! further failure (each made after the previous lock ran out) doubles it, up
//! to `cap`: 1, 2, 4 … 60 minutes by default. A successful login, or a
//! password reset, starts the count again.

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
        // 2^doublings overflows nothing before the cap: stop doubling at 2^20.
        let factor = 1i32 << doublings.min(20);
        Some((self.first * factor).min(self.cap))
    }
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
