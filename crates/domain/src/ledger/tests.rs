//! The ledger against a vector computed outside Rust (Python's hashlib), and
//! the property the issue names: any change to any stored field of any bid
//! changes the head.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::bid::BidOffer;

fn money(units: i64) -> Money {
    Money::new(units).unwrap()
}

fn id(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

fn at(seconds: i64, micros: u32) -> Timestamp {
    Utc.timestamp_opt(seconds, micros * 1_000).unwrap()
}

fn vector() -> (ItemId, [LedgerRecord; 2]) {
    let item = ItemId::from_uuid(id("01939a6e-7f00-7000-8000-000000000001"));
    let first = LedgerRecord {
        seq: 1,
        bidder: UserId::from_uuid(id("01939a6e-7f00-7000-8000-0000000000b1")),
        offer: BidOffer::poisoned(money(12_500), money(20_000), money(500)),
        // 2026-12-05T10:00:00.123456Z
        created_at: at(1_796_464_800, 123_456),
        salt: Salt::from_bytes(core::array::from_fn(|i| i as u8)),
    };
    let second = LedgerRecord {
        seq: 2,
        bidder: UserId::from_uuid(id("01939a6e-7f00-7000-8000-0000000000b2")),
        offer: BidOffer::plain(money(13_000)),
        created_at: at(1_796_464_801, 0),
        salt: Salt::ZERO,
    };
    (item, [first, second])
}

#[test]
fn the_chain_matches_a_vector_computed_elsewhere() {
    let (item, records) = vector();
    assert_eq!(
        ChainHash::genesis(item).to_string(),
        "01a5dffeffef9800171ee242a205e8f8034d8cb2ee859a47fd89fe9aefacaff4"
    );
    assert_eq!(
        records[0].text(),
        "1|01939a6e-7f00-7000-8000-0000000000b1|12500|20000|500|2026-12-05T10:00:00.123456Z|000102030405060708090a0b0c0d0e0f"
    );
    assert_eq!(
        records[1].text(),
        "2|01939a6e-7f00-7000-8000-0000000000b2|13000|0|0|2026-12-05T10:00:01.000000Z|00000000000000000000000000000000"
    );
    let first = ChainHash::genesis(item).next(&records[0]);
    assert_eq!(
        first.to_string(),
        "1e6dcaaf56544cf86a00e6c69157ad0a487a0f6173fe8f5733284e173110298a"
    );
    let head = head_of(item, &records);
    assert_eq!(
        head.to_string(),
        "fbfd6b1bc35e2a482295c036288497eb7939a88e8a11648775ee1f27b035f22d"
    );
    assert_eq!(ChainHash::from_slice(head.as_bytes()), Some(head));
    assert_eq!(ChainHash::from_slice(&[0; 31]), None);
    assert!(format!("{head:?}").contains(&head.to_string()));
    assert_eq!(Salt::ZERO.as_bytes(), &[0; 16]);
}

#[test]
fn verifying_names_the_first_bad_seq_or_one_past_the_last_for_the_head() {
    let (item, records) = vector();
    let first = ChainHash::genesis(item).next(&records[0]);
    let head = first.next(&records[1]);
    let stored = |one: Option<ChainHash>, two: Option<ChainHash>| {
        vec![(&records[0], one), (&records[1], two)]
    };
    assert_eq!(
        verify_chain(item, stored(Some(first), Some(head)), Some(head)),
        Ok(head)
    );
    assert_eq!(
        verify_chain(item, stored(Some(head), Some(head)), Some(head)),
        Err(ChainBreak { seq: 1 })
    );
    assert_eq!(
        verify_chain(item, stored(Some(first), None), Some(head)),
        Err(ChainBreak { seq: 2 })
    );
    assert_eq!(
        verify_chain(item, stored(Some(first), Some(head)), Some(first)),
        Err(ChainBreak { seq: 3 })
    );
    assert_eq!(
        verify_chain(item, stored(Some(first), Some(head)), None),
        Err(ChainBreak { seq: 3 })
    );
    // A missing bid: seq 2 comes first.
    assert_eq!(
        verify_chain(item, vec![(&records[1], Some(head))], Some(head)),
        Err(ChainBreak { seq: 1 })
    );
    // An item without bids: its head is h0.
    let genesis = ChainHash::genesis(item);
    assert_eq!(verify_chain(item, vec![], Some(genesis)), Ok(genesis));
}

/// One field of one record, changed.
#[derive(Clone, Copy, Debug)]
enum Change {
    Seq,
    Bidder,
    Amount,
    Budget,
    Step,
    Poisoned,
    CreatedAt,
    Salt(usize),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::Seq),
        Just(Change::Bidder),
        Just(Change::Amount),
        Just(Change::Budget),
        Just(Change::Step),
        Just(Change::Poisoned),
        Just(Change::CreatedAt),
        (0usize..16).prop_map(Change::Salt),
    ]
}

