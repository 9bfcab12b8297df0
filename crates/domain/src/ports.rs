//! Ports: what the domain needs from the outside world, as contracts.
//!
//! Adapters implement these traits (`pp-store-sql`, `pp-crypto`, …); the
//! services in [`crate::service`] use nothing else. Each method documents
//! which error variant it must return for which situation, so that every
//! adapter behaves alike and the HTTP layer can map errors without knowing
//! which adapter is wired.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;

use crate::auth::lockout::{FailedAttempt, LockoutPolicy};
use crate::auth::ports::NewLink;
use crate::auth::tokens::TokenDigest;
use crate::bid::{Bid, BidCursor};
use crate::email::Email;
use crate::engine::{
    self, BidCommand, BidRejection, CancelRejection, CloseRejection, EditRejection, Placement,
    Standing,
};
use crate::ids::{ItemId, SessionId, UserId};
use crate::item::{
    CloseOutcome, Item, ItemCursor, ItemEdit, ItemFilter, ItemSort, ListedItem, NewItem,
    PublicStanding, Timestamp,
};
use crate::live::{ItemEvent, Notification, PricePoint};
use crate::notifications::{NotificationCursor, StoredNotification};
use crate::user::{Credentials, NewUser, PasswordHash, User, UserChanges, UserCursor};

/// A failure of the storage itself, which no caller can fix by changing its request.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store could not take a lock or a connection in time, kept
    /// hitting conflicts, or cannot be reached; the request may be retried.
    #[error("the store is busy, try again")]
    Busy,
    /// Stored data failed an integrity check (a sealed value that does not
    /// open, a standing that contradicts itself).
    #[error("stored data failed an integrity check: {0}")]
    Integrity(String),
    /// Anything else; the chain is logged, never shown to clients.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Why a bid was not placed.
