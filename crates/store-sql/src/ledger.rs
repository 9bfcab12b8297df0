//! The bid ledger on SQL: chaining the items and bids stored before the
//! ledger existed, and recomputing every chain (`poison-pill verify`).
//!
//! New bids are chained in their own transaction (`bidding.rs`). Bids from
//! before the ledger (migration 000021) need their sealed amounts to be
//! chained, which SQL cannot open, so the server chains them at start-up:
//! each item the migration marked `ledger_pending`, under its row lock,
//! filling the bids' NULL `chain_hash` (the one update the immutability
//! trigger lets through) and the head.
//!
//! Chaining is what someone who changed stored bids would want done for
//! them, so it is narrow: only marked items, and only when every one of
//! their bids was sealed before the ledger (the all-zero salt: a bid sealed
//! since carries a random one, which no one without the key can forge). An
//! item with a missing head and no mark is reported by `verify_ledgers`,
//! which only reads.

use pp_domain::ItemId;
use pp_domain::ledger::{ChainBreak, ChainHash, LedgerRecord, Salt, verify_chain};
use pp_domain::ports::StoreError;
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IsolationLevel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use crate::SqlStore;
use crate::auction::chain_hash;
use crate::entities::{bids, items};
use crate::errors::{integrity, store_error};
use crate::transaction::{TxFailure, with_retries};

/// Items read per page while verifying or chaining.
const PAGE: u64 = 100;

/// What `verify_ledgers` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LedgerReport {
    /// How many items were checked.
    pub checked: u64,
    /// How many items from before the ledger wait for start-up chaining.
    pub pending: u64,
    /// Each item whose chain does not match, with the first bad `seq`.
    pub broken: Vec<(ItemId, ChainBreak)>,
}

