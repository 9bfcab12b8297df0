//! The bid transaction, batched: the bids waiting in the instance's queue
//! ([`crate::batcher`]) are decided together, in arrival order, in one
//! transaction that locks every item they are for (in id order, so
//! concurrent batches on several instances cannot deadlock) and finds
//! their bidders' earlier bids in one statement, decides them with the
//! domain's `engine::decide_in_order`, then inserts every accepted bid and
//! updates every changed item in one more (PostgreSQL; SQLite, in process,
//! takes a few more). The design, once: docs/ARCHITECTURE.md, "The bid
//! path". Inside the locks there are only
//! these queries, the pure decisions and AES-GCM seals (microseconds): no
//! other network call, no password hashing, no logging. (The ledger's one
//! SHA-256 per bid is inside, as it must be: it chains on the head read
//! under the lock.) Every bid is answered after the transaction ended.

use std::collections::{HashMap, HashSet};

use pp_domain::engine::{self, BatchRejection, LockedBatch, Placement};
use pp_domain::ledger::{ChainHash, Salt};
use pp_domain::live::{Notification, notifications_after_bid};
use pp_domain::ports::{AcceptedBid, BidDecision, PlaceBidError, StoreError};
use pp_domain::{Bid, BidId, Item, ItemId, UserId};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Statement, Value, sea_query::Expr,
};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::SqlStore;
use crate::auction::{db_time, item_from_row, small};
use crate::batcher::{BidQueue, PendingBid};
use crate::codec::{seal_leader, seal_offer, seal_price};
use crate::entities::notifications;
use crate::entities::{bids, items};
use crate::errors::{Reaction, integrity, react};
use crate::notifications::{insert_notices, insert_notification_rows, notification_rows};
use crate::transaction::{MAX_ATTEMPTS, TxFailure, with_retries};

type Outcome = Result<AcceptedBid, PlaceBidError>;

/// Why a batch's transaction did not commit.
#[derive(Debug)]
enum BatchError {
    /// The unique index refused one of its bids.
    Duplicate,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for BatchError {
    fn from(error: StoreError) -> Self {
        BatchError::Store(error)
    }
}

/// The error of a failed batch, for each of its bids (the original keeps its
/// chain; the copies carry its message).
fn same_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Busy => StoreError::Busy,
        StoreError::Integrity(what) => StoreError::Integrity(what.clone()),
        StoreError::Unknown(cause) => StoreError::Unknown(anyhow::anyhow!("{cause:#}")),
    }
}

/// Frees the queue if the drainer ends without emptying it (it panicked or
/// was cancelled): the waiting bids are answered with an error and the next
/// bid starts a new drainer instead of waiting forever.
struct DrainGuard<'a> {
    queue: &'a BidQueue,
    finished: bool,
}

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.queue.abandon();
        }
    }
}

/// A batch's answers, the rows of its accepted bids, and each item's
/// ledger head after them.
struct Sealed {
    outcomes: Vec<Outcome>,
    accepted: Vec<NewBid>,
    heads: HashMap<ItemId, Option<ChainHash>>,
}

/// An accepted bid's row, to be inserted.
struct NewBid {
    id: Uuid,
    item_id: Uuid,
    user_id: Uuid,
    seq: i64,
    sealed_offer: Vec<u8>,
    created_at: chrono::DateTime<chrono::Utc>,
    sealed_price_after: Vec<u8>,
    /// The close it moved its item to, and the extensions used then.
    extended_to: Option<chrono::DateTime<chrono::Utc>>,
    extensions_after: Option<i32>,
    /// The ledger's value after it (`None` on an item not yet chained).
    chain_hash: Option<Vec<u8>>,
}

/// A changed item's new public price, bid count, sealed standing, close
/// and ledger head.
struct NewStanding {
    item_id: Uuid,
    price: i64,
    bid_count: i64,
    sealed: Vec<u8>,
    close_at: chrono::DateTime<chrono::Utc>,
    extensions_used: i32,
    ledger_head: Option<Vec<u8>>,
}

