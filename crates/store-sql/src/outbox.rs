//! The outbox's table: messages stored with the change that causes them
//! ([`mail_row`], inserted in that change's transaction), claimed by
//! workers with `SKIP LOCKED` (on SQLite, under the write lock), settled
//! under the claim that took them.
//!
//! The message (recipient, greeting, link) is sealed and bound to its row,
//! like a bid: a reset link is a password, and the database holds only its
//! digest elsewhere. A delivered message's seal is erased at once.

use async_trait::async_trait;
use chrono::Duration;
use pp_domain::auth::tokens::{LinkMail, OneTimePurpose};
use pp_domain::live::NotificationData;
use pp_domain::notifications::NoticeMail;
use pp_domain::outbox::{
    ClaimId, ClaimedMail, NewOutboxMail, OutboxId, OutboxState, OutboxStatus, OutboxStore,
    OutgoingMail, Settlement,
};
use pp_domain::ports::{SealBinding, Sealer, StoreError};
use pp_domain::{Currency, Email, Timestamp};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::outbox;
use crate::errors::{integrity, store_error};
use crate::transaction::{TxFailure, with_retries};

/// A message as sealed: what the domain's [`OutgoingMail`] says, in a
/// layout of this crate's (tagged, so new kinds of mail can be added).
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SealedMail {
    Link {
        to: String,
        name: String,
        purpose: String,
        link: String,
        expires_at: Timestamp,
    },
    Notice {
        to: String,
        name: String,
        item_title: String,
        currency: String,
        notice: NotificationData,
    },
}

impl SealedMail {
    fn of(mail: &OutgoingMail) -> Self {
        match mail {
            OutgoingMail::Link(link) => SealedMail::Link {
                to: link.to.as_str().to_owned(),
                name: link.name.clone(),
                purpose: link.purpose.as_str().to_owned(),
                link: link.link.clone(),
                expires_at: link.expires_at,
            },
            OutgoingMail::Notice(notice) => SealedMail::Notice {
                to: notice.to.as_str().to_owned(),
                name: notice.name.clone(),
                item_title: notice.item_title.clone(),
                currency: notice.currency.as_str().to_owned(),
                notice: notice.notice,
            },
        }
    }

    fn into_mail(self) -> Result<OutgoingMail, StoreError> {
        match self {
            SealedMail::Link {
                to,
                name,
                purpose,
                link,
                expires_at,
            } => Ok(OutgoingMail::Link(LinkMail {
                to: Email::parse(&to).map_err(|_| integrity("a stored mail's recipient"))?,
                name,
                purpose: OneTimePurpose::parse(&purpose)
                    .ok_or_else(|| integrity("a stored mail's purpose"))?,
                link,
                expires_at,
            })),
            SealedMail::Notice {
                to,
                name,
                item_title,
                currency,
                notice,
            } => Ok(OutgoingMail::Notice(NoticeMail {
                to: Email::parse(&to).map_err(|_| integrity("a stored mail's recipient"))?,
                name,
                item_title,
                currency: Currency::parse(&currency)
                    .map_err(|_| integrity("a stored notice's currency"))?,
                notice,
            })),
        }
    }
}

/// Every sealed message is padded to a multiple of this length.
const SEALED_BLOCK: usize = 512;

/// Every sealed notice is padded to this length: more than the longest can
/// take (a 254-byte address, a name of 100 and a title of 200 characters
/// of four bytes each, the notice's figures and the JSON around them).
const NOTICE_SEALED_LEN: usize = 2_048;

