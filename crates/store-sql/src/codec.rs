//! The plaintext layout of sealed values, and sealing them for their rows.
//!
//! Layouts are fixed-length so a ciphertext's length reveals nothing (not
//! even whether a bid is poisoned). A leading version byte lets the layout
//! change later without guessing.

use pp_domain::engine::Leader;
use pp_domain::ledger::Salt;
use pp_domain::ports::{SealBinding, Sealer, StoreError};
use pp_domain::{BidOffer, ItemId, Money, Poison, UserId};
use uuid::Uuid;

use crate::errors::integrity;

const OFFER_V1: u8 = 1;
const OFFER_LEN: usize = 1 + 8 + 8 + 8;
/// The offer and its ledger salt (bids from before the ledger are V1, and
/// their salt is all zeros, as docs/spec/auction-rules.md says).
const OFFER_V2: u8 = 2;
const OFFER_V2_LEN: usize = OFFER_LEN + 16;
const LEADER_V1: u8 = 1;
const LEADER_LEN: usize = 1 + 16 + 8 + 8 + 8;

fn money_or_zero(money: Option<Money>) -> i64 {
    money.map_or(0, Money::minor_units)
}

fn read_i64(bytes: &[u8], at: usize) -> Option<i64> {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(i64::from_be_bytes)
}

fn money_at(bytes: &[u8], at: usize) -> Result<Money, StoreError> {
    read_i64(bytes, at)
        .and_then(|units| Money::new(units).ok())
        .ok_or_else(|| integrity("a sealed amount is out of range"))
}

/// `Some(money)` for a positive value, `None` for the 0 that marks "absent".
fn optional_money_at(bytes: &[u8], at: usize) -> Result<Option<Money>, StoreError> {
    match read_i64(bytes, at) {
        Some(0) => Ok(None),
        _ => money_at(bytes, at).map(Some),
    }
}

fn encode_offer(offer: &BidOffer, salt: &Salt) -> [u8; OFFER_V2_LEN] {
    let mut out = [0u8; OFFER_V2_LEN];
    out[0] = OFFER_V2;
    out[1..9].copy_from_slice(&offer.amount.minor_units().to_be_bytes());
    out[9..17].copy_from_slice(&money_or_zero(offer.poison.map(|p| p.budget)).to_be_bytes());
    out[17..25].copy_from_slice(&money_or_zero(offer.poison.map(|p| p.step)).to_be_bytes());
    out[OFFER_LEN..].copy_from_slice(salt.as_bytes());
    out
}

fn decode_offer(bytes: &[u8]) -> Result<(BidOffer, Salt), StoreError> {
    let salt = match (bytes.len(), bytes.first()) {
        (OFFER_LEN, Some(&OFFER_V1)) => Salt::ZERO,
        (OFFER_V2_LEN, Some(&OFFER_V2)) => {
            let mut salt = [0u8; 16];
            salt.copy_from_slice(&bytes[OFFER_LEN..]);
            Salt::from_bytes(salt)
        }
        _ => return Err(integrity("a sealed bid has an unknown layout")),
    };
    let amount = money_at(bytes, 1)?;
    let poison = match (optional_money_at(bytes, 9)?, optional_money_at(bytes, 17)?) {
        (None, None) => None,
        (Some(budget), Some(step)) => Some(Poison { budget, step }),
        _ => return Err(integrity("a sealed bid has half a poison")),
    };
    Ok((BidOffer { amount, poison }, salt))
}

fn encode_leader(leader: &Leader) -> [u8; LEADER_LEN] {
    let mut out = [0u8; LEADER_LEN];
    out[0] = LEADER_V1;
    out[1..17].copy_from_slice(leader.bidder.as_uuid().as_bytes());
    out[17..25].copy_from_slice(&leader.ceiling.minor_units().to_be_bytes());
    out[25..33].copy_from_slice(&money_or_zero(leader.step).to_be_bytes());
    out[33..41].copy_from_slice(&leader.price.minor_units().to_be_bytes());
    out
}

/// Decodes the sealed leader. The price is sealed too (beside the public
/// column) so a tampered public price is detected rather than believed.
fn decode_leader(bytes: &[u8]) -> Result<Leader, StoreError> {
    if bytes.len() != LEADER_LEN || bytes[0] != LEADER_V1 {
        return Err(integrity("a sealed standing has an unknown layout"));
    }
    let bidder = Uuid::from_slice(&bytes[1..17]).map_err(integrity)?;
    Ok(Leader {
        bidder: UserId::from_uuid(bidder),
        ceiling: money_at(bytes, 17)?,
        step: optional_money_at(bytes, 25)?,
        price: money_at(bytes, 33)?,
    })
}

fn seal_error(err: pp_domain::ports::SealError) -> StoreError {
    integrity(format_args!("sealing failed: {err}"))
}

/// Seals a bid's offer and ledger salt for its row.
pub(crate) fn seal_offer(
    sealer: &dyn Sealer,
    item: ItemId,
    bidder: UserId,
    offer: &BidOffer,
    salt: &Salt,
) -> Result<Vec<u8>, StoreError> {
    sealer
        .seal(
            &encode_offer(offer, salt),
            &SealBinding::Bid { item, bidder },
        )
        .map_err(seal_error)
}