impl SqlStore {
    /// Whether no bid is waiting for or inside a transaction: every bid
    /// placed so far has been answered and announced.
    #[must_use]
    pub fn bids_settled(&self) -> bool {
        self.queue.is_idle()
    }

    /// Queues a bid for the next transaction and waits for its outcome.
    pub(crate) async fn queue_bid(&self, decision: BidDecision) -> Outcome {
        let command = decision.command();
        let mut salt = [0u8; 16];
        rand::fill(&mut salt[..]);
        let salt = Salt::from_bytes(salt);
        let sealed_offer = seal_offer(
            self.sealer(),
            command.item,
            command.bidder,
            &command.offer,
            &salt,
        )?;
        let (reply, answer) = oneshot::channel();
        let pending = PendingBid {
            decision,
            bid_id: BidId::generate(),
            sealed_offer,
            salt,
            reply,
        };
        if self.queue.enqueue(pending) {
            let drainer = self.clone().drain();
            match &self.drainer_runtime {
                Some(runtime) => drop(runtime.spawn(drainer)),
                None => drop(tokio::spawn(drainer)),
            }
        }
        answer.await.map_err(|_| {
            PlaceBidError::Store(StoreError::Unknown(anyhow::anyhow!(
                "the bid's batch was abandoned before it ended"
            )))
        })?
    }

    /// Runs batches until the queue is empty.
    async fn drain(self) {
        let mut guard = DrainGuard {
            queue: &self.queue,
            finished: false,
        };
        loop {
            let batch = self.queue.next_batch();
            if batch.is_empty() {
                guard.finished = true;
                return;
            }
            metrics::histogram!("bid_batch_size").record(batch.len() as f64);
            let started = std::time::Instant::now();
            let outcomes = self.decide_isolating_failures(&batch).await;
            metrics::histogram!("bid_batch_seconds").record(started.elapsed().as_secs_f64());
            // Batch order is `seq` order for each item, and one drainer
            // serves each item: events go out in the order of the commits,
            // each before its bid is answered.
            for (pending, outcome) in batch.into_iter().zip(outcomes) {
                if let Ok(accepted) = &outcome {
                    pending.decision.committed(accepted);
                }
                // A caller that went away no longer needs its answer.
                let _ = pending.reply.send(outcome);
            }
        }
    }

