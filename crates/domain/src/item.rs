//! Items up for auction: their terms, their life cycle and their public standing.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{ItemId, UserId};
use crate::ledger::ChainHash;
use crate::money::{Currency, Money};
use crate::soft_close::{Closing, SoftClose};
use crate::validation::{Collector, ValidationErrors, is_forbidden_in_text};

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// How far ahead an auction may be scheduled to close.
pub const MAX_AUCTION_LENGTH_DAYS: i64 = 365;
/// The raise used when an item is listed without one.
pub const DEFAULT_MIN_INCREMENT: Money = match Money::new(100) {
    Ok(money) => money,
    Err(_) => Money::MIN,
};

/// An item's title: 1 to 200 characters after trimming.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Title(String);

/// An item's description: at most 10,000 characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Description(String);

/// Why a title or description was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TextError {
    /// Nothing but white space.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed, counted in Unicode code points.
    #[error("must be at most {0} characters")]
    TooLong(usize),
    /// A control character (a line break in a title) or a bidirectional
    /// override.
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl Title {
    /// The longest title, in code points after trimming.
    pub const MAX_CHARS: usize = 200;

    /// # Errors
    /// [`TextError`] when empty after trimming, longer than 200 characters,
    /// or holding a control character (a line break included).
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            Err(TextError::Empty)
        } else if trimmed.chars().count() > Self::MAX_CHARS {
            Err(TextError::TooLong(Self::MAX_CHARS))
        } else if trimmed.chars().any(|c| is_forbidden_in_text(c, false)) {
            Err(TextError::ControlCharacter)
        } else {
            Ok(Title(trimmed.to_owned()))
        }
    }

    /// A title read back from storage: non-empty and within the length, as
    /// every title ever accepted was. The rule on characters applies to new
    /// titles only, so an item listed before it stays readable.
    ///
    /// # Errors
    /// [`TextError`] when empty or longer than 200 characters.
    pub fn from_stored(stored: &str) -> Result<Self, TextError> {
        if stored.trim().is_empty() {
            Err(TextError::Empty)
        } else if stored.chars().count() > Self::MAX_CHARS {
            Err(TextError::TooLong(Self::MAX_CHARS))
        } else {
            Ok(Title(stored.to_owned()))
        }
    }

    /// The title.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Description {
    /// The longest description, in code points after trimming.
    pub const MAX_CHARS: usize = 10_000;

    /// # Errors
    /// [`TextError::TooLong`] beyond 10,000 characters,
    /// [`TextError::ControlCharacter`] for a control character other than a
    /// line break or tab.
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > Self::MAX_CHARS {
            Err(TextError::TooLong(Self::MAX_CHARS))
        } else if trimmed.chars().any(|c| is_forbidden_in_text(c, true)) {
            Err(TextError::ControlCharacter)
        } else {
            Ok(Description(trimmed.to_owned()))
        }
    }

    /// A description read back from storage: within the length. As for
    /// [`Title::from_stored`], the rule on characters is for new ones.
    ///
    /// # Errors
    /// [`TextError::TooLong`] beyond 10,000 characters.
    pub fn from_stored(stored: &str) -> Result<Self, TextError> {
        if stored.chars().count() > Self::MAX_CHARS {
            Err(TextError::TooLong(Self::MAX_CHARS))
        } else {
            Ok(Description(stored.to_owned()))
        }
    }

    /// The description.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_conversions {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                $name::parse(&raw)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}
string_conversions!(Title);
string_conversions!(Description);

/// How an auction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// The leader at close won and pays the price.
    Sold {
        /// The winning bidder.
        winner: UserId,
        /// What the winner pays.
        price: Money,
    },
    /// Nobody bid.
    Unsold,
}

impl CloseOutcome {
    /// The winner, if anybody bid.
    #[must_use]
    pub fn winner(&self) -> Option<UserId> {
        match self {
            CloseOutcome::Sold { winner, .. } => Some(*winner),
            CloseOutcome::Unsold => None,
        }
    }

