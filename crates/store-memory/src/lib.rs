//! # In-process twins of the Redis ports
//!
//! [`MemoryRevocationList`], [`MemoryRateLimiter`] and
//! [`MemoryConnectionSlots`] keep their state in this process only: right for the embedded default (one instance, no Redis) and
//! as the per-instance fallback while Redis is unreachable. [`EventHub`]
//! fans live events out to this process's subscribers; with Redis it is fed
//! by the Redis subscription, without it it is the whole transport.

mod hub;
mod slots;

pub use hub::{BUFFER, EventHub};
pub use slots::MemoryConnectionSlots;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use pp_domain::auth::ports::{RateDecision, RateLimit, RateLimiter, RevocationList};
use pp_domain::{Timestamp, TokenId};
use tokio::time::Instant;

/// Entries beyond which a sweep drops the ones that expired.
const SWEEP_ABOVE: usize = 10_000;

/// When a map of expiring entries is swept: once it holds twice what the
/// last sweep left (at least [`SWEEP_ABOVE`]), so that many live entries
/// cost an occasional pass, not one per call.
#[derive(Debug, Default)]
struct SweepSchedule {
    next_at: usize,
}

impl SweepSchedule {
    fn due(&self, len: usize) -> bool {
        len >= self.next_at.max(SWEEP_ABOVE)
    }

    fn swept(&mut self, left: usize) {
        self.next_at = left.saturating_mul(2);
    }
}

/// Revoked access tokens, remembered until they would have expired anyway.
#[derive(Debug, Default)]
pub struct MemoryRevocationList {
    revoked: Mutex<Revoked>,
}

#[derive(Debug, Default)]
struct Revoked {
    until: HashMap<TokenId, Timestamp>,
    sweep: SweepSchedule,
}

impl MemoryRevocationList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RevocationList for MemoryRevocationList {
    async fn revoke(&self, token: TokenId, expires_at: Timestamp) -> anyhow::Result<()> {
        let mut revoked = self
            .revoked
            .lock()
            .map_err(|_| anyhow::anyhow!("revocation list poisoned"))?;
        if revoked.sweep.due(revoked.until.len()) {
            let now = chrono::Utc::now();
            revoked.until.retain(|_, until| *until > now);
            let left = revoked.until.len();
            revoked.sweep.swept(left);
        }
        revoked.until.insert(token, expires_at);
        Ok(())
    }

    async fn is_revoked(&self, token: TokenId) -> anyhow::Result<bool> {
        let revoked = self
            .revoked
            .lock()
            .map_err(|_| anyhow::anyhow!("revocation list poisoned"))?;
        Ok(revoked.until.contains_key(&token))
    }
}

/// Sliding-window (log) rate limiting, exact per key, in this process.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    by_key: HashMap<String, Window>,
    sweep: SweepSchedule,
}

/// One key's hits, and the length of its window: keys of different limits
/// (10 s global, 60 s auth) share the map, and each expires by its own.
#[derive(Debug)]
struct Window {
    hits: VecDeque<Instant>,
    length: Duration,
}

impl Window {
    fn is_empty_at(&self, now: Instant) -> bool {
        self.hits
            .back()
            .is_none_or(|last| now.duration_since(*last) >= self.length)
    }
}

impl MemoryRateLimiter {
    /// No hits yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn decide(&self, key: &str, limit: RateLimit, now: Instant) -> RateDecision {
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock means a panic elsewhere; refusing everything
            // would turn it into an outage, so let the request through.
            return RateDecision {
                allowed: true,
                limit: limit.max,
                remaining: 0,
                reset_after: limit.window,
            };
        };
        let windows = &mut *windows;
        if windows.sweep.due(windows.by_key.len()) {
            windows.by_key.retain(|_, window| !window.is_empty_at(now));
            windows.sweep.swept(windows.by_key.len());
        }
        let window = windows
            .by_key
            .entry(key.to_owned())
            .or_insert_with(|| Window {
                hits: VecDeque::new(),
                length: limit.window,
            });
        let hits = &mut window.hits;
        while hits
            .front()
            .is_some_and(|first| now.duration_since(*first) >= limit.window)
        {
            hits.pop_front();
        }
        let allowed = hits.len() < limit.max as usize;
        if allowed {
            hits.push_back(now);
        }
        let reset_after = hits.front().map_or(Duration::ZERO, |first| {
            limit.window.saturating_sub(now.duration_since(*first))
        });
        let used = u32::try_from(hits.len()).unwrap_or(u32::MAX);
        RateDecision {
            allowed,
            limit: limit.max,
            remaining: limit.max.saturating_sub(used),
            reset_after,
        }
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> RateDecision {
        self.decide(key, limit, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    const THREE_PER_SECOND: RateLimit = RateLimit {
        max: 3,
        window: Duration::from_secs(1),
    };

    #[tokio::test(start_paused = true)]
    async fn the_window_slides_one_hit_at_a_time() {
        let limiter = MemoryRateLimiter::new();
        let mut remaining = Vec::new();
        for _ in 0..3 {
            let decision = limiter.hit("k", THREE_PER_SECOND).await;
            assert!(decision.allowed);
            remaining.push(decision.remaining);
            tokio::time::advance(Duration::from_millis(300)).await;
        }
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.hit("k", THREE_PER_SECOND).await;
        assert!(!refused.allowed);
        assert_eq!(refused.reset_after, Duration::from_millis(100));
        assert!(
            limiter.hit("other", THREE_PER_SECOND).await.allowed,
            "keys are independent"
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        // The first hit left the window: exactly one slot is free.
        assert!(limiter.hit("k", THREE_PER_SECOND).await.allowed);
        assert!(!limiter.hit("k", THREE_PER_SECOND).await.allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_keeps_each_window_for_its_own_length() {
        let limiter = MemoryRateLimiter::new();
        let one_per_minute = RateLimit {
            max: 1,
            window: Duration::from_secs(60),
        };
        assert!(limiter.hit("auth:ann", one_per_minute).await.allowed);
        // Up to SWEEP_ABOVE keys in all, so the next hit is the first to sweep.
        for client in 0..SWEEP_ABOVE - 1 {
            limiter
                .hit(&format!("global:{client}"), THREE_PER_SECOND)
                .await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        // This hit sweeps the map: the one-second windows are gone, the
        // minute-long one is not.
        assert!(limiter.hit("global:new", THREE_PER_SECOND).await.allowed);
        assert!(limiter.windows.lock().unwrap().by_key.len() <= 2);
        assert!(!limiter.hit("auth:ann", one_per_minute).await.allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn many_live_keys_are_swept_now_and_then_not_on_every_hit() {
        let limiter = MemoryRateLimiter::new();
        let one_per_minute = RateLimit {
            max: 1,
            window: Duration::from_secs(60),
        };
        for client in 0..=SWEEP_ABOVE {
            limiter.hit(&format!("auth:{client}"), one_per_minute).await;
        }
        // All live: the sweep kept them and waits until there are twice as many.
        let next = limiter.windows.lock().unwrap().sweep.next_at;
        assert_eq!(next, 2 * SWEEP_ABOVE);
        assert!(!limiter.hit("auth:0", one_per_minute).await.allowed);
    }

    #[tokio::test]
    async fn revoked_tokens_are_remembered() {
        let list = MemoryRevocationList::new();
        let (revoked, other) = (TokenId::generate(), TokenId::generate());
        list.revoke(revoked, Utc::now() + chrono::Duration::minutes(5))
            .await
            .unwrap();
        assert!(list.is_revoked(revoked).await.unwrap());
        assert!(!list.is_revoked(other).await.unwrap());
    }
}
