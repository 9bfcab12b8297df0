//! The outbox: every e-mail is stored with the change that causes it (in the
//! same transaction) and delivered afterwards by a worker, so a crash, a
//! restart or an outage of the mail server delays mail and loses none.
//!
//! A worker claims due messages for a lease ([`OUTBOX_LEASE`]); a claim its
//! worker never settles (a crash) lapses and the message is due again.
//! Failures are retried with exponential backoff and jitter
//! ([`RetryPolicy`]) until the attempts run out, then the message is
//! [`OutboxState::Dead`], its last error kept, until an operator retries it.
//! Delivery is at least once; a message keeps one `Message-ID` (from its
//! [`OutboxId`]) across retries, so a receiving server can tell a repeat.
//!
//! [`OutboxWorker`] is one round of that work (claim, deliver, settle),
//! written against the [`OutboxStore`] and [`MailDelivery`] ports; the
//! runtime loop that calls it lives with the binary.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use thiserror::Error;
use uuid::Uuid;

use crate::auth::tokens::LinkMail;
use crate::item::Timestamp;
use crate::live::NotificationData;
use crate::notifications::NoticeMail;
use crate::ports::{Clock, StoreError};

/// How long a worker's claim on a message lasts: long enough for one
/// delivery attempt (the SMTP transport times out well within it), short
/// enough that a crashed worker's messages go out soon after.
pub const OUTBOX_LEASE: Duration = Duration::seconds(60);

/// Identifies one stored message; its `Message-ID` derives from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutboxId(Uuid);

impl OutboxId {
    /// A new time-ordered (UUIDv7) id.
    #[must_use]
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an id read back from storage.
    #[must_use]
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    #[must_use]
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for OutboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a message says, as the domain decides it; its wording and layout
/// are the mail adapter's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutgoingMail {
    /// A link to act on: verify an address, reset a password.
    Link(LinkMail),
    /// News of a bid: outbid, exhausted, won.
    Notice(NoticeMail),
}

impl OutgoingMail {
    /// When what it says stops being true (a link's expiry), if ever.
    #[must_use]
    pub fn expires_at(&self) -> Option<Timestamp> {
        match self {
            OutgoingMail::Link(link) => Some(link.expires_at),
            // Stale news is still true (and a won notice never stales).
            OutgoingMail::Notice(_) => None,
        }
    }

    /// The link mail it is, for tests to change or read.
    #[cfg(test)]
    pub(crate) fn as_link_mut(&mut self) -> Option<&mut LinkMail> {
        match self {
            OutgoingMail::Link(link) => Some(link),
            OutgoingMail::Notice(_) => None,
        }
    }

    /// How soon it should go out, ahead of older messages: a backlog of
    /// bid news (a busy auction mails every plain bid overtaken) must not
    /// hold back a link someone is waiting for, or a winner's notice.
    #[must_use]
    pub fn urgency(&self) -> MailUrgency {
        match self {
            OutgoingMail::Link(_) => MailUrgency::Awaited,
            // Won and lost notices are written when an item closes, which
            // the row's time tells already; which one it is stays sealed.
            OutgoingMail::Notice(notice) => match notice.notice {
                NotificationData::Won { .. } | NotificationData::Lost { .. } => {
                    MailUrgency::Closing
                }
                NotificationData::Outbid { .. }
                | NotificationData::AutoRaised { .. }
                | NotificationData::Exhausted { .. } => MailUrgency::News,
            },
        }
    }

    /// A short, secret-free name of the kind of message, for logs, metrics
    /// and the store's plain columns.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            OutgoingMail::Link(link) => link.purpose.as_str(),
            // One name for every notice: which one it is (an `exhausted`
            // one tells that a bid was poisoned) stays sealed.
            OutgoingMail::Notice(_) => "notice",
        }
    }
}

/// The order in which due messages are delivered: every message of an
/// urgency before any of the next, oldest first within one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MailUrgency {
    /// Someone is waiting for it: a verification or reset link.
    Awaited,
    /// An item's outcome: won or lost.
    Closing,
    /// News of bidding: outbid, auto-raised, exhausted.
    News,
}