/// The row that stores `mail`, due at once, to insert in the transaction
/// of the change that causes it.
pub(crate) fn mail_row(
    sealer: &dyn Sealer,
    mail: &NewOutboxMail,
) -> Result<outbox::ActiveModel, StoreError> {
    let mut plain = serde_json::to_vec(&SealedMail::of(&mail.mail))
        .map_err(|err| integrity(format_args!("a mail cannot be encoded: {err}")))?;
    // Padded (JSON allows trailing spaces), so a ciphertext's length tells
    // little of what it says: every notice is one length, so which one it
    // is (an `exhausted` one would tell a bid was poisoned) stays sealed.
    let at_least = match mail.mail {
        OutgoingMail::Notice(_) => NOTICE_SEALED_LEN,
        OutgoingMail::Link(_) => 0,
    };
    plain.resize(
        plain.len().max(at_least).next_multiple_of(SEALED_BLOCK),
        b' ',
    );
    let sealed = sealer
        .seal(&plain, &SealBinding::OutboxMail { id: mail.id })
        .map_err(|err| integrity(format_args!("sealing failed: {err}")))?;
    let created_at = db_time(mail.created_at);
    Ok(outbox::ActiveModel {
        id: Set(mail.id.as_uuid()),
        kind: Set(mail.mail.kind().to_owned()),
        state: Set(OutboxState::Pending.as_str().to_owned()),
        attempts: Set(0),
        due_at: Set(created_at),
        claim_id: Set(None),
        created_at: Set(created_at),
        sent_at: Set(None),
        last_error: Set(None),
        request_id: Set(mail.request_id.clone()),
        trace_parent: Set(mail.trace_parent.clone()),
        urgency: Set(mail.mail.urgency().rank()),
        sealed: Set(Some(sealed)),
    })
}

/// The longest error kept: enough for an SMTP reply, bounded for a column.
const ERROR_CHARS: usize = 1_000;

fn bounded(error: &str) -> String {
    error.chars().take(ERROR_CHARS).collect()
}

impl SqlStore {
    fn open_mail(&self, row: &outbox::Model) -> Result<OutgoingMail, StoreError> {
        let id = OutboxId::from_uuid(row.id);
        let sealed = row
            .sealed
            .as_deref()
            .ok_or_else(|| integrity(format_args!("outbox message {id} has no content")))?;
        let plain = self
            .sealer()
            .open(sealed, &SealBinding::OutboxMail { id })
            .map_err(|err| integrity(format_args!("outbox message {id} does not open: {err}")))?;
        serde_json::from_slice::<SealedMail>(&plain)
            .map_err(|err| integrity(format_args!("outbox message {id} is malformed: {err}")))?
            .into_mail()
    }

