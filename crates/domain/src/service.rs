//! The auction's use cases, written against the ports only.

use std::sync::Arc;

use thiserror::Error;

use crate::bid::{Bid, BidOffer, BidView};
use crate::engine::{BidCommand, view_of};
use crate::ids::{ItemId, UserId};
use crate::item::{ItemDraft, ListedItem, NewItem};
use crate::ports::{
    AcceptedBid, AuctionStore, BidDecision, CancelItemError, Clock, LifecycleDecision,
    PlaceBidError, StoreError, UserStore,
};
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

/// Listing, bidding, closing and cancelling.
#[derive(Clone)]
pub struct AuctionService {
    auctions: Arc<dyn AuctionStore>,
    users: Arc<dyn UserStore>,
    clock: Arc<dyn Clock>,
    policy: AuctionPolicy,
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
        users: Arc<dyn UserStore>,
        clock: Arc<dyn Clock>,
        policy: AuctionPolicy,
    ) -> Self {
        AuctionService {
            auctions,
            users,
            clock,
            policy,
        }
    }

    /// Lists an item for `seller`.
    ///
    /// # Errors
    /// [`ListItemError::Invalid`] with every broken rule, or the store's failure.
    pub async fn list_item(
        &self,
        seller: UserId,
        draft: ItemDraft,
    ) -> Result<ListedItem, ListItemError> {
        let item = NewItem::parse(draft, seller, self.clock.now())?;
        Ok(self.auctions.insert_item(item).await?)
    }

    /// The public view of an item, or `None`.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn item(&self, id: ItemId) -> Result<Option<ListedItem>, StoreError> {
        self.auctions.listed_item(id).await
    }

    /// Places `bidder`'s one bid on `item`.
    ///
    /// # Errors
    /// [`PlaceBidError::BidderNotFound`] for a missing or deactivated account;
    /// otherwise whatever the store's locked decision returns.
    pub async fn place_bid(
        &self,
        bidder: UserId,
        item: ItemId,
        offer: BidOffer,
    ) -> Result<AcceptedBid, PlaceBidError> {
        let user = self
            .users
            .user_by_id(bidder)
            .await?
            .filter(|user| user.is_active)
            .ok_or(PlaceBidError::BidderNotFound)?;
        let command = BidCommand {
            item,
            bidder,
            bidder_may_bid: user.email_verified || !self.policy.require_verified_email,
            offer,
        };
        self.auctions
            .place_bid(BidDecision::new(command, Arc::clone(&self.clock)))
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
        let Some(record) = self.auctions.bid_record(item, bidder).await? else {
            return Ok(None);
        };
        let view = view_of(
            bidder,
            &record.bid.offer,
            &record.standing,
            &record.item.status,
        );
        Ok(Some(OwnBid {
            bid: record.bid,
            item: ListedItem {
                item: record.item,
                standing: record.standing.public(),
            },
            view,
        }))
    }

    /// Closes up to `limit` items whose time has come.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn close_due_items(&self, limit: u32) -> Result<Vec<ListedItem>, StoreError> {
        self.auctions.close_due_items(self.lifecycle(), limit).await
    }

    /// Cancels an item that nobody has bid on.
    ///
    /// # Errors
    /// [`CancelItemError`] naming why not.
    pub async fn cancel_item(&self, id: ItemId) -> Result<ListedItem, CancelItemError> {
        self.auctions.cancel_item(id, self.lifecycle()).await
    }

    fn lifecycle(&self) -> LifecycleDecision {
        LifecycleDecision::new(Arc::clone(&self.clock))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use mockall::predicate::eq;

    use super::*;
    use crate::email::Email;
    use crate::engine::{BidRejection, LockedItem, Standing};
    use crate::item::{CloseOutcome, Item, ItemStatus, Timestamp};
    use crate::money::Money;
    use crate::ports::{MockAuctionStore, MockClock, MockUserStore};
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
            created_at: t0(),
        }
    }

    fn item() -> Item {
        crate::engine::tests::item_at(t0(), 100, 5)
    }

    fn users_returning(user: Option<User>) -> MockUserStore {
        let mut users = MockUserStore::new();
        users
            .expect_user_by_id()
            .returning(move |_| Ok(user.clone()));
        users
    }

    /// A store that decides every bid on `item` with no bids and returns the rejection or the
    /// placement; it records nothing.
    fn deciding_store(item: Item) -> MockAuctionStore {
        let mut store = MockAuctionStore::new();
        store
            .expect_place_bid()
            .times(1)
            .returning(move |decision| {
                let locked = LockedItem {
                    item: item.clone(),
                    standing: Standing::EMPTY,
                    bidder_has_bid: false,
                };
                let placement = decision.decide(&locked)?;
                Ok(AcceptedBid {
                    bid: Bid {
                        id: crate::ids::BidId::generate(),
                        item: item.id,
                        bidder: decision.command().bidder,
                        seq: placement.seq,
                        offer: decision.command().offer,
                        created_at: placement.at,
                    },
                    item: item.clone(),
                    placement,
                })
            });
        store
    }

    fn service(
        store: MockAuctionStore,
        users: MockUserStore,
        now: Timestamp,
        policy: AuctionPolicy,
    ) -> AuctionService {
        AuctionService::new(Arc::new(store), Arc::new(users), clock_at(now), policy)
    }

    fn offer(amount: i64) -> BidOffer {
        BidOffer::plain(Money::new(amount).unwrap())
    }

    #[test]
    fn an_unknown_or_deactivated_bidder_never_reaches_the_store() {
        for missing in [None, Some(user(true, false))] {
            let mut store = MockAuctionStore::new();
            store.expect_place_bid().never();
            let svc = service(
                store,
                users_returning(missing),
                t0(),
                AuctionPolicy::default(),
            );
            let result = futures_executor::block_on(svc.place_bid(
                UserId::generate(),
                ItemId::generate(),
                offer(100),
            ));
            assert!(matches!(result, Err(PlaceBidError::BidderNotFound)));
        }
    }

    #[test]
    fn an_unverified_bidder_is_refused_under_the_lock_when_verification_is_required() {
        let it = item();
        let svc = service(
            deciding_store(it.clone()),
            users_returning(Some(user(false, true))),
            t0(),
            AuctionPolicy::default(),
        );
        let result =
            futures_executor::block_on(svc.place_bid(UserId::generate(), it.id, offer(100)));
        assert!(matches!(
            result,
            Err(PlaceBidError::Rejected(BidRejection::EmailNotVerified))
        ));
    }

    #[test]
    fn an_unverified_bidder_may_bid_when_verification_is_off() {
        let it = item();
        let policy = AuctionPolicy {
            require_verified_email: false,
        };
        let bidder = user(false, true);
        let svc = service(
            deciding_store(it.clone()),
            users_returning(Some(bidder.clone())),
            t0(),
            policy,
        );
        let accepted =
            futures_executor::block_on(svc.place_bid(bidder.id, it.id, offer(100))).unwrap();
        assert_eq!(accepted.bid.seq, 1);
        assert_eq!(
            accepted.listed_item().standing.current_price,
            Money::new(100).ok()
        );
    }

    #[test]
    fn now_is_read_when_the_store_decides_not_before() {
        // The clock says the auction has closed by the time the store decides.
        let it = item();
        let svc = service(
            deciding_store(it.clone()),
            users_returning(Some(user(true, true))),
            it.close_at,
            AuctionPolicy::default(),
        );
        let result =
            futures_executor::block_on(svc.place_bid(UserId::generate(), it.id, offer(100)));
        assert!(matches!(
            result,
            Err(PlaceBidError::Rejected(BidRejection::AuctionClosed))
        ));
    }

    #[test]
    fn an_invalid_draft_is_refused_without_touching_the_store() {
        let mut store = MockAuctionStore::new();
        store.expect_insert_item().never();
        let svc = service(store, MockUserStore::new(), t0(), AuctionPolicy::default());
        let draft = ItemDraft {
            title: String::new(),
            description: String::new(),
            base_price: 0,
            min_increment: None,
            currency: None,
            close_at: t0(),
        };
        let result = futures_executor::block_on(svc.list_item(UserId::generate(), draft));
        let Err(ListItemError::Invalid(errors)) = result else {
            panic!("expected validation errors")
        };
        assert_eq!(errors.fields().len(), 3);
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
        let svc = service(store, MockUserStore::new(), t0(), AuctionPolicy::default());
        let draft = ItemDraft {
            title: "Lamp".into(),
            description: String::new(),
            base_price: 100,
            min_increment: Some(10),
            currency: Some("EUR".into()),
            close_at: t0() + Duration::days(1),
        };
        let listed = futures_executor::block_on(svc.list_item(seller, draft)).unwrap();
        assert_eq!(listed.item.currency.as_str(), "eur");
    }

    #[test]
    fn own_bid_reports_where_the_bid_stands() {
        let it = item();
        let bidder = UserId::generate();
        let bid_offer = offer(120);
        let (standing, _) = Standing::EMPTY.after(bidder, &bid_offer);
        let record = crate::ports::BidRecord {
            bid: Bid {
                id: crate::ids::BidId::generate(),
                item: it.id,
                bidder,
                seq: 1,
                offer: bid_offer,
                created_at: t0(),
            },
            item: it.clone(),
            standing,
        };
        let mut store = MockAuctionStore::new();
        store
            .expect_bid_record()
            .with(eq(it.id), eq(bidder))
            .returning(move |_, _| Ok(Some(record.clone())));
        store.expect_bid_record().returning(|_, _| Ok(None));
        let svc = service(store, MockUserStore::new(), t0(), AuctionPolicy::default());

        let own = futures_executor::block_on(svc.own_bid(bidder, it.id))
            .unwrap()
            .unwrap();
        assert_eq!(own.view.state, crate::bid::BidState::Leading);
        assert_eq!(own.item.standing.bid_count, 1);
        let stranger = futures_executor::block_on(svc.own_bid(UserId::generate(), it.id)).unwrap();
        assert!(stranger.is_none());
    }

    #[test]
    fn closing_and_cancelling_decide_with_the_services_clock() {
        let it = item();
        let mut store = MockAuctionStore::new();
        let due = it.clone();
        store
            .expect_close_due_items()
            .with(mockall::predicate::always(), eq(10))
            .returning(move |decision, _| {
                let outcome = decision.close(&due, &Standing::EMPTY).unwrap();
                let mut closed = due.clone();
                closed.status = ItemStatus::Closed(outcome);
                Ok(vec![ListedItem {
                    item: closed,
                    standing: Default::default(),
                }])
            });
        let cancellable = it.clone();
        store.expect_cancel_item().returning(move |_, decision| {
            decision.cancel(&cancellable, &Default::default())?;
            Ok(ListedItem {
                item: cancellable.clone(),
                standing: Default::default(),
            })
        });
        let svc = service(
            store,
            MockUserStore::new(),
            it.close_at,
            AuctionPolicy::default(),
        );

        let closed = futures_executor::block_on(svc.close_due_items(10)).unwrap();
        assert_eq!(
            closed[0].item.status,
            ItemStatus::Closed(CloseOutcome::Unsold)
        );
        // At close_at the item no longer takes bids, so it cannot be cancelled either.
        let cancelled = futures_executor::block_on(svc.cancel_item(it.id));
        assert!(matches!(
            cancelled,
            Err(CancelItemError::Rejected(
                crate::engine::CancelRejection::NotOpen
            ))
        ));
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
        let svc = service(store, MockUserStore::new(), t0(), AuctionPolicy::default());
        let found = futures_executor::block_on(svc.item(id)).unwrap();
        assert_eq!(found.map(|l| l.item.id), Some(id));
    }
}