impl MailUrgency {
    /// Its rank as stored: lower goes first.
    #[must_use]
    pub const fn rank(self) -> i16 {
        match self {
            MailUrgency::Awaited => 0,
            MailUrgency::Closing => 1,
            MailUrgency::News => 2,
        }
    }
}

/// A message to store with the change that causes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboxMail {
    /// Its id.
    pub id: OutboxId,
    /// What it says.
    pub mail: OutgoingMail,
    /// When it was written (and first due).
    pub created_at: Timestamp,
    /// The id of the request that caused it, so its delivery's log lines
    /// can be found with the request's.
    pub request_id: Option<String>,
    /// The W3C `traceparent` of the request that caused it: its delivery
    /// is traced as part of that request's trace.
    pub trace_parent: Option<String>,
}

impl NewOutboxMail {
    /// `mail`, due now.
    #[must_use]
    pub fn new(mail: OutgoingMail, now: Timestamp) -> Self {
        Self {
            id: OutboxId::generate(),
            mail,
            created_at: now,
            request_id: None,
            trace_parent: None,
        }
    }

    /// The same, caused by the request `context` describes.
    #[must_use]
    pub fn caused_by(self, context: &crate::auth::tokens::RequestContext) -> Self {
        Self {
            request_id: context.request_id.clone(),
            trace_parent: context.trace_parent.clone(),
            ..self
        }
    }
}

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxState {
    /// Waiting for its due time, or claimed by a worker.
    Pending,
    /// Delivered.
    Sent,
    /// Failed every attempt; kept until an operator retries it.
    Dead,
}

impl OutboxState {
    /// Every state, in the order reports list them.
    pub const ALL: [OutboxState; 3] = [OutboxState::Pending, OutboxState::Sent, OutboxState::Dead];

    /// The stored (and reported) name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Dead => "dead",
        }
    }

    /// The state named `name`, if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// Identifies one worker's claim on the messages it took together, so only
/// that worker settles them (a lapsed claim taken over by another worker is
/// no longer its to settle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClaimId(Uuid);

impl ClaimId {
    /// A new claim.
    #[must_use]
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Wraps a claim read back from storage.
    #[must_use]
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    #[must_use]
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

/// A message a worker claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedMail {
    /// Its id.
    pub id: OutboxId,
    /// Which attempt this is, from 1 (claims that lapsed count too: a
    /// message that crashes its worker every time is not retried forever).
    pub attempt: u32,
    /// What it says.
    pub mail: OutgoingMail,
    /// The request that caused it, if one did.
    pub request_id: Option<String>,
    /// That request's W3C `traceparent`, when it was traced.
    pub trace_parent: Option<String>,
}

/// What became of a claimed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Delivered at this time.
    Sent {
        /// When.
        at: Timestamp,
    },
    /// Failed; due again at `due_at`.
    Retry {
        /// When it is next tried.
        due_at: Timestamp,
        /// The failure, secret-free.
        error: String,
    },
    /// Failed for good (out of attempts, or refused permanently).
    Dead {
        /// When it gave up.
        at: Timestamp,
        /// The failure, secret-free.
        error: String,
    },
}

/// The outbox's counts, for `poison-pill outbox status` and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Messages waiting (due or not, claimed or not).
    pub pending: u64,
    /// Messages delivered and not yet purged.
    pub sent: u64,
    /// Messages that failed every attempt.
    pub dead: u64,
    /// The due time of the longest-waiting message that is due now.
    pub oldest_due: Option<Timestamp>,
    /// When the oldest waiting message was written: during an outage its
    /// due time keeps moving, this does not.
    pub oldest_pending: Option<Timestamp>,
}

