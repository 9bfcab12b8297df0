//! The SSE fan-out of one instance: each watched item's events are taken
//! from the hub once, encoded once as `text/event-stream` bytes, and shared
//! by every stream of the item here (`Bytes`: a reference count, not a
//! copy). Events the hub hands over together (a bid batch's) travel as one
//! [`Frame`], so a subscriber is woken and written once per batch, not once
//! per bid.
//!
//! Each subscriber's place in an item's ring of frames is bounded
//! ([`FRAMES`]): one that falls further behind is told so and its stream
//! ends, and its client resumes with `Last-Event-ID` (replayed from the
//! database) instead of the server buffering for it. When the relay itself
//! falls behind the hub, it subscribes again at once and sends a
//! [`Frame::gap`]: every stream fills what it missed from the database and
//! stays open, so no watcher is cut for it and none reconnects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use actix_web::web::Bytes;
use futures_util::{FutureExt, StreamExt};
use pp_domain::ItemId;
use pp_domain::live::{ItemEvent, LiveStream, LiveSubscriptions};
use tokio::sync::broadcast;

/// Frames a subscriber may lag behind its item's newest before it is
/// dropped: as many as the hub holds events (a frame holds one or more),
/// shared by every stream of the item (a ring per item, not per stream,
/// of pointers: about 10 KiB per watched item).
pub const FRAMES: usize = 256;

/// Consecutive events of one item, encoded: ids `first`, `first + 1`, …
#[derive(Debug, Clone)]
pub struct Frame {
    first: u64,
    /// Where each event's bytes end, in id order.
    ends: Arc<[usize]>,
    bytes: Bytes,
    /// Its last event ends bidding (`closed`): nothing can follow.
    finished: bool,
    /// When the relay made it: every event it lacks before `first` was
    /// committed by then.
    made_at: Instant,
}

impl Frame {
    /// Encodes `events`, which must be consecutive by id and not empty.
    fn encode(events: &[ItemEvent], encode: fn(&ItemEvent) -> Bytes) -> Frame {
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(events.len());
        for event in events {
            bytes.extend_from_slice(&encode(event));
            ends.push(bytes.len());
        }
        Frame {
            first: events.first().map_or(0, ItemEvent::id),
            ends: ends.into(),
            bytes: Bytes::from(bytes),
            finished: events
                .last()
                .is_some_and(|e| matches!(e, ItemEvent::Closed(_))),
            made_at: Instant::now(),
        }
    }

    /// A frame of no events telling the streams that the relay fell
    /// behind the hub: events may be missing, to be read from the database.
    fn gap() -> Frame {
        Frame {
            first: 0,
            ends: Arc::from([]),
            bytes: Bytes::new(),
            finished: false,
            made_at: Instant::now(),
        }
    }

    /// When the relay made it: a read of the item begun since sees every
    /// event the frame shows to be missing.
    #[must_use]
    pub fn made_at(&self) -> Instant {
        self.made_at
    }

    /// Whether it is a [`Frame::gap`].
    #[must_use]
    pub fn is_gap(&self) -> bool {
        self.ends.is_empty()
    }

    /// The id of its first event.
    #[must_use]
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The id of its last event (of a gap: none, 0).
    #[must_use]
    pub fn last(&self) -> u64 {
        (self.first + self.ends.len() as u64).saturating_sub(1)
    }

    /// Whether its last event ends bidding.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The encoded events after `id` (all of them if `id` is before the
    /// frame): a slice of the shared bytes.
    #[must_use]
    pub fn after(&self, id: u64) -> Bytes {
        let Some(skipped) = id.checked_sub(self.first).map(|n| n + 1) else {
            return self.bytes.clone();
        };
        let start = usize::try_from(skipped)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|index| self.ends.get(index))
            .copied()
            .unwrap_or(self.bytes.len());
        self.bytes.slice(start..)
    }
}

/// One item's relay: the task that reads the hub and the channel it fills.
/// Dropped with its last subscriber, which stops the task.
struct Relay {
    /// Weak: the task holds the only strong sender, so when it ends (the
    /// hub went away) every subscriber hears
    /// that at once.
    frames: broadcast::WeakSender<Arc<Frame>>,
    forwarding: tokio::task::AbortHandle,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.forwarding.abort();
    }
}

/// A subscriber's place in its item's frames.
pub struct Frames {
    receiver: broadcast::Receiver<Arc<Frame>>,
    _relay: Arc<Relay>,
}

impl std::fmt::Debug for Frames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames").finish_non_exhaustive()
    }
}