    /// The final price, if anybody bid.
    #[must_use]
    pub fn final_price(&self) -> Option<Money> {
        match self {
            CloseOutcome::Sold { price, .. } => Some(*price),
            CloseOutcome::Unsold => None,
        }
    }
}

/// Where an item is in its life: `open` → `closed` or `open` → `cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemStatus {
    /// Taking bids until `close_at`.
    Open,
    /// Closed at `close_at`, with its outcome.
    Closed(CloseOutcome),
    /// Withdrawn by an admin before anyone bid.
    Cancelled,
}

impl ItemStatus {
    /// The status as the API and the database spell it.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemStatus::Open => "open",
            ItemStatus::Closed(_) => "closed",
            ItemStatus::Cancelled => "cancelled",
        }
    }
}

/// An item: who listed it, on what terms, and where it is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Its id.
    pub id: ItemId,
    /// The account that listed it; it may not bid on it.
    pub seller: UserId,
    /// Its title.
    pub title: Title,
    /// Its description.
    pub description: Description,
    /// The currency of every amount on it.
    pub currency: Currency,
    /// The lowest acceptable first bid.
    pub base_price: Money,
    /// The smallest raise over the current price.
    pub min_increment: Money,
    /// When bidding ends.
    pub close_at: Timestamp,
    /// When it was listed.
    pub created_at: Timestamp,
    /// Open, closed (with outcome) or cancelled.
    pub status: ItemStatus,
    /// The anti-sniping rule, when the item was listed with one.
    pub soft_close: Option<SoftClose>,
    /// How many times a late bid moved `close_at` (0 without soft close).
    pub extensions_used: u32,
    /// The head of its bid ledger; `None` only for an item from before the
    /// ledger not yet chained.
    pub ledger_head: Option<ChainHash>,
}

impl Item {
    /// Moves the close as a bid decided (soft close).
    pub fn extend_to(&mut self, closing: Closing) {
        self.close_at = closing.close_at;
        self.extensions_used = closing.extensions_used;
    }

    /// When it closes now, and how many extensions moved it there.
    #[must_use]
    pub fn closing(&self) -> Closing {
        Closing {
            close_at: self.close_at,
            extensions_used: self.extensions_used,
        }
    }

    /// Whether a bid may still be accepted at `now` (taken under the item's lock).
    #[must_use]
    pub fn accepts_bids_at(&self, now: Timestamp) -> bool {
        self.status == ItemStatus::Open && now < self.close_at
    }
}

/// What the public sees of the bidding on an item: no bidder, no ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PublicStanding {
    /// How many bids were accepted.
    pub bid_count: u64,
    /// The price; `None` until the first bid.
    pub current_price: Option<Money>,
}

impl PublicStanding {
    /// The lowest amount a new bid must offer: the base price with no bids,
    /// else the current price plus the minimum increment.
    ///
    /// It is an `i64` rather than [`Money`] because it may exceed the largest
    /// amount, in which case no bid can be placed any more.
    #[must_use]
    pub fn minimum_next_bid(&self, item: &Item) -> i64 {
        match self.current_price {
            None => item.base_price.minor_units(),
            Some(price) => price.minor_units() + item.min_increment.minor_units(),
        }
    }
}

/// An item together with its public standing: everything anyone may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedItem {
    /// The item.
    pub item: Item,
    /// Its public price and bid count.
    pub standing: PublicStanding,
}

impl ListedItem {
    /// The price a list shows and sorts by: the current price, or the base
    /// price before the first bid (minor units).
    #[must_use]
    pub fn listed_price(&self) -> i64 {
        self.standing
            .current_price
            .unwrap_or(self.item.base_price)
            .minor_units()
    }

    /// See [`PublicStanding::minimum_next_bid`].
    #[must_use]
    pub fn minimum_next_bid(&self) -> i64 {
        self.standing.minimum_next_bid(&self.item)
    }
}

/// Which items a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusFilter {
    /// Still taking bids (or due, awaiting the closer).
    Open,
    /// Closed, with or without a winner.
    Closed,
    /// Cancelled by an admin.
    Cancelled,
}