/// Where messages wait: the table written with the change that causes them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` messages due at `now`, oldest due first, for
    /// `claim` until `now + lease`, counting the attempt. Messages another
    /// worker holds are passed by, not waited for.
    ///
    /// # Errors
    /// When the store fails.
    async fn claim_due(
        &self,
        claim: ClaimId,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>, StoreError>;

    /// Records what became of `id`, if `claim` still holds it; `false` when
    /// the claim had lapsed and another worker took the message.
    ///
    /// # Errors
    /// When the store fails.
    async fn settle(
        &self,
        id: OutboxId,
        claim: ClaimId,
        settlement: Settlement,
    ) -> Result<bool, StoreError>;

    /// Gives back the messages `claim` holds, due at `now` and the attempt
    /// not counted (a worker shutting down before it tried them).
    ///
    /// # Errors
    /// When the store fails.
    async fn release(&self, claim: ClaimId, now: Timestamp) -> Result<u64, StoreError>;

    /// The counts by state and the oldest due message.
    ///
    /// # Errors
    /// When the store fails.
    async fn status(&self, now: Timestamp) -> Result<OutboxStatus, StoreError>;

    /// Makes every waiting message that no worker holds due at `now`, and
    /// with `dead`, every dead one too, with its attempts counted afresh.
    /// Returns how many.
    ///
    /// # Errors
    /// When the store fails.
    async fn retry(&self, now: Timestamp, dead: bool) -> Result<u64, StoreError>;
}

/// Why a delivery failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DeliveryError {
    /// Worth trying again: the server is down, busy, or said "try later".
    #[error("{0}")]
    Transient(String),
    /// Never worth trying again: the server refused the message for good
    /// (an SMTP 5xx), or it cannot be written.
    #[error("{0}")]
    Permanent(String),
}

/// Hands a message to the mail system.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MailDelivery: Send + Sync {
    /// Delivers `message` (its `Message-ID` derives from its id).
    ///
    /// # Errors
    /// [`DeliveryError`], secret-free.
    async fn deliver(&self, message: &ClaimedMail) -> Result<(), DeliveryError>;
}

/// When a failed message is tried again: about [`RetryPolicy::first`]
/// after the first failure, doubling, never more than
/// [`RetryPolicy::longest`] apart, and dead after `max_attempts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a message is dead (`MAIL_MAX_ATTEMPTS`), at least 1.
    pub max_attempts: u32,
    /// The delay after the first failure, before jitter.
    pub first: Duration,
    /// The longest delay, jitter included.
    pub longest: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            first: Duration::seconds(1),
            longest: Duration::minutes(5),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (from 1), or `None`
    /// when that was the last. Jittered by ±20 % by a hash of `id` and
    /// `attempt`: messages that failed together (a mail server outage) come
    /// back spread out, and a message's schedule is reproducible.
    #[must_use]
    pub fn delay_after(&self, id: OutboxId, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let doublings = attempt.saturating_sub(1).min(30);
        let longest_ms = self.longest.num_milliseconds();
        // Capped before the jitter, so delays at the cap still spread.
        let base_ms = self
            .first
            .num_milliseconds()
            .saturating_mul(1_i64 << doublings)
            .min(longest_ms);
        // 0.8 to 1.2 of the base, in thousandths.
        let factor = 800 + i64::try_from(jitter_thousandths(id, attempt) * 400 / 1000).unwrap_or(0);
        let jittered_ms = base_ms.saturating_mul(factor) / 1000;
        Some(Duration::milliseconds(jittered_ms.min(longest_ms)))
    }
}

/// A number from 0 to 999, spread evenly over ids and attempts.
fn jitter_thousandths(id: OutboxId, attempt: u32) -> u64 {
    // SplitMix64's finaliser over the id's random low bits and the attempt.
    let low = id.as_uuid().as_u64_pair().1;
    let mut z = low ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z % 1000
}

/// What one round of delivery did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryRound {
    /// Messages claimed.
    pub claimed: usize,
    /// Delivered.
    pub sent: usize,
    /// Failed, to be tried again.
    pub retried: usize,
    /// Failed for good.
    pub dead: usize,
    /// Settled by another worker meanwhile (this one's claim had lapsed).
    pub lost_claims: usize,
    /// Each failed delivery, for the log.
    pub failures: Vec<FailedDelivery>,
}