impl Frames {
    /// The next frame, or `None` once this subscriber fell more than
    /// [`FRAMES`] behind or the relay ended: its client resumes.
    pub async fn next(&mut self) -> Option<Arc<Frame>> {
        self.receiver.recv().await.ok()
    }
}

/// This instance's relays, by item.
pub struct ItemFrames {
    live: Arc<dyn LiveSubscriptions>,
    encode: fn(&ItemEvent) -> Bytes,
    relays: Mutex<HashMap<ItemId, Weak<Relay>>>,
}

impl std::fmt::Debug for ItemFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let relays = self.relays.lock().map_or(0, |relays| relays.len());
        f.debug_struct("ItemFrames")
            .field("relays", &relays)
            .finish_non_exhaustive()
    }
}

impl ItemFrames {
    /// Relays from `live`, each event encoded as the SSE streams send it.
    #[must_use]
    pub fn new(live: Arc<dyn LiveSubscriptions>) -> Self {
        Self::encoding(live, crate::routes::live::encode_item_event)
    }

    /// Relays from `live`, each event encoded by `encode`.
    fn encoding(live: Arc<dyn LiveSubscriptions>, encode: fn(&ItemEvent) -> Bytes) -> Self {
        ItemFrames {
            live,
            encode,
            relays: Mutex::new(HashMap::new()),
        }
    }

    /// Every frame of `item` published from now on. Subscribes to the hub
    /// before it returns (when it starts the item's relay), so a read of the
    /// item made afterwards misses nothing in between.
    pub fn subscribe(&self, item: ItemId) -> Frames {
        let Ok(mut relays) = self.relays.lock() else {
            // A panic poisoned the map: a relay of its own for this one.
            return self.start(item).1;
        };
        if let Some(relay) = relays.get(&item).and_then(Weak::upgrade)
            && let Some(sender) = relay.frames.upgrade()
        {
            return Frames {
                receiver: sender.subscribe(),
                _relay: relay,
            };
        }
        if relays.len() >= 1024 && relays.len().is_power_of_two() {
            relays.retain(|_, relay| relay.strong_count() > 0);
        }
        let (relay, frames) = self.start(item);
        relays.insert(item, relay);
        frames
    }

    fn start(&self, item: ItemId) -> (Weak<Relay>, Frames) {
        let (sender, receiver) = broadcast::channel(FRAMES);
        let weak = sender.downgrade();
        let events = self.live.item_events(item);
        let hub = Hub {
            live: Arc::clone(&self.live),
            item,
            encode: self.encode,
        };
        let forwarding = tokio::spawn(hub.forward(events, sender)).abort_handle();
        let relay = Arc::new(Relay {
            frames: weak,
            forwarding,
        });
        (
            Arc::downgrade(&relay),
            Frames {
                receiver,
                _relay: relay,
            },
        )
    }
}

/// Where a relay reads, and how it encodes.
struct Hub {
    live: Arc<dyn LiveSubscriptions>,
    item: ItemId,
    encode: fn(&ItemEvent) -> Bytes,
}

impl Hub {
    /// Reads the hub and sends what it has ready, in runs of consecutive
    /// ids, as frames. Fallen behind the hub, it subscribes again and sends
    /// a gap; it ends (dropping the only sender, which ends the streams)
    /// only when the hub does.
    async fn forward(
        self,
        mut events: LiveStream<ItemEvent>,
        frames: broadcast::Sender<Arc<Frame>>,
    ) {
        let mut run: Vec<ItemEvent> = Vec::new();
        loop {
            let fell_behind = match events.next().await {
                Some(Ok(event)) => {
                    run.push(event);
                    self.take_ready(&mut events, &mut run, &frames)
                }
                Some(Err(_)) => true,
                None => return,
            };
            self.send(&frames, &mut run);
            if fell_behind {
                events = self.live.item_events(self.item);
                // No subscriber left is no error: the relay is being dropped.
                let _ = frames.send(Arc::new(Frame::gap()));
            }
        }
    }

    /// Adds to `run` what else the hub has ready now, sending a frame at
    /// each gap in ids (the streams fill gaps from the database); whether
    /// the subscription fell behind meanwhile.
    fn take_ready(
        &self,
        events: &mut LiveStream<ItemEvent>,
        run: &mut Vec<ItemEvent>,
        frames: &broadcast::Sender<Arc<Frame>>,
    ) -> bool {
        loop {
            match events.next().now_or_never() {
                Some(Some(Ok(next))) => {
                    if run.last().is_some_and(|last| next.id() != last.id() + 1) {
                        self.send(frames, run);
                    }
                    run.push(next);
                }
                None | Some(None) => return false,
                Some(Some(Err(_))) => return true,
            }
        }
    }