fn record() -> impl Strategy<Value = LedgerRecord> {
    (
        any::<u128>(),
        1i64..=1_000_000,
        prop::option::of((0i64..=1_000_000, 1i64..=1_000)),
        0i64..=4_000_000_000,
        0u32..1_000_000,
        any::<[u8; 16]>(),
    )
        .prop_map(|(bidder, amount, poison, seconds, micros, salt)| {
            let offer = match poison {
                None => BidOffer::plain(money(amount)),
                Some((extra, step)) => {
                    BidOffer::poisoned(money(amount), money(amount + extra), money(step))
                }
            };
            LedgerRecord {
                seq: 0,
                bidder: UserId::from_uuid(Uuid::from_u128(bidder)),
                offer,
                created_at: at(seconds, micros),
                salt: Salt::from_bytes(salt),
            }
        })
}

fn changed(record: LedgerRecord, change: Change) -> LedgerRecord {
    let bump = |m: Money| money(m.minor_units() % 999_999 + 1 + i64::from(m.minor_units() == 1));
    let mut out = record;
    match change {
        Change::Seq => out.seq += 1,
        Change::Bidder => {
            out.bidder = UserId::from_uuid(Uuid::from_u128(record.bidder.as_uuid().as_u128() ^ 1));
        }
        Change::Amount => out.offer.amount = money(record.offer.amount.minor_units() % 999_999 + 1),
        Change::Budget | Change::Step => match &mut out.offer.poison {
            Some(poison) if matches!(change, Change::Budget) => poison.budget = bump(poison.budget),
            Some(poison) => poison.step = bump(poison.step),
            None => {
                out.offer.poison = Some(crate::bid::Poison {
                    budget: money(1),
                    step: money(1),
                })
            }
        },
        Change::Poisoned => {
            out.offer.poison = match record.offer.poison {
                Some(_) => None,
                None => Some(crate::bid::Poison {
                    budget: record.offer.amount,
                    step: money(1),
                }),
            };
        }
        Change::CreatedAt => out.created_at += chrono::Duration::microseconds(1),
        Change::Salt(byte) => {
            let mut salt = *record.salt.as_bytes();
            salt[byte] ^= 1;
            out.salt = Salt::from_bytes(salt);
        }
    }
    out
}

proptest! {
    /// Any change to any stored field of any bid changes the head.
    #[test]
    fn any_change_to_any_field_of_any_bid_changes_the_head(
        records in prop::collection::vec(record(), 1..12),
        which in any::<prop::sample::Index>(),
        what in change(),
        item in any::<u128>(),
    ) {
        let item = ItemId::from_uuid(Uuid::from_u128(item));
        let records: Vec<LedgerRecord> = records
            .into_iter()
            .enumerate()
            .map(|(n, r)| LedgerRecord { seq: n as u64 + 1, ..r })
            .collect();
        let head = head_of(item, &records);
        let at = which.index(records.len());
        let mut tampered = records.clone();
        tampered[at] = changed(records[at], what);
        prop_assume!(tampered[at] != records[at]);
        prop_assert_ne!(head_of(item, &tampered), head);
        // And the verifier names that bid.
        let mut value = ChainHash::genesis(item);
        let stored: Vec<(&LedgerRecord, Option<ChainHash>)> = records
            .iter()
            .map(|r| {
                value = value.next(r);
                (r, Some(value))
            })
            .collect();
        let mut tampered_stored = stored.clone();
        tampered_stored[at].0 = &tampered[at];
        prop_assert_eq!(
            verify_chain(item, tampered_stored, Some(head)),
            Err(ChainBreak { seq: at as u64 + 1 })
        );
        prop_assert_eq!(verify_chain(item, stored, Some(head)), Ok(head));
        // Another item's chain over the same bids differs from the first value on.
        let other = ItemId::from_uuid(Uuid::from_u128(item.as_uuid().as_u128() ^ 1));
        prop_assert_ne!(head_of(other, &records), head);
    }
}