    async fn try_claim(
        &self,
        claim: ClaimId,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<outbox::Model>, TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            let txn = &tx.txn;
            // SKIP LOCKED: rows another worker is claiming right now are
            // left to it. A claim that lapsed is due again: its due time
            // was the lease's end.
            let due = outbox::Entity::find()
                .filter(outbox::Column::State.eq(OutboxState::Pending.as_str()))
                .filter(outbox::Column::DueAt.lte(db_time(now)))
                .order_by_asc(outbox::Column::Urgency)
                .order_by_asc(outbox::Column::DueAt)
                .limit(u64::from(limit))
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .all(txn)
                .await?;
            if due.is_empty() {
                return Ok(due);
            }
            let until = db_time(now + lease);
            outbox::Entity::update_many()
                .col_expr(outbox::Column::ClaimId, Expr::value(claim.as_uuid()))
                .col_expr(outbox::Column::DueAt, Expr::value(until))
                .col_expr(
                    outbox::Column::Attempts,
                    Expr::col(outbox::Column::Attempts).add(1),
                )
                .filter(outbox::Column::Id.is_in(due.iter().map(|row| row.id)))
                .exec(txn)
                .await?;
            Ok(due)
        }
        .await;
        tx.finish(result).await
    }
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn claim_due(
        &self,
        claim: ClaimId,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        // Most rounds find nothing: a plain read says so without taking
        // SQLite's write lock (or a PostgreSQL transaction) every tick.
        let anything_due = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Id)
            .filter(outbox::Column::State.eq(OutboxState::Pending.as_str()))
            .filter(outbox::Column::DueAt.lte(db_time(now)))
            .into_tuple::<Uuid>()
            .one(self.database().connection())
            .await
            .map_err(store_error)?
            .is_some();
        if !anything_due {
            return Ok(Vec::new());
        }
        let rows = with_retries(|| self.try_claim(claim, now, lease, limit)).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let id = OutboxId::from_uuid(row.id);
            let attempt = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
            match self.open_mail(&row) {
                Ok(mail) => claimed.push(ClaimedMail {
                    id,
                    attempt,
                    mail,
                    request_id: row.request_id.clone(),
                    trace_parent: row.trace_parent.clone(),
                }),
                // A message that cannot be read never will be: dead at once,
                // so it does not come back every lease.
                Err(error) => {
                    tracing::error!(outbox_id = %id, error = %error, "an outbox message cannot be read");
                    self.settle(
                        id,
                        claim,
                        Settlement::Dead {
                            at: now,
                            error: error.to_string(),
                        },
                    )
                    .await?;
                }
            }
        }
        Ok(claimed)
    }

    async fn settle(
        &self,
        id: OutboxId,
        claim: ClaimId,
        settlement: Settlement,
    ) -> Result<bool, StoreError> {
        let update = outbox::Entity::update_many()
            .col_expr(outbox::Column::ClaimId, Expr::value(Option::<Uuid>::None))
            .filter(outbox::Column::Id.eq(id.as_uuid()))
            .filter(outbox::Column::ClaimId.eq(claim.as_uuid()))
            .filter(outbox::Column::State.eq(OutboxState::Pending.as_str()));
        let update = match settlement {
            Settlement::Sent { at } => update
                .col_expr(
                    outbox::Column::State,
                    Expr::value(OutboxState::Sent.as_str()),
                )
                .col_expr(outbox::Column::SentAt, Expr::value(db_time(at)))
                // Delivered: the link it carried is no business of the table's.
                .col_expr(outbox::Column::Sealed, Expr::value(Option::<Vec<u8>>::None)),
            Settlement::Retry { due_at, error } => update
                .col_expr(outbox::Column::DueAt, Expr::value(db_time(due_at)))
                .col_expr(outbox::Column::LastError, Expr::value(bounded(&error))),
            Settlement::Dead { at, error } => update
                .col_expr(
                    outbox::Column::State,
                    Expr::value(OutboxState::Dead.as_str()),
                )
                .col_expr(outbox::Column::DueAt, Expr::value(db_time(at)))
                .col_expr(outbox::Column::LastError, Expr::value(bounded(&error))),
        };
        let _gate = self.database().write_gate().await;
        let result = update
            .exec(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected == 1)
    }

    async fn release(&self, claim: ClaimId, now: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.database().write_gate().await;
        let result = outbox::Entity::update_many()
            .col_expr(outbox::Column::ClaimId, Expr::value(Option::<Uuid>::None))
            .col_expr(outbox::Column::DueAt, Expr::value(db_time(now)))
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).sub(1),
            )
            .filter(outbox::Column::ClaimId.eq(claim.as_uuid()))
            .filter(outbox::Column::State.eq(OutboxState::Pending.as_str()))
            .exec(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected)
    }

    async fn status(&self, now: Timestamp) -> Result<OutboxStatus, StoreError> {
        let connection = self.database().connection();
        let counts: Vec<(String, i64)> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::State)
            .column_as(outbox::Column::Id.count(), "count")
            .group_by(outbox::Column::State)
            .into_tuple()
            .all(connection)
            .await
            .map_err(store_error)?;
        let oldest_due: Option<Timestamp> = outbox::Entity::find()
            .select_only()
            .column_as(outbox::Column::DueAt.min(), "oldest")
            .filter(outbox::Column::State.eq(OutboxState::Pending.as_str()))
            .filter(outbox::Column::DueAt.lte(db_time(now)))
            .into_tuple::<Option<Timestamp>>()
            .one(connection)
            .await
            .map_err(store_error)?
            .flatten();
        let oldest_pending: Option<Timestamp> = outbox::Entity::find()
            .select_only()
            .column_as(outbox::Column::CreatedAt.min(), "oldest")
            .filter(outbox::Column::State.eq(OutboxState::Pending.as_str()))
            .into_tuple::<Option<Timestamp>>()
            .one(connection)
            .await
            .map_err(store_error)?
            .flatten();
        let mut status = OutboxStatus {
            oldest_due,
            oldest_pending,
            ..OutboxStatus::default()
        };
        for (state, count) in counts {
            let count = u64::try_from(count).unwrap_or(0);
            match OutboxState::parse(&state) {
                Some(OutboxState::Pending) => status.pending = count,
                Some(OutboxState::Sent) => status.sent = count,
                Some(OutboxState::Dead) => status.dead = count,
                None => return Err(integrity(format_args!("an outbox state {state:?}"))),
            }
        }
        Ok(status)
    }

    async fn retry(&self, now: Timestamp, dead: bool) -> Result<u64, StoreError> {
        let now = db_time(now);
        let _gate = self.database().write_gate().await;
        let connection = self.database().connection();
        // Waiting, and held by no live claim: due now.
        let waiting = outbox::Entity::update_many()
            .col_expr(outbox::Column::DueAt, Expr::value(now))
            .col_expr(outbox::Column::ClaimId, Expr::value(Option::<Uuid>::None))
            .filter(outbox::Column::State.eq(OutboxState::Pending.as_str()))
            .filter(
                sea_orm::Condition::any()
                    .add(outbox::Column::ClaimId.is_null())
                    .add(outbox::Column::DueAt.lte(now)),
            )
            .exec(connection)
            .await
            .map_err(store_error)?
            .rows_affected;
        if !dead {
            return Ok(waiting);
        }
        let revived = outbox::Entity::update_many()
            .col_expr(
                outbox::Column::State,
                Expr::value(OutboxState::Pending.as_str()),
            )
            .col_expr(outbox::Column::Attempts, Expr::value(0))
            .col_expr(outbox::Column::DueAt, Expr::value(now))
            .filter(outbox::Column::State.eq(OutboxState::Dead.as_str()))
            .exec(connection)
            .await
            .map_err(store_error)?
            .rows_affected;
        Ok(waiting + revived)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use pp_crypto::AesGcmSealer;
    use pp_domain::live::NotificationData;
    use pp_domain::{Currency, Email, ItemId, Money};
    use sea_orm::ActiveValue;

    use super::*;

    fn sealed_len(mail: OutgoingMail) -> usize {
        let sealer = AesGcmSealer::new(&[7; 32]);
        let row = mail_row(&sealer, &NewOutboxMail::new(mail, chrono::Utc::now())).unwrap();
        match row.sealed {
            ActiveValue::Set(Some(sealed)) => sealed.len(),
            other => panic!("{other:?}"),
        }
    }

    fn notice(name: &str, title: &str, news: NotificationData) -> OutgoingMail {
        OutgoingMail::Notice(NoticeMail {
            to: Email::parse("bea@example.com").unwrap(),
            name: name.into(),
            item_title: title.into(),
            currency: Currency::default(),
            notice: news,
        })
    }

    #[test]
    fn every_notice_seals_to_one_length_whatever_it_says() {
        let item = ItemId::generate();
        let money = |minor| Money::new(minor).unwrap();
        let outbid = NotificationData::Outbid {
            item,
            current_price: money(1),
            minimum_next_bid: 2,
        };
        let exhausted = NotificationData::Exhausted {
            item,
            effective: Money::MAX,
            current_price: Money::MAX,
            minimum_next_bid: 1_000_000_000_000,
        };
        let short = sealed_len(notice("B", "T", outbid));
        // The longest a notice can be: a name of 100 and a title of 200
        // four-byte characters, quotes escaped.
        let longest = sealed_len(notice(&"\"".repeat(100), &"🦀".repeat(200), exhausted));
        assert_eq!(short, longest);
        // A link mail is padded to blocks only.
        let link = OutgoingMail::Link(LinkMail {
            to: Email::parse("bea@example.com").unwrap(),
            name: "Bea".into(),
            purpose: OneTimePurpose::VerifyEmail,
            link: "https://auction.example/verify-email?token=x".into(),
            expires_at: chrono::Utc::now(),
        });
        assert!(sealed_len(link) < short);
    }
}