#[derive(Debug, Error)]
pub enum PlaceBidError {
    /// No item has that id.
    #[error("item not found")]
    ItemNotFound,
    /// The bidder's account does not exist or is deactivated.
    #[error("bidder not found")]
    BidderNotFound,
    /// The rules refused the bid; the bidder keeps their one bid.
    #[error(transparent)]
    Rejected(#[from] BidRejection),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an item was not cancelled.
#[derive(Debug, Error)]
pub enum CancelItemError {
    /// No item has that id.
    #[error("item not found")]
    ItemNotFound,
    /// The rules refused the cancellation.
    #[error(transparent)]
    Rejected(#[from] CancelRejection),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an item was not edited.
#[derive(Debug, Error)]
pub enum EditItemError {
    /// No item has that id.
    #[error("item not found")]
    ItemNotFound,
    /// The rules refused the edit.
    #[error(transparent)]
    Rejected(#[from] EditRejection),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an account was not created.
#[derive(Debug, Error)]
pub enum CreateUserError {
    /// Another account has this e-mail address.
    #[error("the e-mail address is taken")]
    EmailTaken,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The source of `now`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// The row a sealed value belongs to. Sealers bind every ciphertext to it
/// (as AEAD associated data), so a ciphertext moved to another row fails to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealBinding {
    /// A bid's amount and poison: bound to its item and bidder (unique together).
    Bid {
        /// The item bid on.
        item: ItemId,
        /// The bidder.
        bidder: UserId,
    },
    /// An item's sealed standing (leader, ceiling, step).
    Standing {
        /// The item.
        item: ItemId,
    },
    /// The price a bid left, kept for replaying live events: bound to the
    /// bid's place in its item's sequence.
    PriceAfter {
        /// The item.
        item: ItemId,
        /// The bid's arrival position.
        seq: u64,
    },
    /// A stored notification (its figures may include a poisoned bid's own
    /// budget): bound to its row, its user and its item, so a row moved to
    /// another user fails to open.
    Notification {
        /// The row.
        id: uuid::Uuid,
        /// Whose.
        user: UserId,
        /// About which item.
        item: ItemId,
    },
    /// A stored e-mail (its recipient, and the secret link it may carry):
    /// bound to its outbox row.
    OutboxMail {
        /// The row.
        id: crate::outbox::OutboxId,
    },
    /// An account's TOTP secret: bound to its account, so a secret copied
    /// to another account's row fails to open.
    TotpSecret {
        /// The account.
        user: UserId,
    },
}

impl SealBinding {
    /// The bytes a sealer authenticates alongside the ciphertext. Versioned and
    /// tagged by kind so a bid's ciphertext cannot pass for a standing's.
    #[must_use]
    pub fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        match self {
            SealBinding::Bid { item, bidder } => {
                aad.extend_from_slice(b"poison-pill/bid/v1");
                aad.extend_from_slice(item.as_uuid().as_bytes());
                aad.extend_from_slice(bidder.as_uuid().as_bytes());
            }
            SealBinding::Standing { item } => {
                aad.extend_from_slice(b"poison-pill/standing/v1");
                aad.extend_from_slice(item.as_uuid().as_bytes());
            }
            SealBinding::PriceAfter { item, seq } => {
                aad.extend_from_slice(b"poison-pill/price-after/v1");
                aad.extend_from_slice(item.as_uuid().as_bytes());
                aad.extend_from_slice(&seq.to_be_bytes());
            }
            SealBinding::Notification { id, user, item } => {
                aad.extend_from_slice(b"poison-pill/notification/v1");
                aad.extend_from_slice(id.as_bytes());
                aad.extend_from_slice(user.as_uuid().as_bytes());
                aad.extend_from_slice(item.as_uuid().as_bytes());
            }
            SealBinding::OutboxMail { id } => {
                aad.extend_from_slice(b"poison-pill/outbox-mail/v1");
                aad.extend_from_slice(id.as_uuid().as_bytes());
            }
            SealBinding::TotpSecret { user } => {
                aad.extend_from_slice(b"poison-pill/totp-secret/v1");
                aad.extend_from_slice(user.as_uuid().as_bytes());
            }
        }
        aad
    }
}

/// Why a sealed value did not open.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SealError {
    /// Sealed under a key this sealer does not hold.
    #[error("sealed with an unknown key")]
    UnknownKey,
    /// Too short or otherwise not a sealed value.
    #[error("not a sealed value")]
    Malformed,
    /// Authentication failed: tampered with, or moved to another row.
    #[error("sealed value failed authentication")]
    Forged,
    /// Encryption itself failed (input beyond the cipher's limits).
    #[error("sealing failed")]
    SealFailed,
}

/// Authenticated encryption of values at rest (bids, standings).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Sealer: Send + Sync {
    /// Encrypts `plaintext` bound to `binding`. Two seals of the same value differ.
    ///
    /// # Errors
    /// [`SealError::SealFailed`] only when the input exceeds the cipher's limits.
    fn seal(&self, plaintext: &[u8], binding: &SealBinding) -> Result<Vec<u8>, SealError>;

    /// Decrypts a value sealed for `binding`.
    ///
    /// # Errors
    /// [`SealError::UnknownKey`] when sealed under a key not held,
    /// [`SealError::Malformed`] when it is not a sealed value, and
    /// [`SealError::Forged`] when it was altered or sealed for another binding.
    fn open(&self, sealed: &[u8], binding: &SealBinding) -> Result<Vec<u8>, SealError>;
}

/// What to do once an accepted bid is committed (publish its live events).
pub type CommitHook = Arc<dyn Fn(&AcceptedBid) + Send + Sync>;

/// A bid to decide under its item's lock: the command, the clock to read
/// `now` from once the lock is held, and what to run after its commit.
#[derive(Clone)]
pub struct BidDecision {
    command: BidCommand,
    clock: Arc<dyn Clock>,
    on_commit: Option<CommitHook>,
}

impl BidDecision {
    /// Pairs a command with the clock.
    #[must_use]
    pub fn new(command: BidCommand, clock: Arc<dyn Clock>) -> Self {
        BidDecision {
            command,
            clock,
            on_commit: None,
        }
    }

    /// Runs `hook` with the accepted bid once its transaction committed. The
    /// store runs it, not the caller: the store knows the commit order, and
    /// it still runs when the caller stopped waiting for its answer.
    #[must_use]
    pub fn on_commit(mut self, hook: CommitHook) -> Self {
        self.on_commit = Some(hook);
        self
    }

    /// Tells the decision its bid was committed; see [`BidDecision::on_commit`].
    pub fn committed(&self, accepted: &AcceptedBid) {
        if let Some(hook) = &self.on_commit {
            hook(accepted);
        }
    }

    /// The bid to place.
    #[must_use]
    pub fn command(&self) -> &BidCommand {
        &self.command
    }

    /// The moment the bid is decided at: read while holding the item's lock
    /// (the store decides with [`engine::decide_in_order`]).
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

impl fmt::Debug for BidDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BidDecision")
            .field("item", &self.command.item)
            .field("bidder", &self.command.bidder)
            .finish_non_exhaustive()
    }
}

/// Closing and cancelling, decided under the item's lock with `now` read there.
#[derive(Clone)]
pub struct LifecycleDecision {
    clock: Arc<dyn Clock>,
}

impl LifecycleDecision {
    /// Uses `clock` for `now`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        LifecycleDecision { clock }
    }

    /// The current time, to find candidates before locking them.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Decides whether a locked item closes now, and how.
    ///
    /// # Errors
    /// [`CloseRejection`] when it is not open or not due.
    pub fn close(&self, item: &Item, standing: &Standing) -> Result<CloseOutcome, CloseRejection> {
        engine::close(item, standing, self.clock.now())
    }

    /// Decides whether a locked item may be cancelled now.
    ///
    /// # Errors
    /// [`CancelRejection`] when it is not open or has bids.
    pub fn cancel(&self, item: &Item, standing: &PublicStanding) -> Result<(), CancelRejection> {
        engine::cancel(item, standing, self.clock.now())
    }

    /// Decides a locked item's edit now: the item as edited.
    ///
    /// # Errors
    /// [`EditRejection`] when it is not open, has bids, or the close would
    /// move earlier.
    pub fn edit(
        &self,
        item: &Item,
        standing: &PublicStanding,
        edit: &ItemEdit,
    ) -> Result<Item, EditRejection> {
        engine::edit(item, standing, edit, self.clock.now())
    }

    /// When a due item that could not be read for the `failures`-th time in
    /// a row is looked at again: one minute after the first failure,
    /// doubling, at most an hour apart. Until then the closer passes it by,
    /// so it never holds up the items due after it, and a fault an operator
    /// repairs (a sealing key put back) is noticed within the hour.
    #[must_use]
    pub fn retry_close_at(&self, failures: u32) -> Timestamp {
        const FIRST: chrono::Duration = chrono::Duration::minutes(1);
        const LONGEST: chrono::Duration = chrono::Duration::hours(1);
        let doublings = failures.saturating_sub(1).min(6);
        let delay = (FIRST * 2_i32.pow(doublings)).min(LONGEST);
        self.clock.now() + delay
    }
}

impl fmt::Debug for LifecycleDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LifecycleDecision").finish_non_exhaustive()
    }
}