    /// The outcome of every bid of `batch`. When the batch fails because
    /// one item's stored state is bad (its standing does not open), its bids
    /// are tried one by one, so that item costs only its own bids. Other
    /// failures are answered for the whole batch: `Busy` is not worth trying
    /// again at once, and after an `Unknown` (a commit whose answer was lost,
    /// say) the batch may have been stored, so deciding its bids again would
    /// refuse them as already placed.
    async fn decide_isolating_failures(&self, batch: &[PendingBid]) -> Vec<Outcome> {
        let error = match self.decide_batch(batch).await {
            Ok(outcomes) => return outcomes,
            Err(error) => error,
        };
        if batch.len() == 1 || !matches!(error, StoreError::Integrity(_)) {
            return batch
                .iter()
                .map(|_| Err(PlaceBidError::Store(same_error(&error))))
                .collect();
        }
        tracing::warn!(error = %error, bids = batch.len(), "bid batch failed; deciding its bids one by one");
        let mut outcomes = Vec::with_capacity(batch.len());
        for pending in batch {
            let outcome = match self.decide_batch(std::slice::from_ref(pending)).await {
                Ok(mut one) => one.pop().unwrap_or_else(|| {
                    Err(PlaceBidError::Store(integrity(
                        "a batch of one bid had no outcome",
                    )))
                }),
                Err(error) => Err(PlaceBidError::Store(error)),
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Decides and stores a batch, retrying the whole batch on conflicts.
    async fn decide_batch(&self, batch: &[PendingBid]) -> Result<Vec<Outcome>, StoreError> {
        let mut duplicates = 0;
        loop {
            match with_retries(|| self.try_batch(batch)).await {
                Ok(outcomes) => return Ok(outcomes),
                Err(BatchError::Store(error)) => return Err(error),
                // A bid raced past the in-lock check (only possible from a
                // writer that did not take the item lock): decide again, and
                // the check will see it.
                Err(BatchError::Duplicate) if duplicates < MAX_ATTEMPTS => duplicates += 1,
                Err(BatchError::Duplicate) => return Err(StoreError::Busy),
            }
        }
    }

    async fn try_batch(&self, batch: &[PendingBid]) -> Result<Vec<Outcome>, TxFailure<BatchError>> {
        let tx = self.bid_pool.begin_write().await?;
        let result = self.batch_in(&tx.txn, batch).await;
        tx.finish(result).await
    }

    /// The batch's transaction: lock its items → decide its bids in order
    /// (the engine) → seal what was accepted → store → (the caller commits).
    async fn batch_in(
        &self,
        txn: &impl ConnectionTrait,
        batch: &[PendingBid],
    ) -> Result<Vec<Outcome>, TxFailure<BatchError>> {
        let mut locked = lock_items(txn, batch).await?.into_batch(self)?;
        // Each bid decided at `now` as it will be stored (to the
        // microsecond), so a close it moves reads back as answered.
        let decisions = engine::decide_in_order(
            &mut locked,
            batch
                .iter()
                .map(|pending| (pending.decision.command(), db_time(pending.decision.now()))),
        );
        let Sealed {
            outcomes,
            accepted,
            heads,
        } = self.seal_bids(batch, &locked, decisions)?;
        if accepted.is_empty() {
            return Ok(outcomes);
        }
        let standings = self.seal_standings(&locked, &heads)?;
        // Who each accepted bid tells, stored with it (the live push follows
        // the commit), and mailed a notice if they take them.
        let told: Vec<(Notification, &Item)> = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().ok())
            .flat_map(|accepted| {
                notifications_after_bid(
                    &accepted.item,
                    accepted.bid.bidder,
                    &accepted.bid.offer,
                    &accepted.placement,
                )
                .into_iter()
                .map(|told| (told, &accepted.item))
            })
            .collect();
        let notifications = notification_rows(self.sealer(), &told).map_err(TxFailure::outcome)?;
        store_bids(txn, accepted, standings, notifications).await?;
        insert_notices(txn, self.sealer(), &told).await?;
        Ok(outcomes)
    }

    /// Each bid's answer, and the rows of the accepted ones (sealed).
    fn seal_bids(
        &self,
        batch: &[PendingBid],
        locked: &LockedBatch,
        decisions: Vec<Result<Placement, BatchRejection>>,
    ) -> Result<Sealed, TxFailure<BatchError>> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut accepted = Vec::new();
        // Each item's ledger head as the batch's bids move it on.
        let mut heads: HashMap<ItemId, Option<ChainHash>> = HashMap::new();
        for (pending, decision) in batch.iter().zip(decisions) {
            let command = pending.decision.command();
            let placement = match decision {
                Ok(placement) => placement,
                Err(BatchRejection::ItemNotFound) => {
                    outcomes.push(Err(PlaceBidError::ItemNotFound));
                    continue;
                }
                Err(BatchRejection::Rejected(rejection)) => {
                    outcomes.push(Err(PlaceBidError::Rejected(rejection)));
                    continue;
                }
            };
            // The batch's terms (its close as moved by the batch's last
            // extension; this bid's close is set below) and the head from
            // before the batch (the engine does not chain).
            let item_before = locked
                .item(command.item)
                .ok_or_else(|| TxFailure::outcome(integrity("a bid was placed on no item")))?;
            let price =
                placement.standing.public().current_price.ok_or_else(|| {
                    TxFailure::outcome(integrity("an accepted bid left no price"))
                })?;
            let at = db_time(placement.at);
            let bid = Bid {
                id: pending.bid_id,
                item: command.item,
                bidder: command.bidder,
                seq: placement.seq,
                offer: command.offer,
                created_at: at,
                salt: pending.salt,
                chain_hash: None,
            };
            // An item from before the ledger is chained whole later
            // (`chain_pending_items`); until then its bids wait unchained.
            let head = heads.entry(command.item).or_insert(item_before.ledger_head);
            *head = head.map(|head| head.next(&bid.ledger_record()));
            let bid = Bid {
                chain_hash: *head,
                ..bid
            };
            let mut item = item_before.clone();
            item.extend_to(placement.closing);
            item.ledger_head = *head;
            accepted.push(NewBid {
                id: pending.bid_id.as_uuid(),
                item_id: command.item.as_uuid(),
                user_id: command.bidder.as_uuid(),
                seq: i64::try_from(placement.seq)
                    .map_err(|_| TxFailure::outcome(integrity("bid sequence overflow")))?,
                sealed_offer: pending.sealed_offer.clone(),
                created_at: at,
                sealed_price_after: seal_price(self.sealer(), command.item, placement.seq, price)
                    .map_err(TxFailure::outcome)?,
                extended_to: placement.extended.then_some(placement.closing.close_at),
                extensions_after: placement
                    .extended
                    .then(|| small(placement.closing.extensions_used, "extensions_used"))
                    .transpose()
                    .map_err(TxFailure::outcome)?,
                chain_hash: bid.chain_hash.map(|hash| hash.as_bytes().to_vec()),
            });
            outcomes.push(Ok(AcceptedBid {
                bid,
                item,
                placement,
            }));
        }
        Ok(Sealed {
            outcomes,
            accepted,
            heads,
        })
    }

    /// Each changed item's public price, bid count and sealed standing.
    fn seal_standings(
        &self,
        locked: &LockedBatch,
        heads: &HashMap<ItemId, Option<ChainHash>>,
    ) -> Result<Vec<NewStanding>, TxFailure<BatchError>> {
        locked
            .changed()
            .map(|(item, standing)| {
                let leader = standing.leader().ok_or_else(|| {
                    TxFailure::outcome(integrity("an accepted bid left no leader"))
                })?;
                Ok(NewStanding {
                    item_id: item.id.as_uuid(),
                    price: leader.price.minor_units(),
                    bid_count: i64::try_from(standing.bid_count())
                        .map_err(|_| TxFailure::outcome(integrity("bid count overflow")))?,
                    sealed: seal_leader(self.sealer(), item.id, leader)
                        .map_err(TxFailure::outcome)?,
                    close_at: item.close_at,
                    extensions_used: small(item.extensions_used, "extensions_used")
                        .map_err(TxFailure::outcome)?,
                    ledger_head: heads
                        .get(&item.id)
                        .copied()
                        .flatten()
                        .map(|head| head.as_bytes().to_vec()),
                })
            })
            .collect()
    }
}

/// The rows a batch locked, and which of its bidders already bid on which
/// of its items.
struct LockedRows {
    items: Vec<items::Model>,
    has_bid: HashSet<(Uuid, Uuid)>,
}

impl LockedRows {
    /// The rows as the engine reads them: every standing unsealed and checked.
    fn into_batch(self, store: &SqlStore) -> Result<LockedBatch, TxFailure<BatchError>> {
        let mut batch = LockedBatch::new();
        for row in &self.items {
            let item = item_from_row(row).map_err(TxFailure::outcome)?;
            batch.lock(
                item,
                store.standing_from_row(row).map_err(TxFailure::outcome)?,
            );
        }
        for (item, bidder) in self.has_bid {
            batch.already_bid(ItemId::from_uuid(item), UserId::from_uuid(bidder));
        }
        Ok(batch)
    }
}

/// Locks the batch's items, in id order, and finds which of its bidders
/// already bid on which of them. On PostgreSQL this is one statement whose
/// text does not depend on the batch (arrays, not IN lists), so every
/// connection prepares it once; on SQLite, in process, two plain queries.
async fn lock_items(
    txn: &impl ConnectionTrait,
    batch: &[PendingBid],
) -> Result<LockedRows, TxFailure<BatchError>> {
    let mut item_ids: Vec<Uuid> = batch
        .iter()
        .map(|pending| pending.decision.command().item.as_uuid())
        .collect();
    item_ids.sort_unstable();
    item_ids.dedup();
    let bidders: Vec<Uuid> = batch
        .iter()
        .map(|pending| pending.decision.command().bidder.as_uuid())
        .collect();
    if txn.get_database_backend() == DbBackend::Postgres {
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                r#"SELECT i.*, b."user_id" AS "existing_bidder" FROM "items" AS i
                   LEFT JOIN "bids" AS b ON b."item_id" = i."id" AND b."user_id" = ANY($2)
                   WHERE i."id" = ANY($1) ORDER BY i."id" FOR UPDATE OF i"#,
                [item_ids.into(), bidders.into()],
            ))
            .await?;
        let mut items: Vec<items::Model> = Vec::with_capacity(rows.len());
        let mut has_bid = HashSet::new();
        for row in &rows {
            let item = <items::Model as FromQueryResult>::from_query_result(row, "")?;
            if let Some(bidder) = row.try_get::<Option<Uuid>>("", "existing_bidder")? {
                has_bid.insert((item.id, bidder));
            }
            // An item comes once per bidder of the batch who already bid on it.
            if items.last().is_none_or(|last| last.id != item.id) {
                items.push(item);
            }
        }
        return Ok(LockedRows { items, has_bid });
    }
    let rows = items::Entity::find()
        .filter(items::Column::Id.is_in(item_ids.iter().copied()))
        .order_by_asc(items::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await?;
    let has_bid = bids::Entity::find()
        .select_only()
        .column(bids::Column::ItemId)
        .column(bids::Column::UserId)
        .filter(bids::Column::ItemId.is_in(item_ids))
        .filter(bids::Column::UserId.is_in(bidders))
        .into_tuple::<(Uuid, Uuid)>()
        .all(txn)
        .await?
        .into_iter()
        .collect();
    Ok(LockedRows {
        items: rows,
        has_bid,
    })
}

