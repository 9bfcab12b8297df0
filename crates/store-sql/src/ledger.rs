//! The bid ledger on SQL: chaining the items and bids stored before the
//! ledger existed, and recomputing every chain (`poison-pill verify`).
//!
//! New bids are chained in their own transaction (`bidding.rs`). Bids from
//! before the ledger (migration 000021) need their sealed amounts to be
//! chained, which SQL cannot open, so the server chains them at start-up:
//! each such item under its row lock, filling the bids' NULL `chain_hash`
//! (the one update the immutability trigger lets through) and the head.

use pp_domain::ItemId;
use pp_domain::ledger::{ChainBreak, ChainHash, LedgerRecord, verify_chain};
use pp_domain::ports::StoreError;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use crate::SqlStore;
use crate::auction::chain_hash;
use crate::entities::{bids, items};
use crate::errors::store_error;
use crate::transaction::{TxFailure, with_retries};

/// Items read per page while verifying or chaining.
const PAGE: u64 = 100;

/// What `verify_ledgers` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LedgerReport {
    /// How many items were checked.
    pub checked: u64,
    /// Each item whose chain does not match, with the first bad `seq`.
    pub broken: Vec<(ItemId, ChainBreak)>,
}

impl SqlStore {
    /// Chains every item whose ledger has no head yet (listed, or bid on,
    /// before the ledger existed): its bids in `seq` order, then the head.
    /// Returns how many it chained. An item whose bids do not open is left
    /// unchained (and logged); `verify_ledgers` reports it.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn chain_unchained_items(&self) -> Result<u64, StoreError> {
        let mut chained = 0;
        let mut after = Uuid::nil();
        loop {
            let ids: Vec<Uuid> = items::Entity::find()
                .select_only()
                .column(items::Column::Id)
                .filter(items::Column::LedgerHead.is_null())
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
        if row.ledger_head.is_some() {
            return Ok(false); // chained by another instance meanwhile
        }
        let item = ItemId::from_uuid(id);
        let mut head = ChainHash::genesis(item);
        for bid in bids_of(txn, id).await? {
            let stored = self.bid_from_row(&bid).map_err(TxFailure::outcome)?;
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
            .filter(items::Column::Id.eq(id))
            .exec(txn)
            .await?;
        Ok(true)
    }

    /// Recomputes the chain of every item (or of `only`) from its stored
    /// bids and compares each bid's stored value and the item's head. A bid
    /// that no longer opens breaks the chain at its place.
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
                .column(items::Column::LedgerHead)
                .filter(items::Column::Id.gt(after))
                .order_by_asc(items::Column::Id)
                .limit(PAGE);
            if let Some(only) = only {
                query = query.filter(items::Column::Id.eq(only.as_uuid()));
            }
            let page: Vec<(Uuid, Option<Vec<u8>>)> = query
                .into_tuple()
                .all(connection)
                .await
                .map_err(store_error)?;
            let Some((last, _)) = page.last() else {
                return Ok(report);
            };
            after = *last;
            for (id, head) in page {
                report.checked += 1;
                if let Err(at) = self.verify_item(id, head.as_deref()).await? {
                    report.broken.push((ItemId::from_uuid(id), at));
                }
            }
        }
    }

    async fn verify_item(
        &self,
        id: Uuid,
        head: Option<&[u8]>,
    ) -> Result<Result<ChainHash, ChainBreak>, StoreError> {
        let item = ItemId::from_uuid(id);
        let rows = bids_of(self.database().connection(), id)
            .await
            .map_err(store_error)?;
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