impl StatusFilter {
    /// The status as stored and as the API spells it.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            StatusFilter::Open => "open",
            StatusFilter::Closed => "closed",
            StatusFilter::Cancelled => "cancelled",
        }
    }
}

/// The order of the item list; ties on the key go by id, in the key's
/// direction, so every order is total and a page boundary never repeats
/// or skips an item that did not change meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ItemSort {
    /// Latest listed first.
    #[default]
    Newest,
    /// Earliest close first (with the close as soft close moved it).
    ClosingSoon,
    /// Lowest listed price first (the current price, or the base price
    /// before the first bid), in minor units whatever the currency.
    PriceAsc,
    /// Highest listed price first.
    PriceDesc,
    /// Best match of a search first (the database's rank): the order of a
    /// search that names no other. A client never names it, and the store
    /// refuses it without a search.
    BestMatch,
}

impl ItemSort {
    /// Every order a client may ask for, as the API spells them.
    pub const ALL: [ItemSort; 4] = [
        ItemSort::Newest,
        ItemSort::ClosingSoon,
        ItemSort::PriceAsc,
        ItemSort::PriceDesc,
    ];

    /// The order as the API spells it.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemSort::Newest => "newest",
            ItemSort::ClosingSoon => "closing_soon",
            ItemSort::PriceAsc => "price_asc",
            ItemSort::PriceDesc => "price_desc",
            ItemSort::BestMatch => "best_match",
        }
    }

    /// The order the API spells `name`, if any ([`ItemSort::BestMatch`] is
    /// not asked for by name).
    #[must_use]
    pub fn parse(name: &str) -> Option<ItemSort> {
        ItemSort::ALL.into_iter().find(|sort| sort.as_str() == name)
    }

    /// Whether the largest key comes first.
    #[must_use]
    pub fn descending(&self) -> bool {
        matches!(
            self,
            ItemSort::Newest | ItemSort::PriceDesc | ItemSort::BestMatch
        )
    }

    /// Where `listed` stands in this order; `relevance` is how well it
    /// matched the search (the database's rank, read by
    /// [`ItemSort::BestMatch`] only).
    #[must_use]
    pub fn cursor_of(&self, listed: &ListedItem, relevance: f64) -> ItemCursor {
        let key = match self {
            ItemSort::Newest => listed.item.created_at.timestamp_micros(),
            ItemSort::ClosingSoon => listed.item.close_at.timestamp_micros(),
            ItemSort::PriceAsc | ItemSort::PriceDesc => listed.listed_price(),
            ItemSort::BestMatch => relevance_key(relevance),
        };
        ItemCursor {
            sort: *self,
            key,
            id: listed.item.id,
        }
    }
}

/// Where a page of the item list continues: after this item, in `sort`'s
/// order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemCursor {
    /// The order the page is in.
    pub sort: ItemSort,
    /// The last item's key in that order: a time in microseconds since the
    /// epoch (newest, closing soon), a price in minor units, or a
    /// relevance's bits (best match, see [`ItemCursor::relevance`]).
    pub key: i64,
    /// The last item's id (ties on the key).
    pub id: ItemId,
}

impl ItemCursor {
    /// The relevance a best-match cursor stands at, if its key is one (a
    /// finite rank of at least 0).
    #[must_use]
    pub fn relevance(&self) -> Option<f64> {
        let relevance = f64::from_bits(self.key as u64);
        (relevance.is_finite() && relevance >= 0.0).then_some(relevance)
    }
}

/// A relevance as a cursor key: its bits, which keep every value exactly
/// (the store compares it with the rank it computes again).
fn relevance_key(relevance: f64) -> i64 {
    relevance.to_bits() as i64
}

/// Which items a list holds: of one status or all, and those a search
/// matches or all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemFilter {
    /// Only items of this status.
    pub status: Option<StatusFilter>,
    /// Only items whose title or description holds every word.
    pub search: Option<crate::search::ItemSearch>,
}