/// A bid the store accepted and committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedBid {
    /// The stored bid.
    pub bid: Bid,
    /// The item after the bid.
    pub item: Item,
    /// What the bid did.
    pub placement: Placement,
}

impl AcceptedBid {
    /// The item as the public now sees it.
    #[must_use]
    pub fn listed_item(&self) -> ListedItem {
        ListedItem {
            item: self.item.clone(),
            standing: self.placement.standing.public(),
        }
    }
}

/// An item the closer just closed, with everyone who bid on it (in arrival order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedItem {
    /// The item as closed.
    pub listed: ListedItem,
    /// Its bidders.
    pub bidders: Vec<UserId>,
}

/// A due item the closer could not read, left open and passed by until
/// `retry_at` so that it holds up no other item.
#[derive(Debug)]
pub struct CloseFailure {
    /// The item.
    pub item: ItemId,
    /// Why it could not be closed (an integrity failure, as a rule).
    pub error: StoreError,
    /// Failed attempts in a row, this one included.
    pub failures: u32,
    /// When the closer looks at it again.
    pub retry_at: Timestamp,
}

/// What one round of the closer did.
#[derive(Debug, Default)]
pub struct CloseRound<T> {
    /// The items it closed.
    pub closed: Vec<T>,
    /// The due items it could not read.
    pub failed: Vec<CloseFailure>,
}

