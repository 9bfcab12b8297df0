//! The auction's use cases, written against the ports only.

use std::sync::Arc;

use thiserror::Error;

use crate::auth::ports::AuditLog;
use crate::auth::tokens::{AuditEntry, AuditEvent, RequestContext};
use crate::bid::{Bid, BidCursor, BidOffer, BidView};
use crate::engine::{BidCommand, revealed_view, view_of};
use crate::ids::{ItemId, UserId};
use crate::item::{
    Item, ItemCursor, ItemDraft, ItemEdit, ItemEditDraft, ItemFilter, ItemSort, ItemStatus,
    ListedItem, NewItem,
};
use crate::live::{ItemEvent, PriceEvent, notifications_after_bid, notifications_after_close};
use crate::notifications::{NotificationCursor, StoredNotification};
use crate::ports::{
    AcceptedBid, AuctionStore, BidDecision, CancelItemError, Clock, CloseRound, CommitHook,
    EditItemError, LifecycleDecision, LiveEvents, PlaceBidError, StoreError,
};
use crate::search::ItemSearch;
use crate::user::User;
use crate::validation::ValidationErrors;

/// Rules that depend on the deployment rather than the auction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuctionPolicy {
    /// Bidding needs a verified e-mail address.
    pub require_verified_email: bool,
}

impl Default for AuctionPolicy {
    fn default() -> Self {
        AuctionPolicy {
            require_verified_email: true,
        }
    }
}

/// Why an item was not listed.
#[derive(Debug, Error)]
pub enum ListItemError {
    /// The draft breaks the item rules.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an item was not edited.
#[derive(Debug, Error)]
pub enum EditError {
    /// The edit breaks the item rules.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The item refused it, or the store failed.
    #[error(transparent)]
    Item(#[from] EditItemError),
}

/// Why the bids of an item cannot be shown.
#[derive(Debug, Error)]
pub enum RevealError {
    /// No item has that id.
    #[error("item not found")]
    ItemNotFound,
    /// The item is still open: its bids are sealed.
    #[error("the bids stay sealed until the auction closes")]
    Sealed,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A bidder's own bid and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnBid {
    /// The bid as placed.
    pub bid: Bid,
    /// Its item as the public sees it.
    pub item: ListedItem,
    /// Where it stands.
    pub view: BidView,
}

/// A bid just accepted, as its bidder sees it now.
impl From<AcceptedBid> for OwnBid {
    fn from(accepted: AcceptedBid) -> Self {
        let item = accepted.listed_item();
        let view = view_of(
            accepted.bid.bidder,
            &accepted.bid.offer,
            &accepted.placement.standing,
            &item.item.status,
        );
        OwnBid {
            bid: accepted.bid,
            item,
            view,
        }
    }
}

/// A bid of a closed item, as everyone may now see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevealedBid {
    /// The bid as placed.
    pub bid: Bid,
    /// How it ended.
    pub view: BidView,
}

/// One page of a list and where the next one starts (`None` on the last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, C> {
    /// This page.
    pub items: Vec<T>,
    /// Pass back to get the next page.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Cuts `fetched` (asked for `limit + 1`) to `limit`, with the cursor of
    /// the last item kept when there is more.
    fn cut(mut fetched: Vec<T>, limit: u32, cursor: impl Fn(&T) -> C) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = fetched.len() > limit;
        fetched.truncate(limit);
        let next = if more {
            fetched.last().map(cursor)
        } else {
            None
        };
        Page {
            items: fetched,
            next,
        }
    }
}

/// Listing, bidding, closing and cancelling; live events after each commit.
#[derive(Clone)]
pub struct AuctionService {
    auctions: Arc<dyn AuctionStore>,
    events: Arc<dyn LiveEvents>,
    clock: Arc<dyn Clock>,
    policy: AuctionPolicy,
    audit: Option<Arc<dyn AuditLog>>,
}

impl std::fmt::Debug for AuctionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuctionService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AuctionService {
    /// Wires the service to its ports.
    #[must_use]
    pub fn new(
        auctions: Arc<dyn AuctionStore>,
        events: Arc<dyn LiveEvents>,
        clock: Arc<dyn Clock>,
        policy: AuctionPolicy,
    ) -> Self {
        AuctionService {
            auctions,
            events,
            clock,
            policy,
            audit: None,
        }
    }

    /// The same, recording item creation and cancellation in `audit`.
    #[must_use]
    pub fn with_audit(self, audit: Arc<dyn AuditLog>) -> Self {
        Self {
            audit: Some(audit),
            ..self
        }
    }

    /// Records what an admin did to an item, when auditing. After the
    /// change is stored: a failure to record it is the audit log's to
    /// report (the adapter logs and counts it), not a reason to tell the
    /// admin the change failed.
    async fn audit_item(
        &self,
        event: AuditEvent,
        item: ItemId,
        actor: UserId,
        context: &RequestContext,
    ) {
        self.audit_item_detail(event, format!("item {item}"), actor, context)
            .await;
    }

    async fn audit_item_detail(
        &self,
        event: AuditEvent,
        detail: String,
        actor: UserId,
        context: &RequestContext,
    ) {
        let Some(audit) = &self.audit else {
            return;
        };
        let _ = audit
            .record(AuditEntry {
                at: self.clock.now(),
                event,
                user: None,
                actor: Some(actor),
                context: context.clone(),
                detail: Some(detail),
            })
            .await;
    }

