//! The [`AuctionStore`] port on SQL: items, the locked bid transaction, closing.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::SubsecRound;
use pp_domain::engine::Standing;
use pp_domain::item::{Description, PublicStanding, Title};
use pp_domain::ledger::ChainHash;
use pp_domain::live::{PricePoint, notifications_after_close};
use pp_domain::notifications::{NotificationCursor, StoredNotification};
use pp_domain::ports::{
    AcceptedBid, AuctionStore, BidDecision, BidRecord, CancelItemError, CloseFailure, CloseRound,
    ClosedItem, EditItemError, LifecycleDecision, PlaceBidError, StoreError,
};
use pp_domain::soft_close::{Closing, SoftClose};
use pp_domain::{
    Bid, BidCursor, BidId, CloseOutcome, Currency, Item, ItemCursor, ItemEdit, ItemFilter, ItemId,
    ItemSearch, ItemSort, ItemStatus, ListedItem, Money, NewItem, Timestamp, UserId,
};
use sea_orm::sea_query::{Alias, ExprTrait, Func, LockBehavior, LockType, SelectStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait,
    FromQueryResult, Order, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
    TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use crate::SqlStore;
use crate::codec::{open_leader, open_offer_and_salt, open_price};
use crate::entities::{bids, items};
use crate::errors::{integrity, store_error};
use crate::notifications::insert_notifications;
use crate::transaction::{TxFailure, with_retries};

/// PostgreSQL keeps microseconds; truncating before writing means what is
/// returned equals what is read back later, on both backends.
pub(crate) fn db_time(at: Timestamp) -> Timestamp {
    at.trunc_subsecs(6)
}

fn money(units: i64, column: &str) -> Result<Money, StoreError> {
    Money::new(units).map_err(|e| integrity(format_args!("{column}: {e}")))
}

fn optional_money(units: Option<i64>, column: &str) -> Result<Option<Money>, StoreError> {
    units.map(|u| money(u, column)).transpose()
}

fn count(bid_count: i64) -> Result<u64, StoreError> {
    u64::try_from(bid_count).map_err(|_| integrity("items.bid_count is negative"))
}

pub(crate) fn item_from_row(row: &items::Model) -> Result<Item, StoreError> {
    let status = match row.status.as_str() {
        "open" => ItemStatus::Open,
        "cancelled" => ItemStatus::Cancelled,
        "closed" => ItemStatus::Closed(
            match (
                row.winner_id,
                optional_money(row.final_price, "items.final_price")?,
            ) {
                (Some(winner), Some(price)) => CloseOutcome::Sold {
                    winner: UserId::from_uuid(winner),
                    price,
                },
                (None, None) => CloseOutcome::Unsold,
                _ => return Err(integrity("a closed item has half an outcome")),
            },
        ),
        other => return Err(integrity(format_args!("unknown item status {other:?}"))),
    };
    Ok(Item {
        id: ItemId::from_uuid(row.id),
        seller: UserId::from_uuid(row.seller_id),
        title: Title::from_stored(&row.title)
            .map_err(|e| integrity(format_args!("items.title: {e}")))?,
        description: Description::from_stored(&row.description)
            .map_err(|e| integrity(format_args!("items.description: {e}")))?,
        currency: Currency::parse(&row.currency)
            .map_err(|e| integrity(format_args!("items.currency: {e}")))?,
        base_price: money(row.base_price, "items.base_price")?,
        min_increment: money(row.min_increment, "items.min_increment")?,
        close_at: row.close_at,
        created_at: row.created_at,
        status,
        soft_close: soft_close_from_row(row)?,
        extensions_used: u32::try_from(row.extensions_used)
            .map_err(|_| integrity("items.extensions_used is negative"))?,
        ledger_head: chain_hash(row.ledger_head.as_deref(), "items.ledger_head")?,
    })
}

fn soft_close_from_row(row: &items::Model) -> Result<Option<SoftClose>, StoreError> {
    match (
        row.soft_close_window_secs,
        row.soft_close_extend_by_secs,
        row.soft_close_max_extensions,
    ) {
        (None, None, None) => Ok(None),
        (Some(window), Some(extend_by), Some(max)) => {
            SoftClose::new(window.into(), extend_by.into(), max.into())
                .map(Some)
                .map_err(|e| integrity(format_args!("items.soft_close: {e}")))
        }
        _ => Err(integrity("an item has part of a soft-close rule")),
    }
}

/// A stored chain value: NULL, or exactly 32 bytes.
pub(crate) fn chain_hash(
    stored: Option<&[u8]>,
    column: &str,
) -> Result<Option<ChainHash>, StoreError> {
    stored
        .map(|bytes| {
            ChainHash::from_slice(bytes)
                .ok_or_else(|| integrity(format_args!("{column} is not 32 bytes")))
        })
        .transpose()
}

/// A column's `i32` from a count or duration the domain bounded.
pub(crate) fn small(value: impl TryInto<i32>, what: &str) -> Result<i32, StoreError> {
    value
        .try_into()
        .map_err(|_| integrity(format_args!("{what} out of range")))
}

fn public_standing(row: &items::Model) -> Result<PublicStanding, StoreError> {
    Ok(PublicStanding {
        bid_count: count(row.bid_count)?,
        current_price: optional_money(row.current_price, "items.current_price")?,
    })
}

pub(crate) fn listed_from_row(row: &items::Model) -> Result<ListedItem, StoreError> {
    Ok(ListedItem {
        item: item_from_row(row)?,
        standing: public_standing(row)?,
    })
}

/// Rows newer-first after a cursor `(created_at, id)`, in the form an index
/// range reads (see [`after_in_order`]).
fn before(
    created_at: impl ColumnTrait,
    id: impl ColumnTrait,
    at: Timestamp,
    after_id: Uuid,
) -> Condition {
    Condition::all()
        .add(created_at.lte(at))
        .add(Condition::any().add(created_at.lt(at)).add(id.lt(after_id)))
}

/// A page of the item list: up to `limit` items `filter` keeps in `sort`'s
/// order after `after`, each row with a `relevance` column (the search's
/// rank, 0 without a search).
fn item_list(
    backend: DbBackend,
    filter: &ItemFilter,
    sort: ItemSort,
    after: Option<ItemCursor>,
    limit: u32,
) -> Result<SelectStatement, StoreError> {
    let mut query = items::Entity::find();
    if let Some(status) = filter.status {
        query = query.filter(items::Column::Status.eq(status.as_str()));
    }
    let search = filter
        .search
        .as_ref()
        .map(|search| Search::new(backend, search));
    let key = match (sort, &search) {
        (ItemSort::BestMatch, Some(search)) => search.relevance(),
        (ItemSort::BestMatch, None) => return Err(integrity("a best match without a search")),
        _ => sort_key(sort),
    };
    let order = if sort.descending() {
        Order::Desc
    } else {
        Order::Asc
    };
    if let Some(after) = after {
        query = query.filter(after_in_order(sort, key.clone(), after)?);
    }
    let mut statement = query
        .order_by(key, order.clone())
        .order_by(items::Column::Id, order)
        .limit(limit_of(limit))
        .into_query();
    match &search {
        Some(search) => search.apply(&mut statement),
        None => {
            statement.expr_as(Expr::val(0.0_f64), RELEVANCE);
        }
    }
    Ok(statement)
}

/// The column each page's rows carry their rank in.
const RELEVANCE: &str = "relevance";

/// A search as each database runs it.
enum Search {
    /// PostgreSQL parses the text as it parsed the documents (so `3.5`,
    /// `example.com` or `e-mail` is the token it indexed): every word must
    /// match.
    Postgres { text: String },
    /// SQLite's FTS5 table `items_fts`, with each word quoted (so that no
    /// character is FTS5 syntax): every word must match.
    Sqlite { words: String },
}

impl Search {
    fn new(backend: DbBackend, search: &ItemSearch) -> Self {
        if backend == DbBackend::Postgres {
            Search::Postgres {
                text: search.text().to_owned(),
            }
        } else {
            let quoted: Vec<String> = search
                .words()
                .iter()
                .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
                .collect();
            Search::Sqlite {
                words: quoted.join(" "),
            }
        }
    }

    /// (sea-query numbers a custom expression's values `$1`… on
    /// PostgreSQL, and takes `?` on SQLite.)
    ///
    /// How well an item matches, higher is better: `ts_rank` (title weighs
    /// A, description B), or FTS5's `bm25` negated (title 10, description 5).
    fn relevance(&self) -> Expr {
        match self {
            Search::Postgres { text } => Expr::cust_with_values(
                r#"ts_rank("items"."search_vector", plainto_tsquery('pp_search', $1))::float8"#,
                [text.clone()],
            ),
            Search::Sqlite { .. } => Expr::cust(r#"-bm25("items_fts", 0.0, 10.0, 5.0)"#),
        }
    }

    /// Keeps the items that match, and selects their rank.
    fn apply(&self, statement: &mut SelectStatement) {
        match self {
            Search::Postgres { text } => {
                statement.and_where(Expr::cust_with_values(
                    r#""items"."search_vector" @@ plainto_tsquery('pp_search', $1)"#,
                    [text.clone()],
                ));
            }
            Search::Sqlite { words } => {
                statement
                    .inner_join(
                        Alias::new("items_fts"),
                        Expr::col((Alias::new("items_fts"), Alias::new("item_id")))
                            .equals((items::Entity, items::Column::Id)),
                    )
                    .and_where(Expr::cust_with_values(
                        r#""items_fts" MATCH ?"#,
                        [words.clone()],
                    ));
            }
        }
        statement.expr_as(self.relevance(), RELEVANCE);
    }
}

impl SqlStore {
    /// The database's plan for a page of the item list, as text: for the
    /// tests that keep each order on its index (a plan is not an API).
    ///
    /// # Errors
    /// The database's.
    #[doc(hidden)]
    pub async fn item_list_plan(
        &self,
        filter: &ItemFilter,
        sort: ItemSort,
        after: Option<ItemCursor>,
    ) -> Result<String, StoreError> {
        let connection = self.database().connection();
        let backend = connection.get_database_backend();
        let page = backend.build(&item_list(backend, filter, sort, after, 20)?);
        let explain = if backend == DbBackend::Postgres {
            "EXPLAIN"
        } else {
            "EXPLAIN QUERY PLAN"
        };
        let transaction = connection.begin().await.map_err(store_error)?;
        if backend == DbBackend::Postgres {
            // A test's table is a few rows, which PostgreSQL would rather
            // scan whole; the question is which index it can use.
            transaction
                .execute_unprepared("SET LOCAL enable_seqscan = off")
                .await
                .map_err(store_error)?;
        }
        let rows = transaction
            .query_all_raw(Statement {
                sql: format!("{explain} {}", page.sql),
                ..page
            })
            .await
            .map_err(store_error)?;
        let column = if backend == DbBackend::Postgres {
            "QUERY PLAN"
        } else {
            "detail"
        };
        let lines: Result<Vec<String>, _> = rows
            .iter()
            .map(|row| row.try_get::<String>("", column))
            .collect();
        Ok(lines.map_err(store_error)?.join("\n"))
    }
}

/// The column or expression `sort` orders items by (the price one is what
/// `idx_items_status_listed_price_id` indexes).
fn sort_key(sort: ItemSort) -> Expr {
    match sort {
        // A search's rank; `item_list` asks the search for it.
        ItemSort::BestMatch => Expr::val(0.0_f64),
        ItemSort::Newest => Expr::col((items::Entity, items::Column::CreatedAt)),
        ItemSort::ClosingSoon => Expr::col((items::Entity, items::Column::CloseAt)),
        ItemSort::PriceAsc | ItemSort::PriceDesc => Func::coalesce([
            Expr::col((items::Entity, items::Column::CurrentPrice)),
            Expr::col((items::Entity, items::Column::BasePrice)),
        ])
        .into(),
    }
}

/// The items after `after` in `sort`'s order: a later key, or the same key
/// and a later id (both in the order's direction). Written `k >= v AND (k >
/// v OR id > i)` rather than `k > v OR (k = v AND id > i)`: both databases
/// then read it as a range of the `(key, id)` index instead of scanning it
/// from the start and filtering (PostgreSQL's row comparison would do too,
/// but SQLite scans an expression index for it).
fn after_in_order(sort: ItemSort, key: Expr, after: ItemCursor) -> Result<Condition, StoreError> {
    if after.sort != sort {
        return Err(integrity("an item cursor of another order"));
    }
    let value: sea_orm::Value = match sort {
        ItemSort::Newest | ItemSort::ClosingSoon => Timestamp::from_timestamp_micros(after.key)
            .ok_or_else(|| integrity("an item cursor's time is out of range"))?
            .into(),
        ItemSort::PriceAsc | ItemSort::PriceDesc => after.key.into(),
        ItemSort::BestMatch => after
            .relevance()
            .ok_or_else(|| integrity("an item cursor's relevance is not a rank"))?
            .into(),
    };
    let id = after.id.as_uuid();
    Ok(if sort.descending() {
        Condition::all().add(key.clone().lte(value.clone())).add(
            Condition::any()
                .add(key.lt(value))
                .add(items::Column::Id.lt(id)),
        )
    } else {
        Condition::all().add(key.clone().gte(value.clone())).add(
            Condition::any()
                .add(key.gt(value))
                .add(items::Column::Id.gt(id)),
        )
    })
}

/// One duration of a soft-close rule, in whole seconds, for its column.
fn rule_secs(
    rule: Option<SoftClose>,
    part: fn(&SoftClose) -> chrono::Duration,
) -> Result<Option<i32>, StoreError> {
    rule.map(|rule| small(part(&rule).num_seconds(), "soft_close seconds"))
        .transpose()
}

/// What replay reads of a bid: seq, sealed price, time, extension, chain value.
type PriceRow = (
    i64,
    Option<Vec<u8>>,
    Timestamp,
    Option<Timestamp>,
    Option<i32>,
    Option<Vec<u8>>,
);

fn limit_of(limit: u32) -> u64 {
    u64::from(limit)
}

impl SqlStore {
    /// Unseals an item's standing and checks it against the public columns.
    pub(crate) fn standing_from_row(&self, row: &items::Model) -> Result<Standing, StoreError> {
        let public = public_standing(row)?;
        let leader = row
            .sealed_standing
            .as_deref()
            .map(|sealed| open_leader(self.sealer(), ItemId::from_uuid(row.id), sealed))
            .transpose()?;
        if leader.map(|l| l.price) != public.current_price {
            return Err(integrity(format_args!(
                "item {}: the public price disagrees with the sealed standing",
                row.id
            )));
        }
        Standing::restore(public.bid_count, leader).map_err(integrity)
    }

    pub(crate) fn bid_from_row(&self, row: &bids::Model) -> Result<Bid, StoreError> {
        let item = ItemId::from_uuid(row.item_id);
        let bidder = UserId::from_uuid(row.user_id);
        let (offer, salt) = open_offer_and_salt(self.sealer(), item, bidder, &row.sealed_offer)?;
        Ok(Bid {
            id: BidId::from_uuid(row.id),
            item,
            bidder,
            seq: u64::try_from(row.seq).map_err(|_| integrity("bids.seq is negative"))?,
            offer,
            created_at: row.created_at,
            salt,
            chain_hash: chain_hash(row.chain_hash.as_deref(), "bids.chain_hash")?,
        })
    }

    async fn try_close_due(
        &self,
        decision: &LifecycleDecision,
        limit: u32,
    ) -> Result<CloseRound<ClosedItem>, TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = self.close_due_in(&tx.txn, decision, limit).await;
        tx.finish(result).await
    }

    async fn close_due_in(
        &self,
        txn: &impl ConnectionTrait,
        decision: &LifecycleDecision,
        limit: u32,
    ) -> Result<CloseRound<ClosedItem>, TxFailure<StoreError>> {
        let now = decision.now();
        // SKIP LOCKED: an item another closer (or a bid) holds is left for
        // the next round. An item that could not be read is passed by until
        // its retry time, so it never heads the queue for good.
        let due = items::Entity::find()
            .filter(items::Column::Status.eq("open"))
            .filter(items::Column::CloseAt.lte(now))
            .filter(
                Condition::any()
                    .add(items::Column::CloseRetryAt.is_null())
                    .add(items::Column::CloseRetryAt.lte(now)),
            )
            .order_by_asc(items::Column::CloseAt)
            .limit(u64::from(limit))
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(txn)
            .await?;
        let mut closed = Vec::with_capacity(due.len());
        let mut failed = Vec::new();
        for row in due {
            let read =
                item_from_row(&row).and_then(|item| Ok((item, self.standing_from_row(&row)?)));
            let (mut item, standing) = match read {
                Ok(read) => read,
                Err(error) => {
                    failed.push(self.defer_close(txn, decision, &row, error).await?);
                    continue;
                }
            };
            let Ok(outcome) = decision.close(&item, &standing) else {
                continue;
            };
            items::Entity::update_many()
                .col_expr(items::Column::Status, Expr::value("closed"))
                .col_expr(
                    items::Column::FinalPrice,
                    Expr::value(outcome.final_price().map(Money::minor_units)),
                )
                .col_expr(
                    items::Column::WinnerId,
                    Expr::value(outcome.winner().map(|w| w.as_uuid())),
                )
                .col_expr(items::Column::ClosedAt, Expr::value(db_time(now)))
                .filter(items::Column::Id.eq(row.id))
                .exec(txn)
                .await?;
            item.status = ItemStatus::Closed(outcome);
            closed.push(ListedItem {
                item,
                standing: standing.public(),
            });
        }
        let mut bidders: HashMap<Uuid, Vec<UserId>> = HashMap::new();
        if !closed.is_empty() {
            let rows = bids::Entity::find()
                .select_only()
                .column(bids::Column::ItemId)
                .column(bids::Column::UserId)
                .filter(bids::Column::ItemId.is_in(closed.iter().map(|c| c.item.id.as_uuid())))
                .order_by_asc(bids::Column::Seq)
                .into_tuple::<(Uuid, Uuid)>()
                .all(txn)
                .await?;
            for (item, user) in rows {
                bidders
                    .entry(item)
                    .or_default()
                    .push(UserId::from_uuid(user));
            }
        }
        let closed: Vec<ClosedItem> = closed
            .into_iter()
            .map(|listed| ClosedItem {
                bidders: bidders
                    .remove(&listed.item.id.as_uuid())
                    .unwrap_or_default(),
                listed,
            })
            .collect();
        // Won and lost, stored with the close (pushed live after commit).
        let told: Vec<_> = closed
            .iter()
            .flat_map(|item| {
                notifications_after_close(&item.listed, &item.bidders, now)
                    .into_iter()
                    .map(move |told| (told, &item.listed.item))
            })
            .collect();
        insert_notifications(txn, self.sealer(), &told).await?;
        Ok(CloseRound { closed, failed })
    }

    /// Counts a failed attempt to close `row` and puts its next one off, in
    /// the closer's transaction, so the other due items still commit.
    async fn defer_close(
        &self,
        txn: &impl ConnectionTrait,
        decision: &LifecycleDecision,
        row: &items::Model,
        error: StoreError,
    ) -> Result<CloseFailure, TxFailure<StoreError>> {
        let failures = u32::try_from(row.close_failures)
            .unwrap_or(0)
            .saturating_add(1);
        let retry_at = db_time(decision.retry_close_at(failures));
        items::Entity::update_many()
            .col_expr(
                items::Column::CloseFailures,
                Expr::value(i32::try_from(failures).unwrap_or(i32::MAX)),
            )
            .col_expr(items::Column::CloseRetryAt, Expr::value(retry_at))
            .filter(items::Column::Id.eq(row.id))
            .exec(txn)
            .await?;
        Ok(CloseFailure {
            item: ItemId::from_uuid(row.id),
            error,
            failures,
            retry_at,
        })
    }

    async fn try_cancel(
        &self,
        id: ItemId,
        decision: &LifecycleDecision,
    ) -> Result<ListedItem, TxFailure<CancelItemError>> {
        let tx = self.database().begin_write().await?;
        let result = self.cancel_in(&tx.txn, id, decision).await;
        tx.finish(result).await
    }

    async fn cancel_in(
        &self,
        txn: &impl ConnectionTrait,
        id: ItemId,
        decision: &LifecycleDecision,
    ) -> Result<ListedItem, TxFailure<CancelItemError>> {
        let row = items::Entity::find_by_id(id.as_uuid())
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(TxFailure::Outcome(CancelItemError::ItemNotFound))?;
        let mut listed = listed_from_row(&row).map_err(TxFailure::outcome)?;
        decision
            .cancel(&listed.item, &listed.standing)
            .map_err(TxFailure::outcome)?;
        items::Entity::update_many()
            .col_expr(items::Column::Status, Expr::value("cancelled"))
            .filter(items::Column::Id.eq(row.id))
            .exec(txn)
            .await?;
        listed.item.status = ItemStatus::Cancelled;
        Ok(listed)
    }

    async fn try_edit(
        &self,
        id: ItemId,
        edit: &ItemEdit,
        decision: &LifecycleDecision,
    ) -> Result<ListedItem, TxFailure<EditItemError>> {
        let tx = self.database().begin_write().await?;
        let result = self.edit_in(&tx.txn, id, edit, decision).await;
        tx.finish(result).await
    }

    /// Under the item's row lock, as bids take it: an edit and a first bid
    /// racing are decided one after the other, so the edit sees the bid
    /// (`item_has_bids`) or the bid sees the edited item.
    async fn edit_in(
        &self,
        txn: &impl ConnectionTrait,
        id: ItemId,
        edit: &ItemEdit,
        decision: &LifecycleDecision,
    ) -> Result<ListedItem, TxFailure<EditItemError>> {
        let row = items::Entity::find_by_id(id.as_uuid())
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(TxFailure::Outcome(EditItemError::ItemNotFound))?;
        let listed = listed_from_row(&row).map_err(TxFailure::outcome)?;
        let item = decision
            .edit(&listed.item, &listed.standing, edit)
            .map_err(TxFailure::outcome)?;
        items::Entity::update_many()
            .col_expr(items::Column::Title, Expr::value(item.title.as_str()))
            .col_expr(
                items::Column::Description,
                Expr::value(item.description.as_str()),
            )
            .col_expr(items::Column::CloseAt, Expr::value(item.close_at))
            .filter(items::Column::Id.eq(row.id))
            .exec(txn)
            .await?;
        Ok(ListedItem {
            item,
            standing: listed.standing,
        })
    }
}

#[async_trait]
impl AuctionStore for SqlStore {
    async fn insert_item(&self, item: NewItem) -> Result<ListedItem, StoreError> {
        let mut item = item.into_item();
        item.close_at = db_time(item.close_at);
        item.created_at = db_time(item.created_at);
        let row = items::ActiveModel {
            id: Set(item.id.as_uuid()),
            seller_id: Set(item.seller.as_uuid()),
            title: Set(item.title.as_str().to_owned()),
            description: Set(item.description.as_str().to_owned()),
            currency: Set(item.currency.as_str().to_owned()),
            base_price: Set(item.base_price.minor_units()),
            min_increment: Set(item.min_increment.minor_units()),
            close_at: Set(item.close_at),
            created_at: Set(item.created_at),
            status: Set(item.status.as_str().to_owned()),
            current_price: Set(None),
            bid_count: Set(0),
            sealed_standing: Set(None),
            final_price: Set(None),
            winner_id: Set(None),
            closed_at: Set(None),
            close_failures: Set(0),
            close_retry_at: Set(None),
            soft_close_window_secs: Set(rule_secs(item.soft_close, SoftClose::window)?),
            soft_close_extend_by_secs: Set(rule_secs(item.soft_close, SoftClose::extend_by)?),
            soft_close_max_extensions: Set(item
                .soft_close
                .map(|rule| small(rule.max_extensions(), "soft_close.max_extensions"))
                .transpose()?),
            extensions_used: Set(0),
            ledger_head: Set(item.ledger_head.map(|head| head.as_bytes().to_vec())),
            ledger_pending: Set(false),
        };
        let insert = async {
            let tx = self.database().begin_write().await?;
            let result = items::Entity::insert(row)
                .exec_without_returning(&tx.txn)
                .await
                .map(|_| ())
                .map_err(TxFailure::<StoreError>::Db);
            tx.finish(result).await
        };
        match insert.await {
            Ok(()) => Ok(ListedItem {
                item,
                standing: PublicStanding::default(),
            }),
            Err(TxFailure::Db(err)) => Err(store_error(err)),
            Err(TxFailure::Outcome(err)) => Err(err),
        }
    }

    async fn listed_item(&self, id: ItemId) -> Result<Option<ListedItem>, StoreError> {
        items::Entity::find_by_id(id.as_uuid())
            .one(self.database().connection())
            .await
            .map_err(store_error)?
            .as_ref()
            .map(listed_from_row)
            .transpose()
    }

    async fn place_bid(&self, decision: BidDecision) -> Result<AcceptedBid, PlaceBidError> {
        self.queue_bid(decision).await
    }

    async fn bid_record(
        &self,
        item: ItemId,
        bidder: UserId,
    ) -> Result<Option<BidRecord>, StoreError> {
        let connection = self.database().connection();
        let Some(bid) = bids::Entity::find()
            .filter(bids::Column::ItemId.eq(item.as_uuid()))
            .filter(bids::Column::UserId.eq(bidder.as_uuid()))
            .one(connection)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let row = items::Entity::find_by_id(item.as_uuid())
            .one(connection)
            .await
            .map_err(store_error)?
            .ok_or_else(|| integrity("a bid refers to a missing item"))?;
        Ok(Some(BidRecord {
            bid: self.bid_from_row(&bid)?,
            item: item_from_row(&row)?,
            standing: self.standing_from_row(&row)?,
        }))
    }

    async fn bids_in_order(
        &self,
        item: ItemId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Bid>, StoreError> {
        bids::Entity::find()
            .filter(bids::Column::ItemId.eq(item.as_uuid()))
            .filter(bids::Column::Seq.gt(i64::try_from(after_seq).unwrap_or(i64::MAX)))
            .order_by_asc(bids::Column::Seq)
            .limit(limit_of(limit))
            .all(self.database().connection())
            .await
            .map_err(store_error)?
            .iter()
            .map(|row| self.bid_from_row(row))
            .collect()
    }

    async fn list_items(
        &self,
        filter: &ItemFilter,
        sort: ItemSort,
        after: Option<ItemCursor>,
        limit: u32,
    ) -> Result<Vec<(ListedItem, ItemCursor)>, StoreError> {
        if filter
            .search
            .as_ref()
            .is_some_and(ItemSearch::matches_nothing)
        {
            // No word to look for (FTS5 would not parse an empty query).
            return Ok(Vec::new());
        }
        let connection = self.database().connection();
        let backend = connection.get_database_backend();
        let page = backend.build(&item_list(backend, filter, sort, after, limit)?);
        connection
            .query_all_raw(page)
            .await
            .map_err(store_error)?
            .iter()
            .map(|row| {
                let listed = listed_from_row(
                    &<items::Model as FromQueryResult>::from_query_result(row, "")
                        .map_err(store_error)?,
                )?;
                let relevance: f64 = row.try_get("", RELEVANCE).map_err(store_error)?;
                let cursor = sort.cursor_of(&listed, relevance);
                Ok((listed, cursor))
            })
            .collect()
    }

    async fn bids_of_bidder(
        &self,
        bidder: UserId,
        after: Option<BidCursor>,
        limit: u32,
    ) -> Result<Vec<BidRecord>, StoreError> {
        let connection = self.database().connection();
        let mut query = bids::Entity::find().filter(bids::Column::UserId.eq(bidder.as_uuid()));
        if let Some(after) = after {
            query = query.filter(before(
                bids::Column::CreatedAt,
                bids::Column::Id,
                after.created_at,
                after.id.as_uuid(),
            ));
        }
        let bids = query
            .order_by_desc(bids::Column::CreatedAt)
            .order_by_desc(bids::Column::Id)
            .limit(limit_of(limit))
            .all(connection)
            .await
            .map_err(store_error)?;
        if bids.is_empty() {
            return Ok(Vec::new());
        }
        let items: HashMap<Uuid, items::Model> = items::Entity::find()
            .filter(items::Column::Id.is_in(bids.iter().map(|b| b.item_id)))
            .all(connection)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|row| (row.id, row))
            .collect();
        bids.iter()
            .map(|bid| {
                let row = items
                    .get(&bid.item_id)
                    .ok_or_else(|| integrity("a bid refers to a missing item"))?;
                Ok(BidRecord {
                    bid: self.bid_from_row(bid)?,
                    item: item_from_row(row)?,
                    standing: self.standing_from_row(row)?,
                })
            })
            .collect()
    }

    async fn price_history(
        &self,
        item: ItemId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<PricePoint>, StoreError> {
        let rows = bids::Entity::find()
            .select_only()
            .column(bids::Column::Seq)
            .column(bids::Column::SealedPriceAfter)
            .column(bids::Column::CreatedAt)
            .column(bids::Column::ExtendedTo)
            .column(bids::Column::ExtensionsAfter)
            .column(bids::Column::ChainHash)
            .filter(bids::Column::ItemId.eq(item.as_uuid()))
            .filter(bids::Column::Seq.gt(i64::try_from(after_seq).unwrap_or(i64::MAX)))
            .filter(bids::Column::SealedPriceAfter.is_not_null())
            .order_by_asc(bids::Column::Seq)
            .limit(limit_of(limit))
            .into_tuple::<PriceRow>()
            .all(self.database().connection())
            .await
            .map_err(store_error)?;
        rows.into_iter()
            .filter_map(|(seq, sealed, at, extended_to, extensions, chain)| {
                sealed.map(|sealed| (seq, sealed, at, extended_to, extensions, chain))
            })
            .map(|(seq, sealed, at, extended_to, extensions, chain)| {
                let seq = u64::try_from(seq).map_err(|_| integrity("bids.seq is negative"))?;
                let extension = match (extended_to, extensions) {
                    (None, None) => None,
                    (Some(close_at), Some(used)) => Some(Closing {
                        close_at,
                        extensions_used: u32::try_from(used)
                            .map_err(|_| integrity("bids.extensions_after is negative"))?,
                    }),
                    _ => return Err(integrity("a bid has half an extension")),
                };
                Ok(PricePoint {
                    seq,
                    price: open_price(self.sealer(), item, seq, &sealed)?,
                    at,
                    extension,
                    chain_hash: chain_hash(chain.as_deref(), "bids.chain_hash")?,
                })
            })
            .collect()
    }

    async fn close_due_items(
        &self,
        decision: LifecycleDecision,
        limit: u32,
    ) -> Result<CloseRound<ClosedItem>, StoreError> {
        with_retries(|| self.try_close_due(&decision, limit)).await
    }

    async fn cancel_item(
        &self,
        id: ItemId,
        decision: LifecycleDecision,
    ) -> Result<ListedItem, CancelItemError> {
        with_retries(|| self.try_cancel(id, &decision)).await
    }

    async fn edit_item(
        &self,
        id: ItemId,
        edit: ItemEdit,
        decision: LifecycleDecision,
    ) -> Result<ListedItem, EditItemError> {
        with_retries(|| self.try_edit(id, &edit, &decision)).await
    }

    async fn notifications(
        &self,
        user: UserId,
        after: Option<NotificationCursor>,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        self.user_notifications(user, after, limit).await
    }

    async fn unread_notifications(&self, user: UserId) -> Result<u64, StoreError> {
        self.count_unread(user).await
    }

    async fn mark_notifications_read(
        &self,
        user: UserId,
        up_to: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.mark_read(user, up_to, now).await
    }
}