impl<T> CloseRound<T> {
    /// How many due items the round took up, closed or not.
    #[must_use]
    pub fn taken(&self) -> usize {
        self.closed.len() + self.failed.len()
    }
}

/// A bid with its item and the item's unsealed standing: enough to tell the
/// bidder where the bid stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidRecord {
    /// The bid.
    pub bid: Bid,
    /// Its item.
    pub item: Item,
    /// The item's standing.
    pub standing: Standing,
}

/// Items and bids.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuctionStore: Send + Sync {
    /// Stores a newly listed item.
    ///
    /// # Errors
    /// [`StoreError::Busy`] when no connection was available in time or the
    /// database cannot be reached, [`StoreError::Unknown`] for any other
    /// failure.
    async fn insert_item(&self, item: NewItem) -> Result<ListedItem, StoreError>;

    /// The item with its public standing, or `None` for an unknown id.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when the stored row is not a valid item,
    /// [`StoreError::Busy`] / [`StoreError::Unknown`] as for every read.
    async fn listed_item(&self, id: ItemId) -> Result<Option<ListedItem>, StoreError>;

    /// Places a bid atomically: takes the item's row lock, unseals its
    /// standing, runs `decision.decide` on it (exactly once per attempt), and
    /// when accepted stores the sealed bid and the item's new standing, all in
    /// one transaction. Conflicting attempts may be retried a bounded number of
    /// times; each retry decides afresh. After the commit, and before
    /// answering, it calls `decision.committed` — for the bids of one item in
    /// `seq` order, and even when the caller has stopped waiting.
    ///
    /// # Errors
    /// [`PlaceBidError::ItemNotFound`] for an unknown item;
    /// [`PlaceBidError::Rejected`] with the decision's rejection, and with
    /// [`BidRejection::AlreadyPlaced`] when a concurrent bid of the same
    /// bidder won the race (unique violation); nothing is stored then.
    /// [`PlaceBidError::Store`] with [`StoreError::Busy`] when the lock was not
    /// obtained in time, retries ran out or the database cannot be reached
    /// (nothing stored), [`StoreError::Unknown`] when the commit's outcome is
    /// unknown (the bid may be stored), [`StoreError::Integrity`] when the
    /// standing does not open.
    async fn place_bid(&self, decision: BidDecision) -> Result<AcceptedBid, PlaceBidError>;

    /// A bidder's bid on an item, with the item's unsealed standing; `None`
    /// when the bidder has no bid there (or the item does not exist).
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when a sealed value does not open.
    async fn bid_record(
        &self,
        item: ItemId,
        bidder: UserId,
    ) -> Result<Option<BidRecord>, StoreError>;

    /// Up to `limit` bids on an item with `seq > after_seq`, unsealed, in
    /// arrival (`seq`) order. Callers must reveal them to nobody before the
    /// item closes.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when a sealed value does not open.
    async fn bids_in_order(
        &self,
        item: ItemId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Bid>, StoreError>;

    /// Up to `limit` items `filter` keeps in `sort`'s order, after `after`
    /// when given (a cursor of the same order), each with its position in
    /// that order (the store knows the rank of a best match).
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when a stored row is not a valid item, or
    /// for [`ItemSort::BestMatch`] without a search.
    async fn list_items(
        &self,
        filter: &ItemFilter,
        sort: ItemSort,
        after: Option<ItemCursor>,
        limit: u32,
    ) -> Result<Vec<(ListedItem, ItemCursor)>, StoreError>;

    /// Up to `limit` of a bidder's bids, newest first, after `after` when
    /// given, each with its item and the item's unsealed standing.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when a sealed value does not open.
    async fn bids_of_bidder(
        &self,
        bidder: UserId,
        after: Option<BidCursor>,
        limit: u32,
    ) -> Result<Vec<BidRecord>, StoreError>;

    /// The public price after each accepted bid with `seq > after_seq`, in
    /// order, at most `limit`: what a live subscriber who fell behind missed.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn price_history(
        &self,
        item: ItemId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<PricePoint>, StoreError>;

    /// Closes up to `limit` items whose close time has come, oldest first,
    /// each under its own row lock taken with SKIP LOCKED semantics (so
    /// concurrent closers on several instances never close one item twice),
    /// deciding each with `decision.close`. Returns the items it closed with
    /// their bidders.
    ///
    /// A due item whose stored state cannot be read (an integrity failure)
    /// must not stop the others: it stays open, its failure is counted on
    /// it, it is passed by until `decision.retry_close_at(failures)`, and it
    /// is reported in [`CloseRound::failed`] while the rest commit.
    ///
    /// # Errors
    /// [`StoreError`] when the store itself fails; items already committed
    /// stay closed.
    async fn close_due_items(
        &self,
        decision: LifecycleDecision,
        limit: u32,
    ) -> Result<CloseRound<ClosedItem>, StoreError>;

    /// Cancels an item under its row lock when `decision.cancel` allows it.
    ///
    /// # Errors
    /// [`CancelItemError::ItemNotFound`] for an unknown id,
    /// [`CancelItemError::Rejected`] with the decision's rejection.
    async fn cancel_item(
        &self,
        id: ItemId,
        decision: LifecycleDecision,
    ) -> Result<ListedItem, CancelItemError>;

    /// Edits an item under its row lock when `decision.edit` allows it, so
    /// an edit and a first bid racing are decided one after the other.
    ///
    /// # Errors
    /// [`EditItemError::ItemNotFound`] for an unknown id,
    /// [`EditItemError::Rejected`] with the decision's rejection.
    async fn edit_item(
        &self,
        id: ItemId,
        edit: ItemEdit,
        decision: LifecycleDecision,
    ) -> Result<ListedItem, EditItemError>;

    /// Up to `limit` of `user`'s stored notifications, newest first, after
    /// `after`. (They are written by `place_bid` and `close_due_items`, in
    /// their transactions.)
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn notifications(
        &self,
        user: UserId,
        after: Option<NotificationCursor>,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, StoreError>;

    /// How many of `user`'s notifications are unread.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn unread_notifications(&self, user: UserId) -> Result<u64, StoreError>;

    /// Marks `user`'s notification `up_to` and every older one of theirs
    /// read at `now`; `false` when `user` has no notification `up_to`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn mark_notifications_read(
        &self,
        user: UserId,
        up_to: uuid::Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

/// Where committed live events go: to every subscriber on every instance.
///
/// Publishing never blocks the caller and is at most once: under overload or
/// while the transport is down an event may be lost. Subscribers notice the
/// gap in item event ids and replay what they missed from the store, so
/// item events are never lost for good; personal notifications may be.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait LiveEvents: Send + Sync {
    /// Publishes a committed item event.
    fn publish(&self, event: ItemEvent);

    /// Sends a notification to its user's live connections.
    fn notify(&self, notification: Notification);
}

/// What [`UserStore::replace_password`] writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordReplacement {
    /// The account.
    pub user: UserId,
    /// Its new password hash.
    pub hash: PasswordHash,
    /// When.
    pub at: Timestamp,
    /// The session that stays (the one changing its password), if any.
    pub keep_session: Option<SessionId>,
    /// The reset link this replacement spends, if it is a reset: spent in
    /// the same transaction, so of two links used at once one wins, and a
    /// failed replacement leaves the link usable.
    pub link: Option<TokenDigest>,
}

