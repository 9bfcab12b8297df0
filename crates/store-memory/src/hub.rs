//! The in-process fan-out of live events: one broadcast channel per watched
//! item, and a queue per connection of a user. Publishing never waits: each
//! subscriber has its own place in a bounded buffer, and one that falls
//! more than [`BUFFER`] events or notifications behind gets [`FellBehind`]
//! and is dropped, instead of slowing the bid path or anyone else down.
//!
//! In the embedded default this *is* the event transport; with Redis, each
//! instance's hub is fed by its Redis subscription.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use std::sync::atomic::{AtomicBool, Ordering};

use futures_channel::mpsc;
use futures_util::{StreamExt, stream};
use pp_domain::ids::{ItemId, UserId};
use pp_domain::live::{FellBehind, ItemEvent, LiveStream, LiveSubscriptions, Notification};
use pp_domain::ports::LiveEvents;
use tokio::sync::broadcast;

/// How many events a subscriber may lag behind before it is dropped: well
/// above one bid batch (64 bids, each with an event, published at once), so
/// a healthy subscriber is not dropped by a burst it reads a moment later.
pub const BUFFER: usize = 256;

/// Channels by key, created on first subscription and dropped once nobody
/// listens.
struct Channels<K, V> {
    by_key: Mutex<HashMap<K, broadcast::Sender<V>>>,
    buffer: usize,
}

impl<K: Eq + Hash + Copy, V: Clone + Send + 'static> Channels<K, V> {
    fn new(buffer: usize) -> Self {
        Channels {
            by_key: Mutex::new(HashMap::new()),
            buffer,
        }
    }

    fn subscribe(&self, key: K) -> LiveStream<V> {
        let receiver = match self.by_key.lock() {
            Ok(mut channels) => {
                // Channels whose subscribers all left and that saw no event
                // since are swept once they outnumber the live ones.
                if channels.len() >= 1024 && channels.len().is_power_of_two() {
                    channels.retain(|_, sender| sender.receiver_count() > 0);
                }
                channels
                    .entry(key)
                    .or_insert_with(|| broadcast::channel(self.buffer).0)
                    .subscribe()
            }
            // A panic poisoned the map: this subscriber gets nothing rather
            // than taking the process down.
            Err(_) => broadcast::channel(1).1,
        };
        Box::pin(stream::unfold(Some(receiver), |receiver| async move {
            let mut receiver = receiver?;
            match receiver.recv().await {
                Ok(value) => Some((Ok(value), Some(receiver))),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((Err(FellBehind), None)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        }))
    }

    fn deliver(&self, key: K, value: V) {
        let Ok(mut channels) = self.by_key.lock() else {
            return;
        };
        if let Some(sender) = channels.get(&key)
            && sender.send(value).is_err()
        {
            // Nobody listens any more.
            channels.remove(&key);
        }
    }

    fn len(&self) -> usize {
        self.by_key.lock().map_or(0, |channels| channels.len())
    }
}

/// One connection's queue of a key's values, and whether it was dropped for
/// falling behind.
struct Mailbox<V> {
    sender: mpsc::Sender<V>,
    fell_behind: Arc<AtomicBool>,
}

/// A queue per subscriber, by key. Unlike a broadcast channel, whose ring
/// is allocated whole when it is made, a queue allocates per value it
/// holds: every connected user has one, most of them idle, and a burst (a
/// batch of 64 bids that each auto-raise one user's poisoned bid) still
/// fits.
struct Mailboxes<K, V> {
    by_key: Mutex<HashMap<K, Vec<Mailbox<V>>>>,
}

impl<K: Eq + Hash + Copy, V: Clone + Send + 'static> Mailboxes<K, V> {
    fn new() -> Self {
        Mailboxes {
            by_key: Mutex::new(HashMap::new()),
        }
    }

    fn subscribe(&self, key: K) -> LiveStream<V> {
        // `BUFFER` values, and the one place every sender has besides.
        let (sender, receiver) = mpsc::channel(BUFFER - 1);
        let fell_behind = Arc::new(AtomicBool::new(false));
        if let Ok(mut mailboxes) = self.by_key.lock() {
            // Keys whose connections all left are swept once they
            // outnumber the live ones.
            if mailboxes.len() >= 1024 && mailboxes.len().is_power_of_two() {
                mailboxes.retain(|_, boxes| {
                    boxes.retain(|mailbox| !mailbox.sender.is_closed());
                    !boxes.is_empty()
                });
            }
            let boxes = mailboxes.entry(key).or_default();
            // Connections of this key that closed since its last value (a
            // watcher who reconnects often, and is rarely told anything).
            boxes.retain(|mailbox| !mailbox.sender.is_closed());
            boxes.push(Mailbox {
                sender,
                fell_behind: Arc::clone(&fell_behind),
            });
        }
        // (A panic poisoned the map: the sender is dropped here and this
        // subscriber gets nothing, rather than taking the process down.)
        Box::pin(stream::unfold(Some(receiver), move |receiver| {
            let fell_behind = Arc::clone(&fell_behind);
            async move {
                let mut receiver = receiver?;
                match receiver.next().await {
                    Some(value) => Some((Ok(value), Some(receiver))),
                    None if fell_behind.load(Ordering::Acquire) => Some((Err(FellBehind), None)),
                    None => None,
                }
            }
        }))
    }

    fn deliver(&self, key: K, value: &V) {
        let Ok(mut mailboxes) = self.by_key.lock() else {
            return;
        };
        let Some(boxes) = mailboxes.get_mut(&key) else {
            return;
        };
        boxes.retain_mut(|mailbox| match mailbox.sender.try_send(value.clone()) {
            Ok(()) => true,
            Err(error) => {
                if error.is_full() {
                    // Dropping its sender ends its stream once it read
                    // what it holds; then it hears why.
                    mailbox.fell_behind.store(true, Ordering::Release);
                }
                false
            }
        });
        if boxes.is_empty() {
            mailboxes.remove(&key);
        }
    }

    fn len(&self) -> usize {
        self.by_key.lock().map_or(0, |mailboxes| mailboxes.len())
    }
}