/// The request to list an item, as a client sends it (unvalidated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemDraft {
    /// See [`Title`].
    pub title: String,
    /// See [`Description`].
    pub description: String,
    /// Minor units, `≥ 1`.
    pub base_price: i64,
    /// Minor units, `≥ 1`; 100 when absent.
    pub min_increment: Option<i64>,
    /// ISO 4217 code; `usd` when absent.
    pub currency: Option<String>,
    /// Strictly in the future, at most 365 days ahead.
    pub close_at: Timestamp,
    /// `(window_secs, extend_by_secs, max_extensions)`, see [`SoftClose::new`].
    pub soft_close: Option<(i64, i64, i64)>,
}

/// The request to edit an item before its first bid, as a client sends it
/// (unvalidated); absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemEditDraft {
    /// See [`Title`].
    pub title: Option<String>,
    /// See [`Description`].
    pub description: Option<String>,
    /// In the future, at most 365 days ahead, and not before the item's
    /// current close (checked under its lock, by `engine::edit`).
    pub close_at: Option<Timestamp>,
}

/// A validated edit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemEdit {
    /// The new title.
    pub title: Option<Title>,
    /// The new description.
    pub description: Option<Description>,
    /// The new close, to the microsecond.
    pub close_at: Option<Timestamp>,
}

impl ItemEdit {
    /// Validates a draft at `now` with the limits of a new item, reporting
    /// every broken rule.
    ///
    /// # Errors
    /// [`ValidationErrors`] naming each field that breaks a rule.
    pub fn parse(draft: ItemEditDraft, now: Timestamp) -> Result<Self, ValidationErrors> {
        let mut errors = Collector::default();
        let title = draft
            .title
            .map(|raw| errors.check("title", Title::parse(&raw)));
        let description = draft
            .description
            .map(|raw| errors.check("description", Description::parse(&raw)));
        let close_at = draft.close_at.map(|at| at.trunc_subsecs(6));
        if let Some(close_at) = close_at {
            check_close_at(&mut errors, close_at, now);
        }
        let edit = ItemEdit {
            title: title.flatten(),
            description: description.flatten(),
            close_at,
        };
        errors.finish(Some(edit))
    }