impl SqlStore {
    /// Chains every item the ledger's migration marked pending: its bids in
    /// `seq` order, then the head. Returns how many it chained. An item
    /// whose bids do not open, or hold a bid sealed since the ledger, is
    /// left unchained (and logged); `verify_ledgers` reports it.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn chain_pending_items(&self) -> Result<u64, StoreError> {
        let mut chained = 0;
        let mut after = Uuid::nil();
        loop {
            let ids: Vec<Uuid> = items::Entity::find()
                .select_only()
                .column(items::Column::Id)
                .filter(items::Column::LedgerPending.eq(true))
                .filter(items::Column::Id.gt(after))
                .order_by_asc(items::Column::Id)
                .limit(PAGE)
                .into_tuple()
                .all(self.database().connection())
                .await
                .map_err(store_error)?;
            let Some(last) = ids.last() else {
                return Ok(chained);
            };
            after = *last;
            for id in ids {
                match with_retries(|| self.try_chain_item(id)).await {
                    Ok(true) => chained += 1,
                    Ok(false) => {}
                    Err(StoreError::Integrity(error)) => {
                        tracing::error!(item = %id, %error, "cannot chain the item's bids");
                    }
                    Err(error) => return Err(error),
                }
            }
        }
    }

    async fn try_chain_item(&self, id: Uuid) -> Result<bool, TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = self.chain_item_in(&tx.txn, id).await;
        tx.finish(result).await
    }

    async fn chain_item_in(
        &self,
        txn: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<bool, TxFailure<StoreError>> {
        let Some(row) = items::Entity::find_by_id(id)
            .lock_exclusive()
            .one(txn)
            .await?
        else {
            return Ok(false);
        };
        if !row.ledger_pending {
            return Ok(false); // chained by another instance meanwhile
        }
        let item = ItemId::from_uuid(id);
        let mut head = ChainHash::genesis(item);
        for bid in bids_of(txn, id).await? {
            let stored = self.bid_from_row(&bid).map_err(TxFailure::outcome)?;
            if stored.salt != Salt::ZERO {
                return Err(TxFailure::outcome(integrity(format_args!(
                    "bid {} of item {item} was sealed after the ledger began; not chaining it",
                    stored.seq
                ))));
            }
            head = head.next(&stored.ledger_record());
            if bid.chain_hash.is_none() {
                bids::Entity::update_many()
                    .col_expr(
                        bids::Column::ChainHash,
                        Expr::value(head.as_bytes().to_vec()),
                    )
                    .filter(bids::Column::Id.eq(bid.id))
                    .exec(txn)
                    .await?;
            }
        }
        items::Entity::update_many()
            .col_expr(
                items::Column::LedgerHead,
                Expr::value(head.as_bytes().to_vec()),
            )
            .col_expr(items::Column::LedgerPending, Expr::value(false))
            .filter(items::Column::Id.eq(id))
            .exec(txn)
            .await?;
        Ok(true)
    }

    /// Recomputes the chain of every item (or of `only`) from its stored
    /// bids and compares each bid's stored value and the item's head. A bid
    /// that no longer opens breaks the chain at its place. It only reads:
    /// items still waiting for start-up chaining are counted in
    /// [`LedgerReport::pending`], not checked.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn verify_ledgers(&self, only: Option<ItemId>) -> Result<LedgerReport, StoreError> {
        let connection = self.database().connection();
        let mut report = LedgerReport::default();
        let mut after = Uuid::nil();
        loop {
            let mut query = items::Entity::find()
                .select_only()
                .column(items::Column::Id)
                .column(items::Column::LedgerPending)
                .filter(items::Column::Id.gt(after))
                .order_by_asc(items::Column::Id)
                .limit(PAGE);
            if let Some(only) = only {
                query = query.filter(items::Column::Id.eq(only.as_uuid()));
            }
            let page: Vec<(Uuid, bool)> = query
                .into_tuple()
                .all(connection)
                .await
                .map_err(store_error)?;
            let Some((last, _)) = page.last() else {
                return Ok(report);
            };
            after = *last;
            for (id, pending) in page {
                if pending {
                    // Waiting for start-up chaining, which only ever chains
                    // bids sealed before the ledger: one sealed since marks
                    // a change made to the rows, not an item from before.
                    match self.first_bid_sealed_since_the_ledger(id).await? {
                        Some(seq) => report
                            .broken
                            .push((ItemId::from_uuid(id), ChainBreak { seq })),
                        None => report.pending += 1,
                    }
                    continue;
                }
                report.checked += 1;
                if let Err(at) = self.verify_item(id).await? {
                    report.broken.push((ItemId::from_uuid(id), at));
                }
            }
        }
    }

    /// The first bid of an item pending chaining that was sealed after the
    /// ledger began (or does not open), if any.
    async fn first_bid_sealed_since_the_ledger(&self, id: Uuid) -> Result<Option<u64>, StoreError> {
        let rows = bids_of(self.database().connection(), id)
            .await
            .map_err(store_error)?;
        for (n, row) in rows.iter().enumerate() {
            let expected = n as u64 + 1;
            match self.bid_from_row(row) {
                Ok(bid) if bid.salt == Salt::ZERO && bid.seq == expected => {}
                _ => return Ok(Some(expected)),
            }
        }
        Ok(None)
    }

    /// One item's chain, its head and bids read in one snapshot, so a bid
    /// committed meanwhile is either in both or in neither.
    async fn verify_item(&self, id: Uuid) -> Result<Result<ChainHash, ChainBreak>, StoreError> {
        let connection = self.database().connection();
        let snapshot = if connection.get_database_backend() == DbBackend::Postgres {
            connection
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await
        } else {
            // A SQLite read transaction sees one snapshot from its first read.
            connection.begin().await
        }
        .map_err(store_error)?;
        let head = items::Entity::find_by_id(id)
            .select_only()
            .column(items::Column::LedgerHead)
            .into_tuple::<Option<Vec<u8>>>()
            .one(&snapshot)
            .await
            .map_err(store_error)?
            .flatten();
        let rows = bids_of(&snapshot, id).await.map_err(store_error)?;
        snapshot.commit().await.map_err(store_error)?;
        let head = head.as_deref();
        let item = ItemId::from_uuid(id);
        // Records up to the first bid that does not open (or whose stored
        // value is not a chain value): the chain breaks there.
        let mut stored: Vec<(LedgerRecord, Option<ChainHash>)> = Vec::with_capacity(rows.len());
        let mut unreadable = false;
        for row in &rows {
            match self.bid_from_row(row) {
                Ok(bid) => stored.push((bid.ledger_record(), bid.chain_hash)),
                Err(_) => {
                    unreadable = true;
                    break;
                }
            }
        }
        let head = match chain_hash(head, "items.ledger_head") {
            Ok(head) if !unreadable => head,
            // Compared with no head, a sound prefix breaks one past its end.
            _ => None,
        };
        Ok(verify_chain(
            item,
            stored.iter().map(|(record, value)| (record, *value)),
            head,
        ))
    }
}

/// An item's bids in `seq` order.
async fn bids_of(
    connection: &impl ConnectionTrait,
    item: Uuid,
) -> Result<Vec<bids::Model>, sea_orm::DbErr> {
    bids::Entity::find()
        .filter(bids::Column::ItemId.eq(item))
        .order_by_asc(bids::Column::Seq)
        .all(connection)
        .await
}
