//! # Poison Pill's domain
//!
//! The auction's rules with no I/O: amounts ([`Money`]), identifiers, e-mail
//! addresses, items and bids, the poison-bid engine ([`engine`]) that
//! implements `docs/spec/auction-rules.md`, the ports ([`ports`]) through
//! which the outside world is reached, and the use-case services
//! ([`service`]) written against those ports.
//!
//! Nothing here depends on a database, Redis, HTTP or an async runtime, so
//! every rule is tested in plain unit and property tests; mockall mocks of the
//! ports are available to other crates with the `mocks` feature.

pub mod auth;
pub mod bid;
pub mod email;
pub mod engine;
pub mod ids;
pub mod item;
pub mod ledger;
pub mod live;
pub mod money;
pub mod notifications;
pub mod outbox;
pub mod photos;
pub mod ports;
pub mod retention;
pub mod search;
pub mod service;
pub mod soft_close;
pub mod user;
pub mod validation;

pub use bid::{Bid, BidCursor, BidOffer, BidState, BidView, Poison};
pub use email::{Email, InvalidEmail};
pub use engine::{BidRejection, Leader, Standing};
pub use ids::{BidId, ItemId, PhotoId, SessionId, TokenId, UserId};
pub use item::{
    CloseOutcome, Item, ItemCursor, ItemDraft, ItemEdit, ItemEditDraft, ItemFilter, ItemSort,
    ItemStatus, ListedItem, NewItem, StatusFilter, Timestamp,
};
pub use money::{Currency, Money};
pub use search::ItemSearch;
pub use user::{
    Credentials, DisplayName, NewUser, PasswordHash, Role, User, UserChanges, UserCursor,
};
