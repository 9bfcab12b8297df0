//! Live events across instances: Redis pub/sub on one channel,
//! `{prefix}live`, that every instance subscribes to.
//!
//! Publishing hands the event to this instance's [`EventHub`] at once (so
//! local subscribers never wait for a round trip, and keep working while
//! Redis is down) and queues it for Redis; a background task publishes the
//! queue. Each instance's subscription feeds its hub with what the *other*
//! instances published (messages carry their origin). Pub/sub delivers at
//! most once: an event lost while Redis was away is recovered by the
//! subscribers themselves, which notice the gap in event ids and replay
//! from the database.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use pp_domain::live::{ItemEvent, Notification};
use pp_domain::ports::LiveEvents;
use pp_store_memory::EventHub;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::Redis;

/// Events waiting to be published before new ones are dropped.
const OUTBOX: usize = 4096;

/// Events published in one round trip at most.
const PIPELINE: usize = 128;

/// What travels on the channel: `{origin}|{json}`, the origin first so an
/// instance skips its own messages without parsing them (it delivered them
/// locally already).
#[derive(Debug, Serialize, Deserialize)]
enum Live {
    Item(ItemEvent),
    Notification(Notification),
}

/// The [`LiveEvents`] port on Redis pub/sub, delivering to every instance's hub.
pub struct RedisLiveEvents {
    hub: Arc<EventHub>,
    origin: Uuid,
    outbox: mpsc::Sender<String>,
}

impl std::fmt::Debug for RedisLiveEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLiveEvents")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl RedisLiveEvents {
    /// Starts publishing to, and subscribing from, `redis`; what other
    /// instances publish is delivered to `hub`. Must be called inside the
    /// Tokio runtime; the tasks run until the process ends.
    #[must_use]
    pub fn start(redis: Arc<Redis>, hub: Arc<EventHub>) -> Self {
        let origin = Uuid::new_v4();
        let channel = redis.key("live");
        let (outbox, queue) = mpsc::channel(OUTBOX);
        tokio::spawn(publish_queue(Arc::clone(&redis), channel.clone(), queue));
        tokio::spawn(subscribe(redis, channel, origin, Arc::clone(&hub)));
        RedisLiveEvents {
            hub,
            origin,
            outbox,
        }
    }

    fn send(&self, live: Live) {
        let Ok(json) = serde_json::to_string(&live) else {
            return;
        };
        let payload = format!("{}|{json}", self.origin.simple());
        if self.outbox.try_send(payload).is_err() {
            metrics::counter!("live_events_dropped_total").increment(1);
            tracing::warn!("live event not sent to other instances: the outbox is full");
        }
    }
}

impl LiveEvents for RedisLiveEvents {
    fn publish(&self, event: ItemEvent) {
        self.hub.deliver(event);
        self.send(Live::Item(event));
    }

    fn notify(&self, notification: Notification) {
        self.hub.deliver_notification(notification);
        self.send(Live::Notification(notification));
    }
}

/// Publishes the queue, pipelining whatever has piled up meanwhile into
/// one round trip.
async fn publish_queue(redis: Arc<Redis>, channel: String, mut queue: mpsc::Receiver<String>) {
    let mut payloads = Vec::with_capacity(PIPELINE);
    while queue.recv_many(&mut payloads, PIPELINE).await > 0 {
        let mut pipeline = redis::pipe();
        for payload in payloads.drain(..) {
            pipeline.cmd("PUBLISH").arg(&channel).arg(payload).ignore();
        }
        let count = pipeline.cmd_iter().count() as u64;
        let sent = redis
            .run(|mut c| async move { pipeline.query_async::<()>(&mut c).await })
            .await;
        if let Err(err) = sent {
            metrics::counter!("live_events_dropped_total").increment(count);
            tracing::warn!(error = %err, count, "live events not sent to other instances");
        }
    }
}

/// Keeps a subscription open, reconnecting after failures, and delivers
/// every foreign message to the hub.
async fn subscribe(redis: Arc<Redis>, channel: String, origin: Uuid, hub: Arc<EventHub>) {
    let own = format!("{}|", origin.simple());
    let mut pause = Duration::from_millis(100);
    loop {
        let mut subscribed = false;
        if let Err(err) = listen(&redis, &channel, &own, &hub, &mut subscribed).await {
            tracing::warn!(error = %err, "live events from other instances interrupted; reconnecting");
        }
        if subscribed {
            pause = Duration::from_millis(100);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// How often an idle subscription checks that Redis still answers on it: a
/// connection that went half-open (a partition without a reset) would
/// otherwise wait for messages forever. Ten timeouts, 1 s to 60 s.
fn liveness_period(timeout: Duration) -> Duration {
    (timeout * 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// One subscription, delivering until it ends, fails, or leaves a ping
/// unanswered for the timeout.
async fn listen(
    redis: &Redis,
    channel: &str,
    own: &str,
    hub: &EventHub,
    subscribed: &mut bool,
) -> anyhow::Result<()> {
    let timeout = redis.timeout();
    let (mut sink, mut messages) = redis.pubsub().await?.split();
    tokio::time::timeout(timeout, sink.subscribe(channel))
        .await
        .map_err(|_| {
            anyhow::anyhow!("redis did not confirm the subscription within {timeout:?}")
        })??;
    *subscribed = true;
    tracing::info!(channel, "subscribed to live events");
    let mut liveness = tokio::time::interval(liveness_period(timeout));
    liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    liveness.tick().await;
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    anyhow::bail!("the subscription ended");
                };
                deliver(hub, own, message.get_payload_bytes());
            }
            _ = liveness.tick() => {
                tokio::time::timeout(timeout, sink.ping::<redis::Value>())
                    .await
                    .map_err(|_| anyhow::anyhow!("redis left a ping unanswered for {timeout:?}"))??;
            }
        }
    }
}

/// Hands a message another instance published to the hub.
fn deliver(hub: &EventHub, own: &str, payload: &[u8]) {
    if payload.starts_with(own.as_bytes()) {
        return;
    }
    let live = payload
        .iter()
        .position(|&b| b == b'|')
        .and_then(|bar| serde_json::from_slice::<Live>(&payload[bar + 1..]).ok());
    match live {
        Some(Live::Item(event)) => hub.deliver(event),
        Some(Live::Notification(notification)) => hub.deliver_notification(notification),
        None => tracing::warn!("ignoring a malformed live event"),
    }
}