/// Inserts the accepted bids and the notifications they cause, and writes
/// each changed item's public price, bid count and sealed standing. On
/// PostgreSQL one statement of fixed text does it all (the inserts as
/// data-modifying `WITH`s); on SQLite, in process, one insert and one
/// update per item, then the notifications.
async fn store_bids(
    txn: &impl ConnectionTrait,
    accepted: Vec<NewBid>,
    standings: Vec<NewStanding>,
    told: Vec<notifications::Model>,
) -> Result<(), TxFailure<BatchError>> {
    let stored = if txn.get_database_backend() == DbBackend::Postgres {
        // One array per column: the statement's text stays the same
        // whatever the batch holds.
        let values = [
            array(&accepted, |bid| bid.id),
            array(&accepted, |bid| bid.item_id),
            array(&accepted, |bid| bid.user_id),
            array(&accepted, |bid| bid.seq),
            array(&accepted, |bid| bid.sealed_offer.clone()),
            array(&accepted, |bid| bid.created_at),
            array(&accepted, |bid| bid.sealed_price_after.clone()),
            array(&standings, |standing| standing.item_id),
            array(&standings, |standing| standing.price),
            array(&standings, |standing| standing.bid_count),
            array(&standings, |standing| standing.sealed.clone()),
            array(&told, |told| told.id),
            array(&told, |told| told.user_id),
            array(&told, |told| told.item_id),
            array(&told, |told| told.item_title.clone()),
            array(&told, |told| told.at),
            array(&told, |told| told.sealed.clone()),
            // The driver takes no NULL inside an array: an absent value
            // travels as 0 or empty bytes, and the statement maps it back.
            array(&accepted, |bid| bid.extended_to.unwrap_or(bid.created_at)),
            array(&accepted, |bid| bid.extensions_after.unwrap_or(0)),
            array(&accepted, |bid| bid.chain_hash.clone().unwrap_or_default()),
            array(&standings, |standing| standing.close_at),
            array(&standings, |standing| standing.extensions_used),
            array(&standings, |standing| {
                standing.ledger_head.clone().unwrap_or_default()
            }),
        ];
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            r#"WITH inserted AS (
                 INSERT INTO "bids" ("id", "item_id", "user_id", "seq", "sealed_offer", "created_at", "sealed_price_after", "extended_to", "extensions_after", "chain_hash")
                 SELECT id, item_id, user_id, seq, sealed_offer, created_at, price_after,
                        CASE WHEN extensions > 0 THEN extended_to END, NULLIF(extensions, 0), NULLIF(chain, ''::bytea)
                 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::bytea[], $6::timestamptz[], $7::bytea[], $18::timestamptz[], $19::integer[], $20::bytea[])
                   AS b(id, item_id, user_id, seq, sealed_offer, created_at, price_after, extended_to, extensions, chain)
               ), told AS (
                 INSERT INTO "notifications" ("id", "user_id", "item_id", "item_title", "at", "sealed")
                 SELECT * FROM unnest($12::uuid[], $13::uuid[], $14::uuid[], $15::text[], $16::timestamptz[], $17::bytea[])
               )
               UPDATE "items" AS i SET "current_price" = v.price, "bid_count" = v.bid_count, "sealed_standing" = v.sealed,
                 "close_at" = v.close_at, "extensions_used" = v.extensions_used, "ledger_head" = NULLIF(v.ledger_head, ''::bytea)
               FROM unnest($8::uuid[], $9::bigint[], $10::bigint[], $11::bytea[], $21::timestamptz[], $22::integer[], $23::bytea[])
                 AS v(id, price, bid_count, sealed, close_at, extensions_used, ledger_head)
               WHERE i."id" = v.id"#,
            values,
        ))
        .await
        .map(drop)
    } else {
        store_bids_one_by_one(txn, accepted, standings, told).await
    };
    match stored {
        Err(err) if react(&err) == Reaction::Duplicate => {
            Err(TxFailure::Outcome(BatchError::Duplicate))
        }
        other => Ok(other?),
    }
}