/// Why [`UserStore::replace_password`] changed nothing.
#[derive(Debug, Error)]
pub enum ReplacePasswordError {
    /// The reset link was spent (by a concurrent reset, say) or expired.
    #[error("the reset link is spent or expired")]
    LinkSpent,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Accounts.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new account. With `verification`, its link and mail are
    /// stored in the same step: an account is never left without the mail
    /// its registration owes it.
    ///
    /// # Errors
    /// [`CreateUserError::EmailTaken`] when another account has the address
    /// (also when both are created at the same moment).
    async fn insert_user(
        &self,
        user: NewUser,
        verification: Option<NewLink>,
    ) -> Result<User, CreateUserError>;

    /// The account with this id, or `None`.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when the stored row is not a valid account.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The account with this (normalised) address, or `None`.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when the stored row is not a valid account.
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// The account with its password hash and login failures, by address.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when the stored row is not a valid account.
    async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>, StoreError>;

    /// The account with its password hash and login failures, by id.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when the stored row is not a valid account.
    async fn credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>, StoreError>;

    /// Counts a wrong password and, in the same atomic step, sets the lock
    /// the count reaches under `policy` — unless the account is locked at
    /// `now` (by failures checked concurrently), then counts nothing.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] when the account does not exist.
    async fn record_wrong_password(
        &self,
        id: UserId,
        now: Timestamp,
        policy: LockoutPolicy,
    ) -> Result<FailedAttempt, StoreError>;