/// One failed delivery, secret-free.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedDelivery {
    /// The message.
    pub id: OutboxId,
    /// Its kind ([`OutgoingMail::kind`]).
    pub kind: &'static str,
    /// Which attempt failed.
    pub attempt: u32,
    /// The request that caused the message, if one did.
    pub request_id: Option<String>,
    /// Why.
    pub error: String,
    /// When it is tried again; `None` when it is dead.
    pub retry_at: Option<Timestamp>,
}

/// Delivers due messages: one round per call.
#[derive(Clone)]
pub struct OutboxWorker {
    store: Arc<dyn OutboxStore>,
    delivery: Arc<dyn MailDelivery>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    claim: ClaimId,
}

impl std::fmt::Debug for OutboxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWorker")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl OutboxWorker {
    /// A worker with its own claim id (one per process and worker).
    #[must_use]
    pub fn new(
        store: Arc<dyn OutboxStore>,
        delivery: Arc<dyn MailDelivery>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            store,
            delivery,
            clock,
            policy,
            claim: ClaimId::generate(),
        }
    }

    /// Claims up to `limit` due messages, delivers each and records the
    /// outcome: sent, due again after the policy's delay, or dead.
    ///
    /// # Errors
    /// When the store fails (a failed delivery is an outcome, not an error).
    pub async fn deliver_due(&self, limit: u32) -> Result<DeliveryRound, StoreError> {
        let claimed = self
            .store
            .claim_due(self.claim, self.clock.now(), OUTBOX_LEASE, limit)
            .await?;
        let mut round = DeliveryRound {
            claimed: claimed.len(),
            ..DeliveryRound::default()
        };
        for message in claimed {
            // Claimed this often without an outcome: its deliveries kill or
            // hang their worker. Not tried again.
            let outcome = if message.attempt > self.policy.max_attempts {
                Err(DeliveryError::Permanent(format!(
                    "claimed {} times without an outcome",
                    message.attempt - 1
                )))
            } else if message
                .mail
                .expires_at()
                .is_some_and(|expiry| expiry <= self.clock.now())
            {
                // A link that no longer works is not worth a mail.
                Err(DeliveryError::Permanent(
                    "its link expired before it could be delivered".into(),
                ))
            } else {
                self.delivery.deliver(&message).await
            };
            let now = self.clock.now();
            let settlement = match outcome {
                Ok(()) => {
                    round.sent += 1;
                    Settlement::Sent { at: now }
                }
                Err(DeliveryError::Transient(error)) => {
                    match self.policy.delay_after(message.id, message.attempt) {
                        Some(delay) => {
                            round.retried += 1;
                            Settlement::Retry {
                                due_at: now + delay,
                                error,
                            }
                        }
                        None => {
                            round.dead += 1;
                            Settlement::Dead { at: now, error }
                        }
                    }
                }
                Err(DeliveryError::Permanent(error)) => {
                    round.dead += 1;
                    Settlement::Dead { at: now, error }
                }
            };
            if let Some((error, retry_at)) = match &settlement {
                Settlement::Sent { .. } => None,
                Settlement::Retry { due_at, error } => Some((error, Some(*due_at))),
                Settlement::Dead { error, .. } => Some((error, None)),
            } {
                round.failures.push(FailedDelivery {
                    id: message.id,
                    kind: message.mail.kind(),
                    attempt: message.attempt,
                    request_id: message.request_id.clone(),
                    error: error.clone(),
                    retry_at,
                });
            }
            if !self
                .store
                .settle(message.id, self.claim, settlement)
                .await?
            {
                round.lost_claims += 1;
            }
        }
        Ok(round)
    }

    /// Gives back what this worker holds (on shutdown).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn release(&self) -> Result<u64, StoreError> {
        self.store.release(self.claim, self.clock.now()).await
    }
}

#[cfg(test)]
mod tests;