async fn store_bids_one_by_one(
    txn: &impl ConnectionTrait,
    accepted: Vec<NewBid>,
    standings: Vec<NewStanding>,
    told: Vec<notifications::Model>,
) -> Result<(), sea_orm::DbErr> {
    bids::Entity::insert_many(accepted.into_iter().map(|row| bids::ActiveModel {
        id: Set(row.id),
        item_id: Set(row.item_id),
        user_id: Set(row.user_id),
        seq: Set(row.seq),
        sealed_offer: Set(row.sealed_offer),
        created_at: Set(row.created_at),
        sealed_price_after: Set(Some(row.sealed_price_after)),
        extended_to: Set(row.extended_to),
        extensions_after: Set(row.extensions_after),
        chain_hash: Set(row.chain_hash),
    }))
    .exec_without_returning(txn)
    .await?;
    for standing in standings {
        items::Entity::update_many()
            .col_expr(items::Column::CurrentPrice, Expr::value(standing.price))
            .col_expr(items::Column::BidCount, Expr::value(standing.bid_count))
            .col_expr(items::Column::SealedStanding, Expr::value(standing.sealed))
            .col_expr(items::Column::CloseAt, Expr::value(standing.close_at))
            .col_expr(
                items::Column::ExtensionsUsed,
                Expr::value(standing.extensions_used),
            )
            .col_expr(items::Column::LedgerHead, Expr::value(standing.ledger_head))
            .filter(items::Column::Id.eq(standing.item_id))
            .exec(txn)
            .await?;
    }
    insert_notification_rows(txn, told).await
}

/// One column of `rows` as a PostgreSQL array parameter.
fn array<R, T>(rows: &[R], field: impl Fn(&R) -> T) -> Value
where
    Vec<T>: Into<Value>,
{
    rows.iter().map(field).collect::<Vec<T>>().into()
}
