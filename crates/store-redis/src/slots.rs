//! Places for open live connections counted across every instance: one
//! sorted set per key (an address's streams, an account's sockets) whose
//! members are leases scored by when they lapse.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pp_domain::live::{ConnectionSlots, SlotLease};
use pp_store_memory::MemoryConnectionSlots;

use crate::Redis;

/// Drop lapsed leases, count, take a place if one is free; keep the key
/// as long as its longest lease. Redis's clock, so skewed instances agree.
const TAKE: &str = r"
local key = KEYS[1]
local max = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) >= max then
  return 0
end
redis.call('ZADD', key, now + ttl, ARGV[3])
local keep = math.ceil(ttl / 1000)
if redis.call('PTTL', key) < keep then
  redis.call('PEXPIRE', key, keep)
end
return 1
";

/// Push a lease's lapse `ttl` from now, if it is still held: a lease given
/// back (a renewal racing the give-back) or lapsed stays gone.
const RENEW: &str = r"
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local renewed = redis.call('ZADD', key, 'XX', 'CH', now + ttl, ARGV[2])
local keep = math.ceil(ttl / 1000)
if renewed == 1 and redis.call('PTTL', key) < keep then
  redis.call('PEXPIRE', key, keep)
end
return renewed
";

/// The [`ConnectionSlots`] port on Redis, counting on this instance alone
/// while Redis is unreachable.
pub struct RedisConnectionSlots {
    redis: Arc<Redis>,
    take: redis::Script,
    renew: redis::Script,
    fallback: MemoryConnectionSlots,
    outage: Outage,
}

/// When the last warning about counting alone was logged: one a minute,
/// not one per connection opened during an outage.
#[derive(Debug, Default)]
struct Outage(std::sync::Mutex<Option<std::time::Instant>>);

impl Outage {
    fn starts_now(&self) -> bool {
        let mut last = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last.is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }
}

impl std::fmt::Debug for RedisConnectionSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnectionSlots")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisConnectionSlots {
    /// Places counted on `redis`.
    #[must_use]
    pub fn new(redis: Arc<Redis>) -> Self {
        RedisConnectionSlots {
            redis,
            take: redis::Script::new(TAKE),
            renew: redis::Script::new(RENEW),
            fallback: MemoryConnectionSlots::new(),
            outage: Outage::default(),
        }
    }

    fn key(&self, key: &str) -> String {
        self.redis.key(&format!("slots:{key}"))
    }
}

fn micros(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX)
}

#[async_trait]
impl ConnectionSlots for RedisConnectionSlots {
    /// Places this instance took on its own while Redis was out of reach
    /// still count: Redis is given only what they leave of `max`.
    async fn take(&self, key: &str, max: u32, ttl: Duration) -> Option<SlotLease> {
        let shared_max = max.saturating_sub(self.fallback.count(key));
        if shared_max == 0 {
            return None;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (redis_key, script, member) = (self.key(key), &self.take, id.clone());
        let taken = self
            .redis
            .run(|mut c| async move {
                script
                    .key(redis_key)
                    .arg(shared_max)
                    .arg(micros(ttl))
                    .arg(member)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        match taken {
            Ok(1) => Some(SlotLease {
                key: key.to_owned(),
                id,
                local: false,
            }),
            Ok(_) => None,
            Err(err) => {
                if self.outage.starts_now() {
                    tracing::warn!(error = %err, "counting live connections on this instance alone while Redis is unreachable");
                }
                self.fallback.take(key, max, ttl).await
            }
        }
    }

    async fn renew(&self, lease: &SlotLease, ttl: Duration) {
        if lease.local {
            return self.fallback.renew(lease, ttl).await;
        }
        let (redis_key, script, member) = (self.key(&lease.key), &self.renew, lease.id.clone());
        let renewed = self
            .redis
            .run(|mut c| async move {
                script
                    .key(redis_key)
                    .arg(micros(ttl))
                    .arg(member)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        // Unrenewed, the lease lapses: the connection goes on uncounted
        // (an outage longer than a lease lets extra places through), never
        // the other way round.
        if let Err(err) = renewed {
            tracing::debug!(error = %err, "a live connection's lease could not be renewed");
        }
    }

    async fn give_back(&self, lease: &SlotLease) {
        if lease.local {
            return self.fallback.give_back(lease).await;
        }
        let (redis_key, member) = (self.key(&lease.key), lease.id.clone());
        let given = self
            .redis
            .run(|mut c| async move {
                redis::cmd("ZREM")
                    .arg(redis_key)
                    .arg(member)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
        if let Err(err) = given {
            tracing::debug!(error = %err, "a live connection's place is given back when its lease lapses");
        }
    }
}