    /// Lists an item for `seller`.
    ///
    /// # Errors
    /// [`ListItemError::Invalid`] with every broken rule, or the store's failure.
    pub async fn list_item(
        &self,
        seller: UserId,
        draft: ItemDraft,
        context: &RequestContext,
    ) -> Result<ListedItem, ListItemError> {
        let item = NewItem::parse(draft, seller, self.clock.now())?;
        let listed = self.auctions.insert_item(item).await?;
        self.audit_item(AuditEvent::ItemCreated, listed.item.id, seller, context)
            .await;
        Ok(listed)
    }

    /// The public view of an item, or `None`.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn item(&self, id: ItemId) -> Result<Option<ListedItem>, StoreError> {
        self.auctions.listed_item(id).await
    }

    /// A page of the items `filter` keeps, in `sort`'s order. A search of
    /// no word (only punctuation) matches no item.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn list_items(
        &self,
        filter: &ItemFilter,
        sort: ItemSort,
        after: Option<ItemCursor>,
        limit: u32,
    ) -> Result<Page<ListedItem, ItemCursor>, StoreError> {
        if filter
            .search
            .as_ref()
            .is_some_and(ItemSearch::matches_nothing)
        {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let fetched = self
            .auctions
            .list_items(filter, sort, after, limit.saturating_add(1))
            .await?;
        let page = Page::cut(fetched, limit, |(_, cursor)| *cursor);
        Ok(Page {
            items: page.items.into_iter().map(|(listed, _)| listed).collect(),
            next: page.next,
        })
    }

    /// Places `bidder`'s one bid on `item` (the account as authenticated for
    /// this request). Once it is committed, the store runs the hook that
    /// publishes the new price and tells the bidders whose bids it affected
    /// (in commit order, even if this call is dropped meanwhile).
    ///
    /// # Errors
    /// [`PlaceBidError::BidderNotFound`] for a deactivated account;
    /// otherwise whatever the store's locked decision returns.
    pub async fn place_bid(
        &self,
        bidder: &User,
        item: ItemId,
        offer: BidOffer,
    ) -> Result<AcceptedBid, PlaceBidError> {
        if !bidder.is_active {
            return Err(PlaceBidError::BidderNotFound);
        }
        let command = BidCommand {
            item,
            bidder: bidder.id,
            bidder_may_bid: bidder.email_verified || !self.policy.require_verified_email,
            offer,
        };
        let events = Arc::clone(&self.events);
        let publish: CommitHook = Arc::new(move |accepted: &AcceptedBid| {
            if let Some(event) = ItemEvent::after_bid(&accepted.item, &accepted.placement) {
                events.publish(event);
            }
            for notification in notifications_after_bid(
                &accepted.item,
                accepted.bid.bidder,
                &accepted.bid.offer,
                &accepted.placement,
            ) {
                events.notify(notification);
            }
        });
        self.auctions
            .place_bid(BidDecision::new(command, Arc::clone(&self.clock)).on_commit(publish))
            .await
    }

    /// `bidder`'s bid on `item` and where it stands, or `None` without one.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn own_bid(
        &self,
        bidder: UserId,
        item: ItemId,
    ) -> Result<Option<OwnBid>, StoreError> {
        Ok(self
            .auctions
            .bid_record(item, bidder)
            .await?
            .map(own_bid_of))
    }

    /// A page of `bidder`'s bids, newest first, each with where it stands.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn own_bids(
        &self,
        bidder: UserId,
        after: Option<BidCursor>,
        limit: u32,
    ) -> Result<Page<OwnBid, BidCursor>, StoreError> {
        let records = self
            .auctions
            .bids_of_bidder(bidder, after, limit.saturating_add(1))
            .await?;
        let own: Vec<OwnBid> = records.into_iter().map(own_bid_of).collect();
        Ok(Page::cut(own, limit, |own| BidCursor {
            created_at: own.bid.created_at,
            id: own.bid.id,
        }))
    }

    /// The bids of an item that no longer takes bids, in arrival order from
    /// `seq > after_seq`, each with how it ended.
    ///
    /// # Errors
    /// [`RevealError::Sealed`] while the item is open, [`RevealError::ItemNotFound`].
    pub async fn revealed_bids(
        &self,
        item: ItemId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Page<RevealedBid, u64>, RevealError> {
        let listed = self
            .auctions
            .listed_item(item)
            .await?
            .ok_or(RevealError::ItemNotFound)?;
        let outcome = match listed.item.status {
            ItemStatus::Open => return Err(RevealError::Sealed),
            ItemStatus::Closed(outcome) => outcome,
            // Cancelled items have no bids; nothing is sealed any more.
            ItemStatus::Cancelled => crate::item::CloseOutcome::Unsold,
        };
        let bids = self
            .auctions
            .bids_in_order(item, after_seq, limit.saturating_add(1))
            .await?;
        let revealed = bids
            .into_iter()
            .map(|bid| RevealedBid {
                view: revealed_view(bid.bidder, &bid.offer, &outcome),
                bid,
            })
            .collect();
        Ok(Page::cut(revealed, limit, |r| r.bid.seq))
    }

    /// The price events of `item` after `after_seq`, oldest first, at most
    /// `limit`: what a live subscriber missed.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn price_events(
        &self,
        item: &Item,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<PriceEvent>, StoreError> {
        // `item` may have been read before the newest of these bids: a
        // close one of them moved carries on to the prices after it, so
        // the close told never goes back.
        let mut closing = item.closing();
        Ok(self
            .auctions
            .price_history(item.id, after_seq, limit)
            .await?
            .into_iter()
            .map(|point| {
                if let Some(moved) = point.extension
                    && moved.extensions_used > closing.extensions_used
                {
                    closing = moved;
                }
                PriceEvent {
                    closing,
                    ..PriceEvent::replayed(item, point)
                }
            })
            .collect())
    }

    /// Closes up to `limit` items whose time has come, then publishes each
    /// close and tells its winner and losers. Due items that could not be
    /// read are reported, not closed, and hold up no other item.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn close_due_items(&self, limit: u32) -> Result<CloseRound<ListedItem>, StoreError> {
        let round = self
            .auctions
            .close_due_items(self.lifecycle(), limit)
            .await?;
        let now = self.clock.now();
        let closed = round
            .closed
            .into_iter()
            .map(|closed| {
                if let Some(event) = ItemEvent::closed(&closed.listed) {
                    self.events.publish(event);
                }
                for notification in notifications_after_close(&closed.listed, &closed.bidders, now)
                {
                    self.events.notify(notification);
                }
                closed.listed
            })
            .collect();
        Ok(CloseRound {
            closed,
            failed: round.failed,
        })
    }

    /// Cancels an item that nobody has bid on, and tells its watchers.
    ///
    /// # Errors
    /// [`CancelItemError`] naming why not.
    pub async fn cancel_item(
        &self,
        id: ItemId,
        admin: UserId,
        context: &RequestContext,
    ) -> Result<ListedItem, CancelItemError> {
        let cancelled = self.auctions.cancel_item(id, self.lifecycle()).await?;
        if let Some(event) = ItemEvent::closed(&cancelled) {
            self.events.publish(event);
        }
        self.audit_item(AuditEvent::ItemCancelled, id, admin, context)
            .await;
        Ok(cancelled)
    }

    /// Edits an item nobody has bid on yet, and records who changed what.
    ///
    /// # Errors
    /// [`EditError`] naming why not.
    pub async fn edit_item(
        &self,
        id: ItemId,
        draft: ItemEditDraft,
        admin: UserId,
        context: &RequestContext,
    ) -> Result<ListedItem, EditError> {
        let edit = ItemEdit::parse(draft, self.clock.now())?;
        let fields = edit.fields().join(", ");
        let edited = self.auctions.edit_item(id, edit, self.lifecycle()).await?;
        self.audit_item_detail(
            AuditEvent::ItemEdited,
            format!("item {id}: {fields}"),
            admin,
            context,
        )
        .await;
        Ok(edited)
    }

    /// One page of `user`'s notifications, newest first.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn notifications(
        &self,
        user: UserId,
        after: Option<NotificationCursor>,
        limit: u32,
    ) -> Result<Page<StoredNotification, NotificationCursor>, StoreError> {
        let fetched = self
            .auctions
            .notifications(user, after, limit.saturating_add(1))
            .await?;
        Ok(Page::cut(fetched, limit, |stored| NotificationCursor {
            at: stored.notification.at,
            id: stored.id,
        }))
    }

    /// How many of `user`'s notifications are unread.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn unread_notifications(&self, user: UserId) -> Result<u64, StoreError> {
        self.auctions.unread_notifications(user).await
    }

    /// Marks `user`'s notification `up_to` and every older one read;
    /// `false` when they have no such notification.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn mark_notifications_read(
        &self,
        user: UserId,
        up_to: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        self.auctions
            .mark_notifications_read(user, up_to, self.clock.now())
            .await
    }

    fn lifecycle(&self) -> LifecycleDecision {
        LifecycleDecision::new(Arc::clone(&self.clock))
    }
}

