//! Sliding-window rate limits shared by all instances.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pp_domain::auth::ports::{RateDecision, RateLimit, RateLimiter};
use pp_store_memory::MemoryRateLimiter;

use crate::Redis;

/// One atomic call per hit: drop hits older than the window, count, add this
/// one if there is room, and (re)set the key's TTL to the window, so no key
/// ever lives forever. Redis's own clock is used, so instances with skewed
/// clocks still share one window.
const SLIDING_WINDOW: &str = r"
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, now .. '-' .. ARGV[3])
  count = count + 1
  allowed = 1
end
local reset = 0
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[2] then
  reset = tonumber(oldest[2]) + window - now
end
redis.call('PEXPIRE', key, math.ceil(window / 1000))
return {allowed, limit - count, reset}
";

/// The [`RateLimiter`] port on Redis, with per-instance windows while Redis
/// is unreachable.
pub struct RedisRateLimiter {
    redis: Arc<Redis>,
    script: redis::Script,
    fallback: MemoryRateLimiter,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// Limits on `redis`.
    #[must_use]
    pub fn new(redis: Arc<Redis>) -> Self {
        RedisRateLimiter {
            redis,
            script: redis::Script::new(SLIDING_WINDOW),
            fallback: MemoryRateLimiter::new(),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> RateDecision {
        let redis_key = self.redis.key(&format!("rate:{key}"));
        let window_us = u64::try_from(limit.window.as_micros()).unwrap_or(u64::MAX);
        let member = uuid::Uuid::new_v4().simple().to_string();
        let script = &self.script;
        let outcome = self
            .redis
            .run(|mut c| async move {
                script
                    .key(redis_key)
                    .arg(window_us)
                    .arg(limit.max)
                    .arg(member)
                    .invoke_async::<(i64, i64, i64)>(&mut c)
                    .await
            })
            .await;
        match outcome {
            Ok((allowed, remaining, reset_us)) => RateDecision {
                allowed: allowed == 1,
                limit: limit.max,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(0),
                reset_after: Duration::from_micros(u64::try_from(reset_us.max(0)).unwrap_or(0)),
            },
            Err(err) => {
                tracing::warn!(error = %err, "rate limiting on this instance alone while Redis is unreachable");
                self.fallback.hit(key, limit).await
            }
        }
    }
}