/// Opens a bid's offer and ledger salt; fails when the ciphertext belongs
/// to another row.
pub(crate) fn open_offer_and_salt(
    sealer: &dyn Sealer,
    item: ItemId,
    bidder: UserId,
    sealed: &[u8],
) -> Result<(BidOffer, Salt), StoreError> {
    let plain = sealer
        .open(sealed, &SealBinding::Bid { item, bidder })
        .map_err(|e| {
            integrity(format_args!(
                "the bid of {bidder} on {item} does not open: {e}"
            ))
        })?;
    decode_offer(&plain)
}

/// Seals an item's leader.
pub(crate) fn seal_leader(
    sealer: &dyn Sealer,
    item: ItemId,
    leader: &Leader,
) -> Result<Vec<u8>, StoreError> {
    sealer
        .seal(&encode_leader(leader), &SealBinding::Standing { item })
        .map_err(seal_error)
}

/// Opens an item's leader.
pub(crate) fn open_leader(
    sealer: &dyn Sealer,
    item: ItemId,
    sealed: &[u8],
) -> Result<Leader, StoreError> {
    let plain = sealer
        .open(sealed, &SealBinding::Standing { item })
        .map_err(|e| integrity(format_args!("the standing of {item} does not open: {e}")))?;
    decode_leader(&plain)
}

/// Seals the price bid `seq` of `item` left.
pub(crate) fn seal_price(
    sealer: &dyn Sealer,
    item: ItemId,
    seq: u64,
    price: Money,
) -> Result<Vec<u8>, StoreError> {
    sealer
        .seal(
            &price.minor_units().to_be_bytes(),
            &SealBinding::PriceAfter { item, seq },
        )
        .map_err(seal_error)
}

/// Opens the price bid `seq` of `item` left.
pub(crate) fn open_price(
    sealer: &dyn Sealer,
    item: ItemId,
    seq: u64,
    sealed: &[u8],
) -> Result<Money, StoreError> {
    let plain = sealer
        .open(sealed, &SealBinding::PriceAfter { item, seq })
        .map_err(|e| {
            integrity(format_args!(
                "the price after bid {seq} on {item} does not open: {e}"
            ))
        })?;
    let bytes: [u8; 8] = plain
        .as_slice()
        .try_into()
        .map_err(|_| integrity("a sealed price has the wrong length"))?;
    Money::new(i64::from_be_bytes(bytes))
        .map_err(|e| integrity(format_args!("a sealed price: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(units: i64) -> Money {
        Money::new(units).unwrap()
    }

    #[test]
    fn offers_round_trip_plain_and_poisoned_with_their_salt() {
        let salt = Salt::from_bytes([7; 16]);
        for offer in [
            BidOffer::plain(money(12_500)),
            BidOffer::poisoned(money(1), Money::MAX, money(7)),
        ] {
            assert_eq!(
                decode_offer(&encode_offer(&offer, &salt)).unwrap(),
                (offer, salt)
            );
        }
    }

    #[test]
    fn an_offer_sealed_before_the_ledger_opens_with_the_zero_salt() {
        let offer = BidOffer::poisoned(money(100), money(300), money(5));
        let mut v1 = [0u8; OFFER_LEN];
        v1.copy_from_slice(&encode_offer(&offer, &Salt::from_bytes([9; 16]))[..OFFER_LEN]);
        v1[0] = OFFER_V1;
        assert_eq!(decode_offer(&v1).unwrap(), (offer, Salt::ZERO));
        // A V1 tag on the longer layout (or the reverse) is no layout at all.
        let mut mixed = encode_offer(&offer, &Salt::ZERO);
        mixed[0] = OFFER_V1;
        assert!(decode_offer(&mixed).is_err());
        v1[0] = OFFER_V2;
        assert!(decode_offer(&v1).is_err());
    }

    #[test]
    fn leaders_round_trip() {
        for step in [None, Some(money(5))] {
            let leader = Leader {
                bidder: UserId::generate(),
                ceiling: money(300),
                step,
                price: money(210),
            };
            assert_eq!(decode_leader(&encode_leader(&leader)).unwrap(), leader);
        }
    }

    #[test]
    fn foreign_layouts_and_half_poisons_are_integrity_errors() {
        let mut bytes = encode_offer(
            &BidOffer::poisoned(money(1), money(2), money(3)),
            &Salt::ZERO,
        );
        assert!(decode_offer(&bytes[..10]).is_err());
        bytes[17..25].copy_from_slice(&0i64.to_be_bytes());
        assert!(matches!(
            decode_offer(&bytes),
            Err(StoreError::Integrity(_))
        ));
        bytes[0] = 9;
        assert!(decode_offer(&bytes).is_err());
        let mut leader = encode_leader(&Leader {
            bidder: UserId::generate(),
            ceiling: money(3),
            step: None,
            price: money(3),
        });
        leader[33..41].copy_from_slice(&(-1i64).to_be_bytes());
        assert!(decode_leader(&leader).is_err());
        assert!(decode_leader(&leader[..5]).is_err());
    }
}