    /// Clears the failure count and any lock (after a right password).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn clear_login_failures(&self, id: UserId) -> Result<(), StoreError>;

    /// Replaces the stored hash `from` by `to`: the same password under
    /// stronger parameters, so the failure count and any lock stay. False,
    /// storing nothing, when the stored hash is no longer `from`: the
    /// password was replaced while `from` was being checked, and writing
    /// `to` would bring the old password back.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn upgrade_password_hash(
        &self,
        id: UserId,
        from: &PasswordHash,
        to: PasswordHash,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// A reset or a change of the password, in one transaction: the new
    /// hash (failures and lock cleared), the presented reset `link` and
    /// every other live reset link of the account spent, and its sessions
    /// revoked but `keep_session`. All or nothing, so no failure halfway
    /// leaves a session or a link alive beside the new password, or spends
    /// a link without changing the password.
    ///
    /// # Errors
    /// [`ReplacePasswordError::LinkSpent`] when `link` is no longer usable,
    /// [`ReplacePasswordError::Store`] when the store fails; then nothing
    /// changed.
    async fn replace_password(
        &self,
        replacement: PasswordReplacement,
    ) -> Result<(), ReplacePasswordError>;

    /// Marks the address verified; `None` when the account is gone.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn mark_email_verified(
        &self,
        id: UserId,
        at: Timestamp,
    ) -> Result<Option<User>, StoreError>;

    /// Applies `changes`; `None` when the account does not exist.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
        at: Timestamp,
    ) -> Result<Option<User>, StoreError>;

    /// Up to `limit` accounts, newest first, after `after` when given,
    /// only those whose address contains `email` (lower case, taken
    /// literally) when given.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn list_users(
        &self,
        email: Option<String>,
        after: Option<UserCursor>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bid::BidOffer;
    use crate::money::Money;

    fn clock_at(now: Timestamp) -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        Arc::new(clock)
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = chrono::Utc::now();
        let now = SystemClock.now();
        assert!(before <= now && now <= chrono::Utc::now());
    }

    #[test]
    fn a_binding_authenticates_its_kind_and_row_as_every_sealed_value_was_stored() {
        let (item, bidder) = (ItemId::generate(), UserId::generate());
        let (item_bytes, bidder_bytes) = (item.as_uuid(), bidder.as_uuid());
        assert_eq!(
            SealBinding::Bid { item, bidder }.associated_data(),
            [
                b"poison-pill/bid/v1".as_slice(),
                item_bytes.as_bytes(),
                bidder_bytes.as_bytes()
            ]
            .concat()
        );
        assert_eq!(
            SealBinding::Standing { item }.associated_data(),
            [b"poison-pill/standing/v1".as_slice(), item_bytes.as_bytes()].concat()
        );
        assert_eq!(
            SealBinding::PriceAfter { item, seq: 7 }.associated_data(),
            [
                b"poison-pill/price-after/v1".as_slice(),
                item_bytes.as_bytes(),
                &7u64.to_be_bytes()
            ]
            .concat()
        );
        let told = uuid::Uuid::now_v7();
        assert_eq!(
            SealBinding::Notification {
                id: told,
                user: bidder,
                item
            }
            .associated_data(),
            [
                b"poison-pill/notification/v1".as_slice(),
                told.as_bytes(),
                bidder_bytes.as_bytes(),
                item_bytes.as_bytes()
            ]
            .concat()
        );
        let mail = crate::outbox::OutboxId::generate();
        assert_eq!(
            SealBinding::OutboxMail { id: mail }.associated_data(),
            [
                b"poison-pill/outbox-mail/v1".as_slice(),
                mail.as_uuid().as_bytes()
            ]
            .concat()
        );
        assert_eq!(
            SealBinding::TotpSecret { user: bidder }.associated_data(),
            [
                b"poison-pill/totp-secret/v1".as_slice(),
                bidder_bytes.as_bytes()
            ]
            .concat()
        );
    }

    #[test]
    fn a_bid_decision_prints_its_item_and_bidder_but_never_the_offer() {
        let (item, bidder) = (ItemId::generate(), UserId::generate());
        let offer = BidOffer::poisoned(
            Money::new(12_345).unwrap(),
            Money::new(67_890).unwrap(),
            Money::new(55).unwrap(),
        );
        let command = BidCommand {
            item,
            bidder,
            bidder_may_bid: true,
            offer,
        };
        let decision = BidDecision::new(command, clock_at(chrono::Utc::now()));
        assert_eq!(
            format!("{decision:?}"),
            format!("BidDecision {{ item: {item:?}, bidder: {bidder:?}, .. }}")
        );
    }

    #[test]
    fn a_lifecycle_decision_reads_now_from_its_clock_and_prints_nothing_of_it() {
        let now = chrono::Utc::now();
        let decision = LifecycleDecision::new(clock_at(now));
        assert_eq!(decision.now(), now);
        assert_eq!(format!("{decision:?}"), "LifecycleDecision { .. }");
    }

    #[test]
    fn a_close_round_counts_the_items_it_failed_to_read_as_taken_up() {
        let round = CloseRound {
            closed: vec!["lamp", "vase"],
            failed: vec![CloseFailure {
                item: ItemId::generate(),
                error: StoreError::Integrity("the standing does not open".into()),
                failures: 1,
                retry_at: chrono::Utc::now(),
            }],
        };
        assert_eq!(round.taken(), 3);
        assert_eq!(CloseRound::<&str>::default().taken(), 0);
    }

    #[test]
    fn an_unreadable_item_is_retried_after_a_minute_doubling_up_to_an_hour() {
        let now = chrono::Utc::now();
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let decision = LifecycleDecision::new(Arc::new(clock));
        let delays: Vec<i64> = [0, 1, 2, 3, 6, 7, 8, 100, u32::MAX]
            .into_iter()
            .map(|failures| (decision.retry_close_at(failures) - now).num_minutes())
            .collect();
        assert_eq!(delays, [1, 1, 2, 4, 32, 60, 60, 60, 60]);
    }
}
