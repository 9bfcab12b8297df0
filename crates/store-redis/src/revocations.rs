//! The access-token blacklist.

use std::time::Duration;

use async_trait::async_trait;
use pp_domain::auth::ports::RevocationList;
use pp_domain::{Timestamp, TokenId};
use redis::AsyncCommands;

use crate::Redis;

/// Revoked token ids as keys that expire with the token (plus the verifier's
/// leeway, so a token is never accepted again in its last seconds).
#[derive(Debug)]
pub struct RedisRevocationList {
    redis: std::sync::Arc<Redis>,
    leeway: Duration,
}

impl RedisRevocationList {
    /// Keys live `leeway` past each token's expiry.
    #[must_use]
    pub fn new(redis: std::sync::Arc<Redis>, leeway: Duration) -> Self {
        RedisRevocationList { redis, leeway }
    }

    fn key(&self, token: TokenId) -> String {
        self.redis.key(&format!("revoked:{token}"))
    }
}

#[async_trait]
impl RevocationList for RedisRevocationList {
    async fn revoke(&self, token: TokenId, expires_at: Timestamp) -> anyhow::Result<()> {
        let remaining = (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let ttl_ms = u64::try_from((remaining + self.leeway).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let key = self.key(token);
        let result = self
            .redis
            .run(|mut c| async move { c.pset_ex::<_, _, ()>(key, 1, ttl_ms).await })
            .await;
        if let Err(err) = &result {
            tracing::warn!(error = %err, "could not blacklist a token; its revoked session still refuses it");
        }
        result
    }

    async fn is_revoked(&self, token: TokenId) -> anyhow::Result<bool> {
        let key = self.key(token);
        self.redis
            .run(|mut c| async move { c.exists::<_, bool>(key).await })
            .await
    }
}
