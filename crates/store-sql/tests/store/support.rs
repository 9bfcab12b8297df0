//! An auction wired to a real store, and helpers to read it.

use std::sync::Arc;

use chrono::Duration;
use pp_domain::item::ItemDraft;
use pp_domain::ports::{AuctionStore, UserStore};
use pp_domain::service::{AuctionPolicy, AuctionService};
use pp_domain::{
    BidOffer, ItemCursor, ItemFilter, ItemSort, ListedItem, Money, Role, Standing, User,
};
use pp_store_sql::SqlStore;
use pp_testkit::{Backend, RecordedEvents, TestClock, TestDatabase, create_user, migrated_store};

/// A service over a real store on a fresh database.
pub struct Harness {
    pub database: TestDatabase,
    pub store: SqlStore,
    pub clock: Arc<TestClock>,
    pub auctions: AuctionService,
    pub events: Arc<RecordedEvents>,
    pub seller: User,
}

impl Harness {
    pub async fn new(backend: Backend) -> Self {
        let (database, store) = migrated_store(backend).await;
        let clock = TestClock::new();
        let events = Arc::new(RecordedEvents::default());
        let auctions = AuctionService::new(
            Arc::new(store.clone()),
            events.clone(),
            clock.clone(),
            AuctionPolicy::default(),
        );
        let seller = create_user(&store, Role::Admin, true).await;
        Harness {
            database,
            store,
            clock,
            auctions,
            events,
            seller,
        }
    }

    pub async fn bidder(&self) -> User {
        create_user(&self.store, Role::User, true).await
    }

    pub async fn bidders(&self, n: usize) -> Vec<User> {
        let mut users = Vec::with_capacity(n);
        for _ in 0..n {
            users.push(self.bidder().await);
        }
        users
    }

    /// Lists an item closing in an hour.
    pub async fn item(&self, base_price: i64, min_increment: i64) -> ListedItem {
        self.item_closing(base_price, min_increment, Duration::hours(1), None)
            .await
    }

    /// Lists an item closing `in_` from now, with a soft-close rule
    /// `(window_secs, extend_by_secs, max_extensions)` when given.
    pub async fn item_closing(
        &self,
        base_price: i64,
        min_increment: i64,
        in_: Duration,
        soft_close: Option<(i64, i64, i64)>,
    ) -> ListedItem {
        let draft = ItemDraft {
            title: "A lot".into(),
            description: "Something worth bidding on".into(),
            base_price,
            min_increment: Some(min_increment),
            currency: None,
            close_at: pp_domain::ports::Clock::now(self.clock.as_ref()) + in_,
            soft_close,
        };
        self.auctions
            .list_item(self.seller.id, draft, &Default::default())
            .await
            .unwrap()
    }

    /// Lists an item with this title and description, closing in an hour.
    pub async fn item_described(&self, title: &str, description: &str, price: i64) -> ListedItem {
        let draft = ItemDraft {
            title: title.into(),
            description: description.into(),
            base_price: price,
            min_increment: Some(5),
            currency: None,
            close_at: pp_domain::ports::Clock::now(self.clock.as_ref()) + Duration::hours(1),
            soft_close: None,
        };
        self.auctions
            .list_item(self.seller.id, draft, &Default::default())
            .await
            .unwrap()
    }

    /// A page of the item list, without the cursors.
    pub async fn page(
        &self,
        filter: &ItemFilter,
        sort: ItemSort,
        after: Option<ItemCursor>,
        limit: u32,
    ) -> Vec<ListedItem> {
        self.store
            .list_items(filter, sort, after, limit)
            .await
            .unwrap()
            .into_iter()
            .map(|(listed, _)| listed)
            .collect()
    }

    pub async fn listed(&self, item: &ListedItem) -> ListedItem {
        self.store.listed_item(item.item.id).await.unwrap().unwrap()
    }

    /// The item's unsealed standing, read through a bid on it.
    pub async fn standing(&self, item: &ListedItem) -> Standing {
        let bids = self
            .store
            .bids_in_order(item.item.id, 0, u32::MAX)
            .await
            .unwrap();
        let Some(first) = bids.first() else {
            return Standing::EMPTY;
        };
        self.store
            .bid_record(item.item.id, first.bidder)
            .await
            .unwrap()
            .unwrap()
            .standing
    }

    pub fn users(&self) -> &dyn UserStore {
        &self.store
    }
}

pub fn money(units: i64) -> Money {
    Money::new(units).unwrap()
}

pub fn plain(amount: i64) -> BidOffer {
    BidOffer::plain(money(amount))
}

pub fn poisoned(amount: i64, budget: i64, step: i64) -> BidOffer {
    BidOffer::poisoned(money(amount), money(budget), money(step))
}
