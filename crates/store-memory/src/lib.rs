//! # In-process twins of the Redis ports
//!
//! [`MemoryRevocationList`] and [`MemoryRateLimiter`] keep their state in this
//! process only: right for the embedded default (one instance, no Redis) and
//! as the per-instance fallback while Redis is unreachable. [`EventHub`]
//! fans live events out to this process's subscribers; with Redis it is fed
//! by the Redis subscription, without it it is the whole transport.

mod hub;

pub use hub::{BUFFER, EventHub};

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use pp_domain::auth::ports::{RateDecision, RateLimit, RateLimiter, RevocationList};
use pp_domain::{Timestamp, TokenId};
use tokio::time::Instant;

/// Entries beyond which a sweep drops the ones that expired.
const SWEEP_ABOVE: usize = 10_000;

/// Revoked access tokens, remembered until they would have expired anyway.
#[derive(Debug, Default)]
pub struct MemoryRevocationList {
    revoked: Mutex<HashMap<TokenId, Timestamp>>,
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
        if revoked.len() > SWEEP_ABOVE {
            let now = chrono::Utc::now();
            revoked.retain(|_, until| *until > now);
        }
        revoked.insert(token, expires_at);
        Ok(())
    }

    async fn is_revoked(&self, token: TokenId) -> anyhow::Result<bool> {
        let revoked = self
            .revoked
            .lock()
            .map_err(|_| anyhow::anyhow!("revocation list poisoned"))?;
        Ok(revoked.contains_key(&token))
    }
}

/// Sliding-window (log) rate limiting, exact per key, in this process.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
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
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, hits| {
                hits.back()
                    .is_some_and(|last| now.duration_since(*last) < limit.window)
            });
        }
        let hits = windows.entry(key.to_owned()).or_default();
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
