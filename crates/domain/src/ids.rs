//! Typed identifiers, so an item id can never be passed where a user id is due.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (UUIDv7) id: new rows land at the end of their index.
            #[must_use]
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an id read back from storage or a request.
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

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies an account.
    UserId
);
uuid_id!(
    /// Identifies an item up for auction.
    ItemId
);
uuid_id!(
    /// Identifies a photo of an item.
    PhotoId
);
uuid_id!(
    /// Identifies one bid.
    BidId
);
uuid_id!(
    /// Identifies a session: one login and every refresh token descended from it.
    SessionId
);
uuid_id!(
    /// Identifies one access token (its `jti`).
    TokenId
);

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh id of each kind survives its text form and its UUID.
    macro_rules! assert_round_trips {
        ($($name:ident),*) => {$(
            let id = $name::generate();
            assert_eq!(id.to_string().parse::<$name>().ok(), Some(id));
            assert_eq!(id.to_string(), id.as_uuid().to_string());
            assert_eq!($name::from_uuid(id.as_uuid()), id);
            assert!("not-a-uuid".parse::<$name>().is_err());
        )*};
    }

    #[test]
    fn ids_round_trip_through_their_text_form() {
        assert_round_trips!(UserId, ItemId, BidId, SessionId, TokenId);
    }

    #[test]
    fn generated_ids_are_time_ordered() {
        let first = BidId::generate();
        let second = BidId::generate();
        assert!(first < second);
        assert_eq!(BidId::from_uuid(first.as_uuid()), first);
    }
}
