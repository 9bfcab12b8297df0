//! Opaque pagination cursors: the position, signed (HMAC-SHA256) with the
//! list it belongs to, so a tampered or foreign cursor is a 400, never a 500.

use actix_web::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use pp_domain::auth::tokens::AuditCursor;
use pp_domain::notifications::NotificationCursor;
use pp_domain::{BidCursor, BidId, ItemCursor, ItemId, ItemSort, Timestamp, UserCursor, UserId};
use sha2::Sha256;

use crate::problem::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the tag kept in a cursor (128 bits).
const TAG_LEN: usize = 16;

/// Signs and checks cursors.
#[derive(Clone)]
pub struct CursorCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(..)")
    }
}

fn invalid() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
        "the cursor is not one this list handed out",
    )
}

impl CursorCodec {
    /// A codec keyed by a value derived from `secret` (the JWT secret), so
    /// the cursor key is never the signing key itself.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let mut key = [0u8; 32];
        if let Ok(mut mac) = HmacSha256::new_from_slice(secret) {
            mac.update(b"poison-pill/cursor-key/v1");
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        CursorCodec { key }
    }

    fn mac(&self, list: &str, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("any key length works"));
        mac.update(list.as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }

    /// `payload` as a cursor of `list`.
    #[must_use]
    pub fn encode(&self, list: &str, payload: &str) -> String {
        let tag = self.mac(list, payload.as_bytes()).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN])
        )
    }

    /// The payload of a cursor of `list`.
    ///
    /// # Errors
    /// 400 `invalid_cursor` for anything this codec did not sign for `list`.
    pub fn decode(&self, list: &str, cursor: &str) -> Result<String, ApiError> {
        let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        if tag.len() != TAG_LEN {
            return Err(invalid());
        }
        self.mac(list, &payload)
            .verify_truncated_left(&tag)
            .map_err(|_| invalid())?;
        String::from_utf8(payload).map_err(|_| invalid())
    }

    /// A `(time, id)` position in `list`.
    fn encode_position(&self, list: &str, at: Timestamp, id: impl std::fmt::Display) -> String {
        self.encode(list, &format!("{}/{id}", at.timestamp_micros()))
    }

    /// The `(time, id)` position of a cursor of `list`.
    fn decode_position<Id: std::str::FromStr>(
        &self,
        list: &str,
        cursor: &str,
    ) -> Result<(Timestamp, Id), ApiError> {
        let payload = self.decode(list, cursor)?;
        let (micros, id) = payload.split_once('/').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        Ok((
            Timestamp::from_timestamp_micros(micros).ok_or_else(invalid)?,
            id.parse::<Id>().map_err(|_| invalid())?,
        ))
    }

    /// A cursor into the account list.
    #[must_use]
    pub fn encode_user(&self, cursor: UserCursor) -> String {
        self.encode_position("users", cursor.created_at, cursor.id)
    }

    /// The position in the account list.
    ///
    /// # Errors
    /// 400 `invalid_cursor`.
    pub fn decode_user(&self, cursor: &str) -> Result<UserCursor, ApiError> {
        let (created_at, id) = self.decode_position::<UserId>("users", cursor)?;
        Ok(UserCursor { created_at, id })
    }

    /// A cursor into a user's notifications (`list` names the user).
    #[must_use]
    pub fn encode_notification(&self, list: &str, cursor: NotificationCursor) -> String {
        self.encode_position(list, cursor.at, cursor.id)
    }

    /// The position in a user's notifications.
    ///
    /// # Errors
    /// 400 `invalid_cursor`, also for another user's cursor.
    pub fn decode_notification(
        &self,
        list: &str,
        cursor: &str,
    ) -> Result<NotificationCursor, ApiError> {
        let (at, id) = self.decode_position::<uuid::Uuid>(list, cursor)?;
        Ok(NotificationCursor { at, id })
    }

    /// A cursor into the audit trail (of one filter: `list` names it).
    #[must_use]
    pub fn encode_audit(&self, list: &str, cursor: AuditCursor) -> String {
        self.encode_position(list, cursor.at, cursor.id)
    }

    /// The position in the audit trail.
    ///
    /// # Errors
    /// 400 `invalid_cursor`, also for a cursor of another filter.
    pub fn decode_audit(&self, list: &str, cursor: &str) -> Result<AuditCursor, ApiError> {
        let (at, id) = self.decode_position::<uuid::Uuid>(list, cursor)?;
        Ok(AuditCursor { at, id })
    }

    /// A cursor into the item list (of one status filter and order: `list`
    /// names both).
    #[must_use]
    pub fn encode_item(&self, list: &str, cursor: ItemCursor) -> String {
        self.encode(list, &format!("{}/{}", cursor.key, cursor.id))
    }

    /// The position in an item list in `sort`'s order.
    ///
    /// # Errors
    /// 400 `invalid_cursor`, also for a cursor of another filter or order.
    pub fn decode_item(
        &self,
        list: &str,
        sort: ItemSort,
        cursor: &str,
    ) -> Result<ItemCursor, ApiError> {
        let payload = self.decode(list, cursor)?;
        let (key, id) = payload.split_once('/').ok_or_else(invalid)?;
        let key: i64 = key.parse().map_err(|_| invalid())?;
        let cursor = ItemCursor {
            sort,
            key,
            id: id.parse().map_err(|_| invalid())?,
        };
        let in_range = match sort {
            ItemSort::Newest | ItemSort::ClosingSoon => {
                Timestamp::from_timestamp_micros(key).is_some()
            }
            ItemSort::PriceAsc | ItemSort::PriceDesc => true,
            ItemSort::BestMatch => cursor.relevance().is_some(),
        };
        if in_range { Ok(cursor) } else { Err(invalid()) }
    }

    /// A cursor into a bidder's bids.
    #[must_use]
    pub fn encode_bid(&self, bidder: UserId, cursor: BidCursor) -> String {
        self.encode_position(&format!("bids-of/{bidder}"), cursor.created_at, cursor.id)
    }

    /// The position in a bidder's bids; another bidder's cursor is refused.
    ///
    /// # Errors
    /// 400 `invalid_cursor`.
    pub fn decode_bid(&self, bidder: UserId, cursor: &str) -> Result<BidCursor, ApiError> {
        let (created_at, id) =
            self.decode_position::<BidId>(&format!("bids-of/{bidder}"), cursor)?;
        Ok(BidCursor { created_at, id })
    }

    /// A cursor into an item's revealed bids.
    #[must_use]
    pub fn encode_seq(&self, item: ItemId, seq: u64) -> String {
        self.encode(&format!("bids/{item}"), &seq.to_string())
    }

    /// The position in an item's revealed bids.
    ///
    /// # Errors
    /// 400 `invalid_cursor`.
    pub fn decode_seq(&self, item: ItemId, cursor: &str) -> Result<u64, ApiError> {
        self.decode(&format!("bids/{item}"), cursor)?
            .parse()
            .map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_any_change_is_refused() {
        let codec = CursorCodec::new(b"secret");
        let position = UserCursor {
            created_at: chrono::Utc::now(),
            id: UserId::generate(),
        };
        let cursor = codec.encode_user(position);
        let back = codec.decode_user(&cursor).unwrap();
        assert_eq!(back.id, position.id);
        assert_eq!(
            back.created_at.timestamp_micros(),
            position.created_at.timestamp_micros()
        );

        let mut tampered = cursor.clone().into_bytes();
        tampered[2] ^= 1;
        let tampered = String::from_utf8_lossy(&tampered).into_owned();
        for bad in [
            tampered.as_str(),
            "",
            "abc",
            "abc.def",
            &cursor[..cursor.len() - 2],
        ] {
            assert_eq!(
                codec.decode_user(bad).unwrap_err().code(),
                "invalid_cursor",
                "{bad}"
            );
        }
        let foreign = codec.encode("items", "1/2");
        assert!(codec.decode("users", &foreign).is_err());
        assert!(CursorCodec::new(b"other").decode_user(&cursor).is_err());
        assert_eq!(format!("{codec:?}"), "CursorCodec(..)");
    }

    #[test]
    fn item_bid_and_seq_cursors_only_open_in_their_own_list() {
        let codec = CursorCodec::new(b"secret");
        let item = ItemCursor {
            sort: ItemSort::Newest,
            key: chrono::Utc::now().timestamp_micros(),
            id: ItemId::generate(),
        };
        let open = codec.encode_item("items/open", item);
        assert_eq!(
            codec
                .decode_item("items/open", ItemSort::Newest, &open)
                .unwrap(),
            item
        );
        assert!(
            codec
                .decode_item("items/closed", ItemSort::Newest, &open)
                .is_err()
        );
        // A price key, and a signed key no time can have (a cursor of a
        // price order handed to a time order, were the lists not told apart).
        let priced = ItemCursor {
            sort: ItemSort::PriceAsc,
            key: i64::MAX,
            ..item
        };
        let dear = codec.encode_item("items/all/price_asc", priced);
        assert_eq!(
            codec
                .decode_item("items/all/price_asc", ItemSort::PriceAsc, &dear)
                .unwrap(),
            priced
        );
        assert!(
            codec
                .decode_item("items/all/price_asc", ItemSort::ClosingSoon, &dear)
                .is_err()
        );
        let unkeyed = codec.encode("items/all", &format!("x/{}", item.id));
        assert!(
            codec
                .decode_item("items/all", ItemSort::Newest, &unkeyed)
                .is_err()
        );

        let (ann, bob) = (UserId::generate(), UserId::generate());
        let bid = BidCursor {
            created_at: chrono::Utc::now(),
            id: BidId::generate(),
        };
        let mine = codec.encode_bid(ann, bid);
        assert_eq!(codec.decode_bid(ann, &mine).unwrap().id, bid.id);
        assert!(
            codec.decode_bid(bob, &mine).is_err(),
            "not another bidder's"
        );

        let lot = ItemId::generate();
        let seq = codec.encode_seq(lot, 42);
        assert_eq!(codec.decode_seq(lot, &seq).unwrap(), 42);
        assert!(codec.decode_seq(ItemId::generate(), &seq).is_err());
        assert!(codec.decode_user(&open).is_err());
    }
}