    fn send(&self, frames: &broadcast::Sender<Arc<Frame>>, run: &mut Vec<ItemEvent>) {
        if !run.is_empty() {
            let _ = frames.send(Arc::new(Frame::encode(run, self.encode)));
            run.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use pp_domain::Money;
    use pp_domain::live::{ClosedEvent, PriceEvent};
    use pp_domain::soft_close::Closing;
    use pp_store_memory::EventHub;

    use super::*;

    fn price(item: ItemId, bid_count: u64) -> ItemEvent {
        ItemEvent::Price(PriceEvent {
            item,
            current_price: Money::new(100).unwrap(),
            minimum_next_bid: 105,
            bid_count,
            at: chrono::DateTime::UNIX_EPOCH,
            closing: Closing {
                close_at: chrono::DateTime::UNIX_EPOCH,
                extensions_used: 0,
            },
            extension: None,
            ledger_head: None,
        })
    }

    fn encode(event: &ItemEvent) -> Bytes {
        Bytes::from(format!("id: {}\n\n", event.id()))
    }

    #[tokio::test]
    async fn what_the_hub_has_ready_at_once_is_one_frame_shared_by_every_subscriber() {
        let hub = EventHub::new();
        let frames = ItemFrames::encoding(hub.clone(), encode);
        let item = ItemId::generate();
        let mut first = frames.subscribe(item);
        let mut second = frames.subscribe(item);
        for n in 1..=3 {
            hub.deliver(price(item, n));
        }
        let (a, b) = (first.next().await.unwrap(), second.next().await.unwrap());
        assert_eq!((a.first(), a.last()), (1, 3));
        assert_eq!(&a.bytes[..], b"id: 1\n\nid: 2\n\nid: 3\n\n");
        assert_eq!(a.bytes.as_ptr(), b.bytes.as_ptr(), "shared, not copied");
        assert_eq!(&a.after(0)[..], &a.bytes[..]);
        assert_eq!(&a.after(1)[..], b"id: 2\n\nid: 3\n\n");
        assert_eq!(&a.after(3)[..], b"");
        assert!(!a.finished());
        assert!(format!("{frames:?}").contains("relays: 1"));
    }

    #[tokio::test]
    async fn a_gap_in_ids_starts_a_new_frame_and_closed_finishes_one() {
        let hub = EventHub::new();
        let frames = ItemFrames::encoding(hub.clone(), encode);
        let item = ItemId::generate();
        let mut watching = frames.subscribe(item);
        hub.deliver(price(item, 1));
        hub.deliver(price(item, 3));
        hub.deliver(ItemEvent::Closed(ClosedEvent {
            item,
            bid_count: 3,
            final_price: None,
            has_winner: false,
            cancelled: false,
        }));
        let one = watching.next().await.unwrap();
        assert_eq!((one.first(), one.last()), (1, 1));
        let rest = watching.next().await.unwrap();
        assert_eq!((rest.first(), rest.last()), (3, 4));
        assert!(rest.finished());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_relay_that_falls_behind_the_hub_subscribes_again_and_says_events_may_be_missing() {
        let hub = EventHub::new();
        let frames = ItemFrames::encoding(hub.clone(), encode);
        let item = ItemId::generate();
        let mut watching = frames.subscribe(item);
        // The relay has not run yet: the hub's buffer overflows under it.
        for n in 1..=(pp_store_memory::BUFFER as u64 + 10) {
            hub.deliver(price(item, n));
        }
        let gap = loop {
            let frame = watching.next().await.unwrap();
            if frame.is_gap() {
                break frame;
            }
        };
        assert_eq!(gap.last(), 0);
        assert_eq!(&gap.after(7)[..], b"");
        hub.deliver(price(item, 500));
        assert_eq!(watching.next().await.unwrap().first(), 500);
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_and_the_relay_goes_with_the_last_one() {
        let hub = EventHub::new();
        let frames = ItemFrames::encoding(hub.clone(), encode);
        let item = ItemId::generate();
        let mut slow = frames.subscribe(item);
        let mut fast = frames.subscribe(item);
        for n in 1..=(FRAMES as u64 + 5) {
            hub.deliver(price(item, n));
            assert_eq!(fast.next().await.unwrap().last(), n);
        }
        assert!(slow.next().await.is_none(), "dropped, to resume");
        drop((slow, fast));
        tokio::task::yield_now().await;
        // A new subscriber starts a new relay, which still delivers.
        let mut again = frames.subscribe(item);
        hub.deliver(price(item, 100));
        assert_eq!(again.next().await.unwrap().first(), 100);
    }
}