    /// The fields it changes, as the audit log names them.
    #[must_use]
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("title", self.title.is_some()),
            ("description", self.description.is_some()),
            ("close_at", self.close_at.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A close time as stored: strictly after `now`, at most 365 days ahead.
fn check_close_at(errors: &mut Collector, close_at: Timestamp, now: Timestamp) {
    let latest_close = now + Duration::days(MAX_AUCTION_LENGTH_DAYS);
    if close_at <= now {
        errors.add("close_at", "must be in the future");
    } else if close_at > latest_close {
        errors.add(
            "close_at",
            format_args!("must be at most {MAX_AUCTION_LENGTH_DAYS} days ahead"),
        );
    }
}

/// A validated item, ready to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewItem(Item);

impl NewItem {
    /// Validates a draft listed by `seller` at `now`, reporting every broken rule.
    ///
    /// # Errors
    /// [`ValidationErrors`] naming each field that breaks a rule.
    pub fn parse(
        draft: ItemDraft,
        seller: UserId,
        now: Timestamp,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = Collector::default();
        let title = errors.check("title", Title::parse(&draft.title));
        let description = errors.check("description", Description::parse(&draft.description));
        let base_price = errors.check("base_price", Money::new(draft.base_price));
        let min_increment = errors.check(
            "min_increment",
            draft
                .min_increment
                .map_or(Ok(DEFAULT_MIN_INCREMENT), Money::new),
        );
        let currency = errors.check(
            "currency",
            draft
                .currency
                .as_deref()
                .map_or_else(|| Ok(Currency::default()), Currency::parse),
        );
        // Validated as it will be stored (to the microsecond), so a time a
        // fraction of a microsecond ahead is not stored as already past.
        let close_at = draft.close_at.trunc_subsecs(6);
        check_close_at(&mut errors, close_at, now);
        let soft_close = match draft.soft_close {
            None => Some(None),
            Some((window, extend_by, max)) => errors
                .check("soft_close", SoftClose::new(window, extend_by, max))
                .map(Some),
        };
        let id = ItemId::generate();
        let item = (|| {
            Some(Item {
                id,
                seller,
                title: title?,
                description: description?,
                currency: currency?,
                base_price: base_price?,
                min_increment: min_increment?,
                close_at,
                created_at: now,
                status: ItemStatus::Open,
                soft_close: soft_close?,
                extensions_used: 0,
                ledger_head: Some(ChainHash::genesis(id)),
            })
        })();
        errors.finish(item).map(NewItem)
    }

    /// The item as it will be stored.
    #[must_use]
    pub fn item(&self) -> &Item {
        &self.0
    }

    /// Takes the item out.
    #[must_use]
    pub fn into_item(self) -> Item {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(now: Timestamp) -> ItemDraft {
        ItemDraft {
            title: "  A painting ".into(),
            description: "Oil on canvas".into(),
            base_price: 100,
            min_increment: None,
            currency: None,
            close_at: now + Duration::hours(1),
            soft_close: None,
        }
    }

    #[test]
    fn a_valid_draft_gets_defaults_and_a_trimmed_title() {
        let now = Utc::now();
        let item = NewItem::parse(draft(now), UserId::generate(), now)
            .unwrap()
            .into_item();
        assert_eq!(item.title.as_str(), "A painting");
        assert_eq!(item.min_increment, DEFAULT_MIN_INCREMENT);
        assert_eq!(item.currency.as_str(), "usd");
        assert_eq!(item.status, ItemStatus::Open);
        assert_eq!(item.created_at, now);
    }

    #[test]
    fn each_sort_is_spelled_once_and_keys_its_items_by_what_it_orders() {
        for sort in ItemSort::ALL {
            assert_eq!(ItemSort::parse(sort.as_str()), Some(sort));
        }
        assert_eq!(ItemSort::parse("price"), None);
        assert_eq!(ItemSort::default(), ItemSort::Newest);
        let now = Utc::now();
        let item = NewItem::parse(draft(now), UserId::generate(), now)
            .unwrap()
            .into_item();
        let mut listed = ListedItem {
            item: item.clone(),
            standing: PublicStanding::default(),
        };
        let key = |sort: ItemSort, listed: &ListedItem| {
            let cursor = sort.cursor_of(listed, 0.5);
            assert_eq!((cursor.sort, cursor.id), (sort, item.id));
            cursor.key
        };
        assert_eq!(key(ItemSort::Newest, &listed), now.timestamp_micros());
        assert_eq!(
            key(ItemSort::ClosingSoon, &listed),
            item.close_at.timestamp_micros()
        );
        // Before the first bid the base price, after it the current one.
        assert_eq!(key(ItemSort::PriceAsc, &listed), 100);
        listed.standing.current_price = Some(Money::new(140).unwrap());
        assert_eq!(key(ItemSort::PriceDesc, &listed), 140);
        let descending: Vec<_> = ItemSort::ALL.iter().map(ItemSort::descending).collect();
        assert_eq!(descending, [true, false, false, true]);
        assert_eq!(ItemSort::BestMatch.as_str(), "best_match");
        assert_eq!(
            ItemSort::parse("best_match"),
            None,
            "a client never names it"
        );
        assert!(ItemSort::BestMatch.descending());
        let ranked = key(ItemSort::BestMatch, &listed);
        let cursor = ItemCursor {
            sort: ItemSort::BestMatch,
            key: ranked,
            id: item.id,
        };
        assert_eq!(cursor.relevance(), Some(0.5));
        for refused in [f64::NAN, f64::INFINITY, -0.25] {
            let cursor = ItemCursor {
                key: relevance_key(refused),
                ..cursor
            };
            assert_eq!(cursor.relevance(), None, "{refused}");
        }
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let now = Utc::now();
        let bad = ItemDraft {
            title: " ".into(),
            description: "x".repeat(10_001),
            base_price: 0,
            min_increment: Some(-5),
            currency: Some("dollars".into()),
            close_at: now,
            soft_close: Some((0, 60, 1)),
        };
        let errors = NewItem::parse(bad, UserId::generate(), now).unwrap_err();
        let fields: Vec<_> = errors.fields().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "title",
                "description",
                "base_price",
                "min_increment",
                "currency",
                "close_at",
                "soft_close"
            ]
        );
    }

    #[test]
    fn a_soft_close_rule_is_kept_and_an_item_starts_its_ledger_at_h0() {
        let now = Utc::now();
        let listed = NewItem::parse(
            ItemDraft {
                soft_close: Some((300, 120, 5)),
                ..draft(now)
            },
            UserId::generate(),
            now,
        )
        .unwrap()
        .into_item();
        assert_eq!(
            listed.soft_close,
            Some(SoftClose::new(300, 120, 5).unwrap())
        );
        assert_eq!(listed.extensions_used, 0);
        assert_eq!(listed.ledger_head, Some(ChainHash::genesis(listed.id)));
        for (window, extend_by, max) in [(3_601, 60, 1), (60, 0, 1), (60, 60, 101)] {
            let errors = NewItem::parse(
                ItemDraft {
                    soft_close: Some((window, extend_by, max)),
                    ..draft(now)
                },
                UserId::generate(),
                now,
            )
            .unwrap_err();
            assert_eq!(errors.fields()[0].field, "soft_close");
        }
    }

    #[test]
    fn an_edit_is_checked_like_a_new_item_and_names_its_fields() {
        let now = Utc::now();
        let edit = ItemEdit::parse(
            ItemEditDraft {
                title: Some(" A lamp ".into()),
                description: None,
                close_at: Some(now + Duration::hours(2)),
            },
            now,
        )
        .unwrap();
        assert_eq!(edit.title.as_ref().map(Title::as_str), Some("A lamp"));
        assert_eq!(edit.fields(), ["title", "close_at"]);
        assert_eq!(
            ItemEdit::parse(ItemEditDraft::default(), now).unwrap(),
            ItemEdit::default()
        );
        let errors = ItemEdit::parse(
            ItemEditDraft {
                title: Some(String::new()),
                description: Some("x".repeat(10_001)),
                close_at: Some(now + Duration::days(366)),
            },
            now,
        )
        .unwrap_err();
        let fields: Vec<_> = errors.fields().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "description", "close_at"]);
        let past = ItemEditDraft {
            close_at: Some(now),
            ..ItemEditDraft::default()
        };
        assert_eq!(
            ItemEdit::parse(past, now).unwrap_err().fields()[0].field,
            "close_at"
        );
    }

    #[test]
    fn close_at_must_be_within_a_year() {
        let now = Utc::now();
        let mut too_late = draft(now);
        too_late.close_at = now + Duration::days(366);
        assert!(NewItem::parse(too_late, UserId::generate(), now).is_err());
        let mut last_day = draft(now);
        last_day.close_at = now + Duration::days(365);
        assert!(NewItem::parse(last_day, UserId::generate(), now).is_ok());
    }

    #[test]
    fn close_at_is_judged_as_stored_to_the_microsecond() {
        use chrono::Timelike;
        let now = Utc::now().with_nanosecond(1_000_500).unwrap();
        // 300 ns ahead, but stored as 1 ms sharp: before `now`.
        let mut within_a_microsecond = draft(now);
        within_a_microsecond.close_at = now + Duration::nanoseconds(300);
        let errors = NewItem::parse(within_a_microsecond, UserId::generate(), now).unwrap_err();
        assert_eq!(errors.fields()[0].field, "close_at");
        let mut ahead = draft(now);
        ahead.close_at = now + Duration::nanoseconds(1_700);
        let item = NewItem::parse(ahead, UserId::generate(), now).unwrap();
        assert_eq!(item.item().close_at.nanosecond(), 1_002_000);
    }

    #[test]
    fn text_refuses_control_characters_and_bidi_overrides() {
        for bad in [
            "a\0b",
            "a\u{1b}[31mb",
            "a\u{7f}",
            "a\u{202E}b",
            "a\u{2066}b",
            "a\nb",
        ] {
            assert_eq!(
                Title::parse(bad),
                Err(TextError::ControlCharacter),
                "{bad:?}"
            );
        }
        assert!(Description::parse("line one\n\tline two\r\n").is_ok());
        assert_eq!(Description::parse("a\0b"), Err(TextError::ControlCharacter));
        assert!(Title::parse("Ünïcödé, 漢字 and emoji 🎨").is_ok());
        // Listed before the rule: still readable.
        assert_eq!(
            Title::from_stored("Vase\nblue").unwrap().as_str(),
            "Vase\nblue"
        );
        assert!(Description::from_stored("\u{1b}[1mbold").is_ok());
        assert_eq!(Title::from_stored(" "), Err(TextError::Empty));
    }

    #[test]
    fn stored_text_longer_than_ever_accepted_is_refused() {
        assert_eq!(
            Title::from_stored(&"a".repeat(201)),
            Err(TextError::TooLong(200))
        );
        assert_eq!(
            Description::from_stored(&"a".repeat(10_001)),
            Err(TextError::TooLong(10_000))
        );
        let longest = "a".repeat(10_000);
        assert_eq!(
            Description::from_stored(&longest).unwrap().as_str(),
            longest
        );
    }

    #[test]
    fn titles_and_descriptions_travel_as_strings_checked_on_the_way_in() {
        let title: Title = serde_json::from_str(r#""  Lamp ""#).unwrap();
        assert_eq!(serde_json::to_string(&title).unwrap(), r#""Lamp""#);
        let refused = serde_json::from_str::<Title>(r#""a\nb""#).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("must not contain control characters"),
            "{refused}"
        );
        let description: Description = serde_json::from_str(r#""Brass\n""#).unwrap();
        assert_eq!(String::from(description), "Brass");
        assert!(serde_json::from_str::<Description>(r#""a\u0000b""#).is_err());
    }

    #[test]
    fn a_status_filter_spells_each_status_as_the_item_stores_it() {
        let statuses = [
            (ItemStatus::Open, StatusFilter::Open),
            (
                ItemStatus::Closed(CloseOutcome::Unsold),
                StatusFilter::Closed,
            ),
            (ItemStatus::Cancelled, StatusFilter::Cancelled),
        ];
        for (status, filter) in statuses {
            assert_eq!(status.as_str(), filter.as_str());
        }
        assert_eq!(
            statuses.map(|(_, filter)| filter.as_str()),
            ["open", "closed", "cancelled"]
        );
    }

    #[test]
    fn titles_count_code_points_not_bytes() {
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert_eq!(Title::parse(&"é".repeat(201)), Err(TextError::TooLong(200)));
    }

    #[test]
    fn minimum_next_bid_is_base_price_then_price_plus_increment() {
        let now = Utc::now();
        let item = NewItem::parse(draft(now), UserId::generate(), now)
            .unwrap()
            .into_item();
        let empty = PublicStanding::default();
        assert_eq!(empty.minimum_next_bid(&item), 100);
        let priced = PublicStanding {
            bid_count: 1,
            current_price: Money::new(120).ok(),
        };
        assert_eq!(priced.minimum_next_bid(&item), 220);
        let listed = ListedItem {
            item,
            standing: priced,
        };
        assert_eq!(listed.minimum_next_bid(), 220);
    }

    #[test]
    fn bids_are_accepted_strictly_before_close_and_only_while_open() {
        let now = Utc::now();
        let mut item = NewItem::parse(draft(now), UserId::generate(), now)
            .unwrap()
            .into_item();
        assert!(item.accepts_bids_at(now));
        assert!(!item.accepts_bids_at(item.close_at));
        item.status = ItemStatus::Cancelled;
        assert!(!item.accepts_bids_at(now));
    }

    #[test]
    fn close_outcome_accessors() {
        let winner = UserId::generate();
        let sold = CloseOutcome::Sold {
            winner,
            price: Money::MIN,
        };
        assert_eq!(sold.winner(), Some(winner));
        assert_eq!(sold.final_price(), Some(Money::MIN));
        assert_eq!(CloseOutcome::Unsold.winner(), None);
        assert_eq!(CloseOutcome::Unsold.final_price(), None);
        assert_eq!(ItemStatus::Closed(sold).as_str(), "closed");
    }
}
