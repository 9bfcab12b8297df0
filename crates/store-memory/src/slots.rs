//! Places for open live connections, counted in this process: exact for
//! the embedded default (one instance), and the per-instance fallback
//! while Redis is out of reach.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use pp_domain::live::{ConnectionSlots, SlotLease};
use tokio::time::Instant;

use crate::SweepSchedule;

/// Each key's taken places and when each lapses unless renewed.
#[derive(Debug, Default)]
pub struct MemoryConnectionSlots {
    taken: Mutex<Taken>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Taken {
    by_key: HashMap<String, HashMap<String, Instant>>,
    sweep: SweepSchedule,
}

impl MemoryConnectionSlots {
    /// Nothing taken yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Places of `key` held now.
    #[must_use]
    pub fn count(&self, key: &str) -> u32 {
        let now = Instant::now();
        let taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        taken.by_key.get(key).map_or(0, |places| {
            u32::try_from(places.values().filter(|until| **until > now).count()).unwrap_or(u32::MAX)
        })
    }
}

#[async_trait]
impl ConnectionSlots for MemoryConnectionSlots {
    async fn take(&self, key: &str, max: u32, ttl: Duration) -> Option<SlotLease> {
        let now = Instant::now();
        // A panic elsewhere left the map as it was: go on counting.
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = &mut *taken;
        if taken.sweep.due(taken.by_key.len()) {
            taken
                .by_key
                .retain(|_, places| places.values().any(|until| *until > now));
            taken.sweep.swept(taken.by_key.len());
        }
        let places = taken.by_key.entry(key.to_owned()).or_default();
        places.retain(|_, until| *until > now);
        if places.len() >= max as usize {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        places.insert(id.clone(), now + ttl);
        Some(SlotLease {
            key: key.to_owned(),
            id,
            local: true,
        })
    }

    async fn renew(&self, lease: &SlotLease, ttl: Duration) {
        // Only a place still held: a lease given back (or lapsed) stays gone.
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(until) = taken
            .by_key
            .get_mut(&lease.key)
            .and_then(|places| places.get_mut(&lease.id))
        {
            *until = Instant::now() + ttl;
        }
    }

    async fn give_back(&self, lease: &SlotLease) {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(places) = taken.by_key.get_mut(&lease.key) {
            places.remove(&lease.id);
            if places.is_empty() {
                taken.by_key.remove(&lease.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_key_takes_at_most_its_places_and_a_given_back_one_is_free_again() {
        let slots = MemoryConnectionSlots::new();
        let first = slots.take("sse:a", 2, TTL).await.unwrap();
        let _second = slots.take("sse:a", 2, TTL).await.unwrap();
        assert!(slots.take("sse:a", 2, TTL).await.is_none());
        assert!(
            slots.take("sse:b", 2, TTL).await.is_some(),
            "keys are independent"
        );
        slots.give_back(&first).await;
        assert_eq!(slots.count("sse:a"), 1);
        // A renewal racing the give-back does not bring the place back.
        slots.renew(&first, TTL).await;
        assert_eq!(slots.count("sse:a"), 1);
        assert!(slots.take("sse:a", 2, TTL).await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_nobody_renews_lapses_and_a_renewed_one_does_not() {
        let slots = MemoryConnectionSlots::new();
        let renewed = slots.take("ws:ann", 2, TTL).await.unwrap();
        let _abandoned = slots.take("ws:ann", 2, TTL).await.unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        slots.renew(&renewed, TTL).await;
        tokio::time::advance(Duration::from_secs(20)).await;
        // The abandoned lease lapsed: one place is free, not two.
        assert!(slots.take("ws:ann", 2, TTL).await.is_some());
        assert!(slots.take("ws:ann", 2, TTL).await.is_none());
    }
}