fn own_bid_of(record: crate::ports::BidRecord) -> OwnBid {
    let view = view_of(
        record.bid.bidder,
        &record.bid.offer,
        &record.standing,
        &record.item.status,
    );
    OwnBid {
        bid: record.bid,
        item: ListedItem {
            item: record.item,
            standing: record.standing.public(),
        },
        view,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{Duration, TimeZone, Utc};
    use mockall::predicate::eq;

    use super::*;
    use crate::email::Email;
    use crate::engine::{BidRejection, LockedItem, Standing};
    use crate::item::{CloseOutcome, Item, ItemStatus, StatusFilter, Timestamp};
    use crate::live::{Notification, NotificationData};
    use crate::money::Money;
    use crate::ports::{ClosedItem, MockAuctionStore, MockClock};
    use crate::user::{Role, User};

    fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn clock_at(now: Timestamp) -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        Arc::new(clock)
    }

    fn user(verified: bool, active: bool) -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("bidder@example.com").unwrap(),
            display_name: "Bidder".into(),
            role: Role::User,
            email_verified: verified,
            is_active: active,
            notify_email: true,
            totp_enabled: false,
            created_at: t0(),
        }
    }

    fn item() -> Item {
        crate::engine::tests::item_at(t0(), 100, 5)
    }

    /// What the service published, in order.
    #[derive(Default)]
    struct Recorded {
        events: Mutex<Vec<ItemEvent>>,
        notifications: Mutex<Vec<Notification>>,
    }

    impl LiveEvents for Recorded {
        fn publish(&self, event: ItemEvent) {
            self.events.lock().unwrap().push(event);
        }

        fn notify(&self, notification: Notification) {
            self.notifications.lock().unwrap().push(notification);
        }
    }

    /// A store that decides every bid on `item` with `standing` and returns
    /// the rejection or the placement; it records nothing.
    fn deciding_store(item: Item, standing: Standing) -> MockAuctionStore {
        let mut store = MockAuctionStore::new();
        store
            .expect_place_bid()
            .times(1)
            .returning(move |decision| {
                let locked = LockedItem {
                    item: item.clone(),
                    standing,
                    bidder_has_bid: false,
                };
                let placement = crate::engine::place(&locked, decision.command(), decision.now())?;
                let accepted = AcceptedBid {
                    bid: Bid {
                        id: crate::ids::BidId::generate(),
                        item: item.id,
                        bidder: decision.command().bidder,
                        seq: placement.seq,
                        offer: decision.command().offer,
                        created_at: placement.at,
                        salt: crate::ledger::Salt::ZERO,
                        chain_hash: None,
                    },
                    item: item.clone(),
                    placement,
                };
                decision.committed(&accepted);
                Ok(accepted)
            });
        store
    }

    fn service(
        store: MockAuctionStore,
        now: Timestamp,
        policy: AuctionPolicy,
    ) -> (AuctionService, Arc<Recorded>) {
        let recorded = Arc::new(Recorded::default());
        let svc = AuctionService::new(Arc::new(store), recorded.clone(), clock_at(now), policy);
        (svc, recorded)
    }

    fn offer(amount: i64) -> BidOffer {
        BidOffer::plain(Money::new(amount).unwrap())
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        futures_executor::block_on(future)
    }

    #[test]
    fn a_deactivated_bidder_never_reaches_the_store() {
        let mut store = MockAuctionStore::new();
        store.expect_place_bid().never();
        let (svc, recorded) = service(store, t0(), AuctionPolicy::default());
        let result = run(svc.place_bid(&user(true, false), ItemId::generate(), offer(100)));
        assert!(matches!(result, Err(PlaceBidError::BidderNotFound)));
        assert!(recorded.events.lock().unwrap().is_empty());
    }

    #[test]
    fn an_unverified_bidder_is_refused_under_the_lock_when_verification_is_required() {
        let it = item();
        let (svc, recorded) = service(
            deciding_store(it.clone(), Standing::EMPTY),
            t0(),
            AuctionPolicy::default(),
        );
        let result = run(svc.place_bid(&user(false, true), it.id, offer(100)));
        assert!(matches!(
            result,
            Err(PlaceBidError::Rejected(BidRejection::EmailNotVerified))
        ));
        assert!(
            recorded.events.lock().unwrap().is_empty(),
            "a rejection publishes nothing"
        );
    }

    #[test]
    fn an_unverified_bidder_may_bid_when_verification_is_off() {
        let it = item();
        let policy = AuctionPolicy {
            require_verified_email: false,
        };
        let (svc, _) = service(deciding_store(it.clone(), Standing::EMPTY), t0(), policy);
        let accepted = run(svc.place_bid(&user(false, true), it.id, offer(100))).unwrap();
        assert_eq!(accepted.bid.seq, 1);
        assert_eq!(
            accepted.listed_item().standing.current_price,
            Money::new(100).ok()
        );
    }

    #[test]
    fn an_accepted_bid_publishes_its_price_and_tells_the_displaced_leader() {
        let it = item();
        let first = UserId::generate();
        let (standing, _) = Standing::EMPTY.after(first, &offer(100));
        let (svc, recorded) = service(
            deciding_store(it.clone(), standing),
            t0(),
            AuctionPolicy::default(),
        );
        run(svc.place_bid(&user(true, true), it.id, offer(120))).unwrap();
        assert_eq!(
            *recorded.events.lock().unwrap(),
            [ItemEvent::Price(PriceEvent {
                item: it.id,
                current_price: Money::new(120).unwrap(),
                minimum_next_bid: 125,
                bid_count: 2,
                at: t0(),
                closing: it.closing(),
                extension: None,
                ledger_head: it.ledger_head,
            })]
        );
        let told = recorded.notifications.lock().unwrap();
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].user, first);
        assert!(matches!(told[0].data, NotificationData::Outbid { .. }));
    }

    #[test]
    fn now_is_read_when_the_store_decides_not_before() {
        // The clock says the auction has closed by the time the store decides.
        let it = item();
        let (svc, _) = service(
            deciding_store(it.clone(), Standing::EMPTY),
            it.close_at,
            AuctionPolicy::default(),
        );
        let result = run(svc.place_bid(&user(true, true), it.id, offer(100)));
        assert!(matches!(
            result,
            Err(PlaceBidError::Rejected(BidRejection::AuctionClosed))
        ));
    }

    #[test]
    fn an_invalid_draft_is_refused_without_touching_the_store() {
        let mut store = MockAuctionStore::new();
        store.expect_insert_item().never();
        let (svc, _) = service(store, t0(), AuctionPolicy::default());
        let draft = ItemDraft {
            title: String::new(),
            description: String::new(),
            base_price: 0,
            min_increment: None,
            currency: None,
            soft_close: None,
            close_at: t0(),
        };
        let result = run(svc.list_item(UserId::generate(), draft, &RequestContext::default()));
        assert!(
            matches!(&result, Err(ListItemError::Invalid(errors)) if errors.fields().len() == 3),
            "{result:?}"
        );
    }

    #[test]
    fn notifications_come_in_pages_and_are_marked_read_at_the_services_time() {
        let user = UserId::generate();
        let stored = |n: i64| crate::notifications::StoredNotification {
            id: uuid::Uuid::now_v7(),
            item_title: "Lamp".into(),
            currency: crate::Currency::default(),
            notification: Notification {
                user,
                data: NotificationData::Won {
                    item: ItemId::generate(),
                    final_price: Money::new(100).unwrap(),
                },
                at: t0() - Duration::seconds(n),
            },
            read: false,
        };
        let rows = vec![stored(1), stored(2), stored(3)];
        let handed = rows.clone();
        let mut store = MockAuctionStore::new();
        store
            .expect_notifications()
            .withf(move |who, after, limit| *who == user && after.is_none() && *limit == 3)
            .return_once(move |_, _, _| Ok(handed));
        let up_to = rows[1].id;
        store
            .expect_mark_notifications_read()
            .withf(move |who, id, now| *who == user && *id == up_to && *now == t0())
            .return_once(|_, _, _| Ok(true));
        store
            .expect_unread_notifications()
            .withf(move |who| *who == user)
            .return_once(|_| Ok(3));
        let (svc, _) = service(store, t0(), AuctionPolicy::default());
        assert_eq!(run(svc.unread_notifications(user)).unwrap(), 3);
        let page = run(svc.notifications(user, None, 2)).unwrap();
        assert_eq!(page.items, rows[..2]);
        assert_eq!(
            page.next,
            Some(crate::notifications::NotificationCursor {
                at: rows[1].notification.at,
                id: rows[1].id
            })
        );
        assert!(run(svc.mark_notifications_read(user, up_to)).unwrap());
    }

    #[test]
    fn an_edit_is_validated_first_decided_under_the_lock_and_audited_with_its_fields() {
        let it = item();
        let editable = it.clone();
        let mut store = MockAuctionStore::new();
        store
            .expect_edit_item()
            .times(2)
            .returning(move |_, edit, decision| {
                let edited = decision.edit(&editable, &Default::default(), &edit)?;
                Ok(ListedItem {
                    item: edited,
                    standing: Default::default(),
                })
            });
        let (svc, _) = service(store, t0(), AuctionPolicy::default());
        let admin = UserId::generate();
        let mut audit = crate::auth::ports::MockAuditLog::new();
        let id = it.id;
        audit
            .expect_record()
            .withf(move |entry| {
                entry.event == AuditEvent::ItemEdited
                    && entry.actor == Some(admin)
                    && entry.detail.as_deref() == Some(&format!("item {id}: title, close_at"))
            })
            .times(1)
            .returning(|_| Ok(()));
        let svc = svc.with_audit(Arc::new(audit));
        let later = it.close_at + Duration::hours(1);
        let draft = |close_at| ItemEditDraft {
            title: Some("Brass lamp".into()),
            description: None,
            close_at: Some(close_at),
        };
        let edited =
            run(svc.edit_item(it.id, draft(later), admin, &RequestContext::default())).unwrap();
        assert_eq!(
            (edited.item.title.as_str(), edited.item.close_at),
            ("Brass lamp", later)
        );
        // Earlier than the current close: refused under the lock, not audited.
        let earlier = it.close_at - Duration::minutes(1);
        let refused = run(svc.edit_item(it.id, draft(earlier), admin, &RequestContext::default()));
        assert_eq!(
            refused.err().map(|error| error.to_string()).as_deref(),
            Some("close_at must not be earlier than the item's current close")
        );
        // Invalid: the store is not asked (the mock allows two calls only).
        let invalid = ItemEditDraft {
            title: Some(String::new()),
            ..ItemEditDraft::default()
        };
        let refused = run(svc.edit_item(it.id, invalid, admin, &RequestContext::default()));
        assert!(matches!(refused, Err(EditError::Invalid(_))), "{refused:?}");
    }

    #[test]
    fn without_an_audit_log_an_item_is_listed_all_the_same() {
        let mut store = MockAuctionStore::new();
        store.expect_insert_item().times(1).returning(|new| {
            Ok(ListedItem {
                item: new.into_item(),
                standing: Default::default(),
            })
        });
        let (svc, _) = service(store, t0(), AuctionPolicy::default());
        let draft = ItemDraft {
            title: "Lamp".into(),
            description: String::new(),
            base_price: 100,
            min_increment: None,
            currency: None,
            soft_close: None,
            close_at: t0() + Duration::days(1),
        };
        assert!(run(svc.list_item(UserId::generate(), draft, &RequestContext::default())).is_ok());
    }

    #[test]
    fn a_valid_draft_is_stored_as_parsed() {
        let seller = UserId::generate();
        let mut store = MockAuctionStore::new();
        store
            .expect_insert_item()
            .withf(move |new| new.item().seller == seller && new.item().title.as_str() == "Lamp")
            .times(1)
            .returning(|new| {
                Ok(ListedItem {
                    item: new.into_item(),
                    standing: Default::default(),
                })
            });
        let (svc, _) = service(store, t0(), AuctionPolicy::default());
        let audited = Arc::new(Mutex::new(Vec::new()));
        let mut audit = crate::auth::ports::MockAuditLog::new();
        let log = Arc::clone(&audited);
        audit.expect_record().returning(move |entry| {
            log.lock().unwrap().push(entry);
            Ok(())
        });
        let svc = svc.with_audit(Arc::new(audit));
        let draft = ItemDraft {
            title: "Lamp".into(),
            description: String::new(),
            base_price: 100,
            min_increment: Some(10),
            currency: Some("EUR".into()),
            soft_close: None,
            close_at: t0() + Duration::days(1),
        };
        let context = RequestContext {
            request_id: Some("req-7".into()),
            ..RequestContext::default()
        };
        let listed = run(svc.list_item(seller, draft, &context)).unwrap();
        assert_eq!(listed.item.currency.as_str(), "eur");
        let audited = audited.lock().unwrap();
        assert_eq!(audited.len(), 1);
        assert_eq!(audited[0].event, AuditEvent::ItemCreated);
        assert_eq!((audited[0].user, audited[0].actor), (None, Some(seller)));
        assert_eq!(audited[0].context, context);
        assert_eq!(audited[0].detail, Some(format!("item {}", listed.item.id)));
    }

    fn record_of(
        it: &Item,
        bidder: UserId,
        bid_offer: BidOffer,
        seq: u64,
    ) -> crate::ports::BidRecord {
        let (standing, _) = Standing::EMPTY.after(bidder, &bid_offer);
        crate::ports::BidRecord {
            bid: Bid {
                id: crate::ids::BidId::generate(),
                item: it.id,
                bidder,
                seq,
                offer: bid_offer,
                created_at: t0() + Duration::seconds(i64::try_from(seq).unwrap()),
                salt: crate::ledger::Salt::ZERO,
                chain_hash: None,
            },
            item: it.clone(),
            standing,
        }
    }

    #[test]
    fn own_bid_reports_where_the_bid_stands() {
        let it = item();
        let bidder = UserId::generate();
        let record = record_of(&it, bidder, offer(120), 1);
        let mut store = MockAuctionStore::new();
        store
            .expect_bid_record()
            .with(eq(it.id), eq(bidder))
            .returning(move |_, _| Ok(Some(record.clone())));
        store.expect_bid_record().returning(|_, _| Ok(None));
        let (svc, _) = service(store, t0(), AuctionPolicy::default());

        let own = run(svc.own_bid(bidder, it.id)).unwrap().unwrap();
        assert_eq!(own.view.state, crate::bid::BidState::Leading);
        assert_eq!(own.item.standing.bid_count, 1);
        let stranger = run(svc.own_bid(UserId::generate(), it.id)).unwrap();
        assert!(stranger.is_none());
    }

    #[test]
    fn own_bids_come_in_pages_with_a_cursor_only_when_more_follow() {
        let bidder = UserId::generate();
        let records: Vec<_> = (1..=3)
            .map(|n| record_of(&item(), bidder, offer(100), n))
            .collect();
        let mut store = MockAuctionStore::new();
        let all = records.clone();
        store
            .expect_bids_of_bidder()
            .withf(move |who, after, limit| *who == bidder && after.is_none() && *limit == 3)
            .returning(move |_, _, _| Ok(all.clone()));
        let last = records[2].clone();
        store
            .expect_bids_of_bidder()
            .withf(|_, after, limit| after.is_some() && *limit == 3)
            .returning(move |_, _, _| Ok(vec![last.clone()]));
        let (svc, _) = service(store, t0(), AuctionPolicy::default());

        let first = run(svc.own_bids(bidder, None, 2)).unwrap();
        assert_eq!(first.items.len(), 2);
        let cursor = first.next.unwrap();
        assert_eq!(cursor.id, records[1].bid.id);
        let second = run(svc.own_bids(bidder, Some(cursor), 2)).unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.next, None);
    }

    #[test]
    fn bids_stay_sealed_while_open_and_are_revealed_with_their_ending_after() {
        let mut it = item();
        let open = it.clone();
        let winner = UserId::generate();
        let loser = UserId::generate();
        it.status = ItemStatus::Closed(CloseOutcome::Sold {
            winner,
            price: Money::new(125).unwrap(),
        });
        let closed = it.clone();
        let mut store = MockAuctionStore::new();
        store
            .expect_listed_item()
            .with(eq(open.id))
            .times(1)
            .returning(move |_| {
                Ok(Some(ListedItem {
                    item: open.clone(),
                    standing: Default::default(),
                }))
            });
        store.expect_listed_item().returning(move |id| {
            Ok((id == closed.id).then(|| ListedItem {
                item: closed.clone(),
                standing: Default::default(),
            }))
        });
        let bids = vec![
            record_of(&it, loser, offer(120), 1).bid,
            record_of(
                &it,
                winner,
                BidOffer::poisoned(
                    Money::new(125).unwrap(),
                    Money::new(400).unwrap(),
                    Money::new(5).unwrap(),
                ),
                2,
            )
            .bid,
        ];
        store
            .expect_bids_in_order()
            .withf(|_, after, limit| *after == 0 && *limit == 21)
            .returning(move |_, _, _| Ok(bids.clone()));
        let (svc, _) = service(store, t0(), AuctionPolicy::default());

        assert!(matches!(
            run(svc.revealed_bids(it.id, 0, 20)),
            Err(RevealError::Sealed)
        ));
        let page = run(svc.revealed_bids(it.id, 0, 20)).unwrap();
        let views: Vec<_> = page
            .items
            .iter()
            .map(|r| (r.bid.seq, r.view.state, r.view.effective.minor_units()))
            .collect();
        use crate::bid::BidState::{Lost, Won};
        assert_eq!(views, vec![(1, Lost, 120), (2, Won, 125)]);
        assert_eq!(page.next, None);
        assert!(matches!(
            run(svc.revealed_bids(ItemId::generate(), 0, 20)),
            Err(RevealError::ItemNotFound)
        ));
    }

    #[test]
    fn closing_publishes_the_close_and_tells_winner_and_losers() {
        let it = item();
        let mut store = MockAuctionStore::new();
        let due = it.clone();
        let [winner, loser] = [(); 2].map(|()| UserId::generate());
        store
            .expect_close_due_items()
            .with(mockall::predicate::always(), eq(10))
            .returning(move |decision, _| {
                let (standing, _) = Standing::EMPTY.after(winner, &offer(150));
                let outcome = decision.close(&due, &standing).unwrap();
                let mut closed = due.clone();
                closed.status = ItemStatus::Closed(outcome);
                Ok(CloseRound {
                    closed: vec![ClosedItem {
                        listed: ListedItem {
                            item: closed,
                            standing: standing.public(),
                        },
                        bidders: vec![loser, winner],
                    }],
                    failed: Vec::new(),
                })
            });
        let (svc, recorded) = service(store, it.close_at, AuctionPolicy::default());

        let closed = run(svc.close_due_items(10)).unwrap().closed;
        assert!(matches!(
            closed[0].item.status,
            ItemStatus::Closed(CloseOutcome::Sold { winner: w, .. }) if w == winner
        ));
        let events = recorded.events.lock().unwrap();
        assert!(matches!(events[..], [ItemEvent::Closed(c)] if c.has_winner && c.bid_count == 1));
        let told: Vec<_> = recorded
            .notifications
            .lock()
            .unwrap()
            .iter()
            .map(|n| (n.user, n.data.kind()))
            .collect();
        assert_eq!(told, vec![(loser, "lost"), (winner, "won")]);
    }

    #[test]
    fn cancelling_decides_with_the_services_clock_and_announces_the_end() {
        let it = item();
        let cancellable = it.clone();
        let mut store = MockAuctionStore::new();
        store.expect_cancel_item().returning(move |_, decision| {
            decision.cancel(&cancellable, &Default::default())?;
            let mut cancelled = cancellable.clone();
            cancelled.status = ItemStatus::Cancelled;
            Ok(ListedItem {
                item: cancelled,
                standing: Default::default(),
            })
        });
        let (svc, recorded) = service(store, t0(), AuctionPolicy::default());
        let admin = UserId::generate();
        let mut audit = crate::auth::ports::MockAuditLog::new();
        audit
            .expect_record()
            .withf(move |entry| {
                entry.event == AuditEvent::ItemCancelled && entry.actor == Some(admin)
            })
            .times(1)
            .returning(|_| Ok(()));
        let svc = svc.with_audit(Arc::new(audit));
        run(svc.cancel_item(it.id, admin, &RequestContext::default())).unwrap();
        assert!(matches!(
            recorded.events.lock().unwrap()[..],
            [ItemEvent::Closed(c)] if c.cancelled && !c.has_winner
        ));

        // At close_at the item no longer takes bids, so it cannot be cancelled either.
        let late = it.clone();
        let mut store = MockAuctionStore::new();
        store.expect_cancel_item().returning(move |_, decision| {
            let refused = decision.cancel(&late, &Default::default());
            Err(refused.expect_err("the decision refuses").into())
        });
        let (svc, recorded) = service(store, it.close_at, AuctionPolicy::default());
        assert!(matches!(
            run(svc.cancel_item(it.id, UserId::generate(), &RequestContext::default())),
            Err(CancelItemError::Rejected(
                crate::engine::CancelRejection::NotOpen
            ))
        ));
        assert!(recorded.events.lock().unwrap().is_empty());
    }

    #[test]
    fn items_come_in_pages_and_replayed_prices_carry_their_minimum() {
        let it = item();
        let listed = ListedItem {
            item: it.clone(),
            standing: Default::default(),
        };
        let mut store = MockAuctionStore::new();
        store
            .expect_list_items()
            .withf(|filter, sort, after, limit| {
                filter.status == Some(StatusFilter::Open)
                    && *sort == ItemSort::Newest
                    && after.is_none()
                    && *limit == 2
            })
            .returning(move |_, _, _, _| {
                Ok(vec![(
                    listed.clone(),
                    ItemSort::Newest.cursor_of(&listed, 0.0),
                )])
            });
        let (dearer, cheaper) = (item(), item());
        // The store says where each item stands (it alone knows a rank).
        let cursor = ItemCursor {
            sort: ItemSort::BestMatch,
            key: 250,
            id: dearer.id,
        };
        let fetched = [(dearer, 250), (cheaper, 120)].map(|(item, key)| {
            let id = item.id;
            let listed = ListedItem {
                item,
                standing: crate::item::PublicStanding {
                    bid_count: 1,
                    current_price: Some(Money::new(key).unwrap()),
                },
            };
            (listed, ItemCursor { key, id, ..cursor })
        });
        let search = ItemSearch::parse("lamp").unwrap();
        let asked = ItemFilter {
            status: None,
            search: search.clone(),
        };
        store
            .expect_list_items()
            .withf(move |filter, sort, after, limit| {
                *filter == asked && *sort == ItemSort::BestMatch && after.is_none() && *limit == 2
            })
            .returning(move |_, _, _, _| Ok(fetched.to_vec()));
        store
            .expect_price_history()
            .with(eq(it.id), eq(3), eq(50))
            .returning(|_, _, _| {
                Ok(vec![crate::live::PricePoint {
                    seq: 4,
                    price: Money::new(130).unwrap(),
                    at: t0(),
                    extension: Some(crate::soft_close::Closing {
                        close_at: t0() + Duration::hours(2),
                        extensions_used: 1,
                    }),
                    chain_hash: Some(crate::ledger::ChainHash::genesis(ItemId::from_uuid(
                        uuid::Uuid::nil(),
                    ))),
                }])
            });
        let (svc, _) = service(store, t0(), AuctionPolicy::default());
        let open = ItemFilter {
            status: Some(StatusFilter::Open),
            search: None,
        };
        let page = run(svc.list_items(&open, ItemSort::Newest, None, 1)).unwrap();
        assert_eq!((page.items.len(), page.next), (1, None));
        let searched = ItemFilter {
            status: None,
            search,
        };
        let page = run(svc.list_items(&searched, ItemSort::BestMatch, None, 1)).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(
            page.next,
            Some(cursor),
            "the next page starts after the last item shown"
        );
        // Only punctuation: no word to match, so no item, and no query.
        let punctuation = ItemFilter {
            status: None,
            search: ItemSearch::parse(r#"%_"'\"#).unwrap(),
        };
        let page = run(svc.list_items(&punctuation, ItemSort::BestMatch, None, 1)).unwrap();
        assert_eq!((page.items, page.next), (Vec::new(), None));
        let replayed = run(svc.price_events(&it, 3, 50)).unwrap();
        assert_eq!(
            replayed,
            vec![PriceEvent {
                item: it.id,
                current_price: Money::new(130).unwrap(),
                minimum_next_bid: 135,
                bid_count: 4,
                at: t0(),
                // A replayed price tells the close as it is now, or as a
                // replayed bid moved it if the item was read before that
                // bid; the extension, the close its bid moved the item to.
                closing: crate::soft_close::Closing {
                    close_at: t0() + Duration::hours(2),
                    extensions_used: 1,
                },
                extension: Some(crate::soft_close::Closing {
                    close_at: t0() + Duration::hours(2),
                    extensions_used: 1,
                }),
                // The ledger's value after the replayed bid.
                ledger_head: Some(crate::ledger::ChainHash::genesis(ItemId::from_uuid(
                    uuid::Uuid::nil()
                ))),
            }]
        );
    }

    #[test]
    fn an_accepted_bid_is_its_bidders_own_bid_leading_at_the_new_price() {
        let it = item();
        let bidder = user(true, true);
        let (svc, _) = service(
            deciding_store(it.clone(), Standing::EMPTY),
            t0(),
            AuctionPolicy::default(),
        );
        let accepted = run(svc.place_bid(&bidder, it.id, offer(120))).unwrap();
        let bid = accepted.bid.clone();
        let own = OwnBid::from(accepted);
        assert_eq!(own.bid, bid);
        assert_eq!(own.item.item, it);
        assert_eq!(
            own.item.standing,
            crate::item::PublicStanding {
                bid_count: 1,
                current_price: Money::new(120).ok(),
            }
        );
        assert_eq!(own.view.state, crate::bid::BidState::Leading);
        assert_eq!(own.view.effective, Money::new(120).unwrap());
    }

    #[test]
    fn a_cancelled_items_bids_are_not_sealed() {
        let mut cancelled = item();
        cancelled.status = ItemStatus::Cancelled;
        let id = cancelled.id;
        let mut store = MockAuctionStore::new();
        store.expect_listed_item().returning(move |_| {
            Ok(Some(ListedItem {
                item: cancelled.clone(),
                standing: Default::default(),
            }))
        });
        store
            .expect_bids_in_order()
            .with(eq(id), eq(0), eq(21))
            .times(1)
            .returning(|_, _, _| Ok(Vec::new()));
        let (svc, _) = service(store, t0(), AuctionPolicy::default());
        let page = run(svc.revealed_bids(id, 0, 20)).unwrap();
        assert_eq!(
            page,
            Page {
                items: Vec::new(),
                next: None
            }
        );
    }

    #[test]
    fn the_service_prints_its_policy_and_none_of_its_ports() {
        let (svc, _) = service(MockAuctionStore::new(), t0(), AuctionPolicy::default());
        assert_eq!(
            format!("{svc:?}"),
            "AuctionService { policy: AuctionPolicy { require_verified_email: true }, .. }"
        );
    }

    #[test]
    fn the_item_view_comes_from_the_store() {
        let it = item();
        let id = it.id;
        let mut store = MockAuctionStore::new();
        store.expect_listed_item().with(eq(id)).returning(move |_| {
            Ok(Some(ListedItem {
                item: it.clone(),
                standing: Default::default(),
            }))
        });
        let (svc, _) = service(store, t0(), AuctionPolicy::default());
        let found = run(svc.item(id)).unwrap();
        assert_eq!(found.map(|l| l.item.id), Some(id));
    }
}
