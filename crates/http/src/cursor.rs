//! Opaque pagination cursors: the position, signed (HMAC-SHA256) with the
//! list it belongs to, so a tampered or foreign cursor is a 400, never a 500.

use actix_web::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use pp_domain::{Timestamp, UserCursor, UserId};
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

    /// A cursor into the account list.
    #[must_use]
    pub fn encode_user(&self, cursor: UserCursor) -> String {
        let micros = cursor.created_at.timestamp_micros();
        self.encode("users", &format!("{micros}/{}", cursor.id))
    }

    /// The position in the account list.
    ///
    /// # Errors
    /// 400 `invalid_cursor`.
    pub fn decode_user(&self, cursor: &str) -> Result<UserCursor, ApiError> {
        let payload = self.decode("users", cursor)?;
        let (micros, id) = payload.split_once('/').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        Ok(UserCursor {
            created_at: Timestamp::from_timestamp_micros(micros).ok_or_else(invalid)?,
            id: id.parse::<UserId>().map_err(|_| invalid())?,
        })
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
}