/// Live events of this process, by item and by user.
pub struct EventHub {
    items: Channels<ItemId, ItemEvent>,
    users: Mailboxes<UserId, Notification>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("watched_items", &self.items.len())
            .field("connected_users", &self.users.len())
            .finish()
    }
}

impl EventHub {
    /// A hub with no subscribers.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(EventHub {
            items: Channels::new(BUFFER),
            users: Mailboxes::new(),
        })
    }

    /// Hands an item event to this process's subscribers of its item.
    pub fn deliver(&self, event: ItemEvent) {
        self.items.deliver(event.item(), event);
    }

    /// Hands a notification to this process's connections of its user.
    pub fn deliver_notification(&self, notification: Notification) {
        self.users.deliver(notification.user, &notification);
    }
}

/// Publishing in process: straight to the local subscribers.
impl LiveEvents for EventHub {
    fn publish(&self, event: ItemEvent) {
        self.deliver(event);
    }

    fn notify(&self, notification: Notification) {
        self.deliver_notification(notification);
    }
}

impl LiveSubscriptions for EventHub {
    fn item_events(&self, item: ItemId) -> LiveStream<ItemEvent> {
        self.items.subscribe(item)
    }

    fn notifications(&self, user: UserId) -> LiveStream<Notification> {
        self.users.subscribe(user)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use futures_util::StreamExt;
    use pp_domain::Money;
    use pp_domain::live::{NotificationData, PriceEvent};

    use super::*;

    fn price(item: ItemId, bid_count: u64) -> ItemEvent {
        ItemEvent::Price(PriceEvent {
            item,
            current_price: Money::new(100).unwrap(),
            minimum_next_bid: 105,
            bid_count,
            at: chrono::DateTime::UNIX_EPOCH,
            closing: pp_domain::soft_close::Closing {
                close_at: chrono::DateTime::UNIX_EPOCH,
                extensions_used: 0,
            },
            extension: None,
            ledger_head: None,
        })
    }

    #[tokio::test]
    async fn subscribers_of_an_item_get_its_events_in_order_and_no_others() {
        let hub = EventHub::new();
        let (item, other) = (ItemId::generate(), ItemId::generate());
        let mut first = hub.item_events(item);
        let mut second = hub.item_events(item);
        let mut elsewhere = hub.item_events(other);
        hub.publish(price(item, 1));
        hub.publish(price(item, 2));
        for stream in [&mut first, &mut second] {
            assert_eq!(stream.next().await, Some(Ok(price(item, 1))));
            assert_eq!(stream.next().await, Some(Ok(price(item, 2))));
        }
        hub.publish(price(other, 1));
        assert_eq!(elsewhere.next().await, Some(Ok(price(other, 1))));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_dropped_and_the_others_keep_up() {
        let hub = EventHub::new();
        let item = ItemId::generate();
        let mut slow = hub.item_events(item);
        let mut fast = hub.item_events(item);
        for n in 1..=(BUFFER as u64 + 5) {
            hub.publish(price(item, n));
            assert_eq!(fast.next().await, Some(Ok(price(item, n))));
        }
        assert_eq!(slow.next().await, Some(Err(FellBehind)));
        assert_eq!(slow.next().await, None, "dropped for good");
    }

    fn won(user: UserId) -> Notification {
        Notification {
            user,
            data: NotificationData::Won {
                item: ItemId::generate(),
                final_price: Money::new(300).unwrap(),
            },
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_connection_whose_notifications_pile_up_is_dropped_after_reading_what_it_holds() {
        let hub = EventHub::new();
        let ann = UserId::generate();
        let mut slow = hub.notifications(ann);
        let told = won(ann);
        // A batch's worth fits.
        for _ in 0..64 {
            hub.notify(told);
        }
        let mut kept = hub.notifications(ann);
        for _ in 64..=BUFFER {
            hub.notify(told);
        }
        for _ in 0..BUFFER {
            assert_eq!(slow.next().await, Some(Ok(told)));
        }
        assert_eq!(slow.next().await, Some(Err(FellBehind)));
        assert_eq!(slow.next().await, None, "dropped for good");
        hub.notify(told);
        for _ in 64..=(BUFFER + 1) {
            assert_eq!(kept.next().await, Some(Ok(told)));
        }
    }

    #[tokio::test]
    async fn notifications_reach_only_their_user_and_channels_go_when_nobody_listens() {
        let hub = EventHub::new();
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let mut mine = hub.notifications(ann);
        let theirs = hub.notifications(bob);
        let told = won(ann);
        hub.notify(told);
        assert_eq!(mine.next().await, Some(Ok(told)));
        // A user who reconnects again and again, and is told nothing,
        // keeps one queue, not one per connection that ever was.
        for _ in 0..3 {
            drop(hub.notifications(ann));
        }
        let _again = hub.notifications(ann);
        let queues = hub.users.by_key.lock().unwrap()[&ann].len();
        assert_eq!(queues, 2, "the open one and the newest");
        drop(theirs);
        hub.notify(Notification { user: bob, ..told });
        assert!(format!("{hub:?}").contains("connected_users: 1"));
        // Publishing to nobody is fine.
        hub.publish(price(ItemId::generate(), 1));
    }
}
