//! The bid ledger: a hash chain over an item's bids in `seq` order
//! (docs/spec/auction-rules.md, "Ledger"). Its head is public while the
//! auction runs, a commitment that reveals nothing of the sealed bids (each
//! record carries a random salt) but changes with any later change to a
//! stored bid; after close, the revealed bids carry their salts and chain
//! values, so anyone can recompute the chain and compare.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::bid::BidOffer;
use crate::ids::{ItemId, UserId};
use crate::item::Timestamp;
use crate::money::Money;

/// The label hashed with the item id into the chain's first value.
const GENESIS_LABEL: &[u8] = b"poison-pill ledger v1";

/// Lower-case hex, as every salt, hash and head is shown.
fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// 16 random bytes drawn per bid, sealed with its offer, so the public head
/// cannot be brute-forced back to the amounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Salt([u8; 16]);

impl Salt {
    /// The salt of bids stored before the ledger existed.
    pub const ZERO: Salt = Salt([0; 16]);

    /// A salt of these bytes (drawn by the caller from a CSPRNG).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Salt(bytes)
    }

    /// Its bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// A value of the chain: `h0` for an item without bids, `h(n)` after bid `n`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// `h0 = SHA-256("poison-pill ledger v1" ‖ item id as 16 big-endian bytes)`.
    #[must_use]
    pub fn genesis(item: ItemId) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(GENESIS_LABEL);
        hasher.update(item.as_uuid().as_bytes());
        ChainHash(hasher.finalize().into())
    }

    /// `h(n) = SHA-256(h(n−1) ‖ record(n))`.
    #[must_use]
    pub fn next(&self, record: &LedgerRecord) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(record.text().as_bytes());
        ChainHash(hasher.finalize().into())
    }

    /// A stored value: exactly 32 bytes.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(ChainHash)
    }

    /// Its 32 bytes, as stored.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({self})")
    }
}

/// What the chain commits to of one bid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerRecord {
    /// The bid's arrival position on the item.
    pub seq: u64,
    /// Who bid.
    pub bidder: UserId,
    /// What was offered.
    pub offer: BidOffer,
    /// When it was accepted (stored to the microsecond).
    pub created_at: Timestamp,
    /// Its salt.
    pub salt: Salt,
}

/// `created_at` exactly as the record hashes it and a revealed bid shows it:
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
#[must_use]
pub fn ledger_time(at: Timestamp) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl LedgerRecord {
    /// `{seq}|{bidder_id}|{amount}|{budget}|{step}|{created_at}|{salt}`.
    #[must_use]
    pub fn text(&self) -> String {
        let poison = |part: fn(&crate::bid::Poison) -> Money| {
            self.offer
                .poison
                .as_ref()
                .map_or(0, |p| part(p).minor_units())
        };
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.seq,
            self.bidder.as_uuid().hyphenated(),
            self.offer.amount.minor_units(),
            poison(|p| p.budget),
            poison(|p| p.step),
            ledger_time(self.created_at),
            self.salt,
        )
    }
}

/// The head of `item`'s chain over `records` (in `seq` order).
#[must_use]
pub fn head_of<'a>(item: ItemId, records: impl IntoIterator<Item = &'a LedgerRecord>) -> ChainHash {
    records
        .into_iter()
        .fold(ChainHash::genesis(item), |head, record| head.next(record))
}

/// Where a stored chain stops matching its recomputation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first `seq` whose stored value (or numbering) is wrong; one past
    /// the last bid when only the item's head is wrong.
    pub seq: u64,
}

/// Recomputes `item`'s chain over its stored bids, each with the chain value
/// stored beside it, and compares every value and the item's `head`.
///
/// # Errors
/// [`ChainBreak`] at the first bid out of sequence or whose stored value
/// differs, or past the last when the head differs.
pub fn verify_chain<'a>(
    item: ItemId,
    stored: impl IntoIterator<Item = (&'a LedgerRecord, Option<ChainHash>)>,
    head: Option<ChainHash>,
) -> Result<ChainHash, ChainBreak> {
    let mut value = ChainHash::genesis(item);
    let mut expected_seq = 1;
    for (record, stored_value) in stored {
        if record.seq != expected_seq {
            return Err(ChainBreak { seq: expected_seq });
        }
        value = value.next(record);
        if stored_value != Some(value) {
            return Err(ChainBreak { seq: record.seq });
        }
        expected_seq += 1;
    }
    if head == Some(value) {
        Ok(value)
    } else {
        Err(ChainBreak { seq: expected_seq })
    }
}

#[cfg(test)]
mod tests;
