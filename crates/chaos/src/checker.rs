//! The checks, after the run, of what the clients saw against what the
//! database holds (read through the API once every item has closed).

use std::collections::{BTreeMap, HashMap};

use pp_domain::engine::replay;
use pp_domain::{BidOffer, Money, UserId};
use serde_json::Value;

use crate::history::{Answer, BidAttempt, Subscription};

/// One check's outcome.
#[derive(Debug)]
pub struct Verdict {
    pub name: &'static str,
    pub failures: Vec<String>,
}

impl Verdict {
    fn new(name: &'static str) -> Self {
        Verdict {
            name,
            failures: Vec::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A revealed bid, as `GET /items/{id}/bids` shows it after close.
#[derive(Clone, Debug)]
pub struct StoredBid {
    pub seq: u64,
    pub bidder: uuid::Uuid,
    pub amount: i64,
    pub poison: Option<(i64, i64)>,
}

impl StoredBid {
    /// From the API's JSON.
    pub fn of(body: &Value) -> Option<Self> {
        Some(StoredBid {
            seq: body["seq"].as_u64()?,
            bidder: body["bidder_id"].as_str()?.parse().ok()?,
            amount: body["amount"].as_i64()?,
            poison: body["poison"]
                .as_object()
                .and_then(|p| Some((p.get("budget")?.as_i64()?, p.get("step")?.as_i64()?))),
        })
    }

    fn offer(&self) -> Option<BidOffer> {
        let amount = Money::new(self.amount).ok()?;
        Some(match self.poison {
            Some((budget, step)) => {
                BidOffer::poisoned(amount, Money::new(budget).ok()?, Money::new(step).ok()?)
            }
            None => BidOffer::plain(amount),
        })
    }
}

/// An item as it ended: its stored bids and its outcome.
#[derive(Clone, Debug)]
pub struct ClosedItem {
    pub id: uuid::Uuid,
    pub bids: Vec<StoredBid>,
    pub final_price: Option<i64>,
    pub winner: Option<uuid::Uuid>,
}

/// Every bid answered 201 is stored as sent; no bid answered with a
/// refusal is stored unless an earlier attempt of it got no answer (its
/// retry then meets `bid_already_placed`).
pub fn acknowledged_bids_are_stored(attempts: &[BidAttempt], items: &[ClosedItem]) -> Verdict {
    let mut verdict = Verdict::new("acknowledged bids are stored, refused ones are not");
    let stored: HashMap<(uuid::Uuid, uuid::Uuid), &StoredBid> = items
        .iter()
        .flat_map(|item| {
            item.bids
                .iter()
                .map(move |bid| ((item.id, bid.bidder), bid))
        })
        .collect();
    for attempt in attempts {
        let found = stored.get(&(attempt.item, attempt.user));
        match &attempt.answer {
            Answer::Status(201, _) => match found {
                Some(bid) if bid.amount == attempt.amount && bid.poison == attempt.poison => {}
                Some(bid) => verdict.failures.push(format!(
                    "acknowledged {attempt:?} stored differently: {bid:?}"
                )),
                None => verdict.failures.push(format!(
                    "acknowledged by instance {} and lost: {attempt:?}",
                    attempt.instance + 1
                )),
            },
            Answer::Status(status, code) if *status >= 400 && *status < 500 => {
                let unanswered_before = attempts.iter().any(|other| {
                    other.item == attempt.item
                        && other.user == attempt.user
                        && matches!(other.answer, Answer::None(_) | Answer::Status(500.., _))
                });
                if found.is_some()
                    && !unanswered_before
                    && code.as_deref() != Some("bid_already_placed")
                {
                    verdict.failures.push(format!(
                        "refused ({status} {code:?}) and stored: {attempt:?}"
                    ));
                }
            }
            _ => {}
        }
    }
    verdict
}

/// Per item, `seq` runs 1..=n with no gap or duplicate, and the stored
/// bids replayed through the domain's engine give the stored outcome.
pub fn replays_reproduce_outcomes(items: &[ClosedItem]) -> Verdict {
    let mut verdict = Verdict::new("bids replayed in seq order reproduce the outcome");
    for item in items {
        let seqs: Vec<u64> = item.bids.iter().map(|b| b.seq).collect();
        let expected: Vec<u64> = (1..=item.bids.len() as u64).collect();
        if seqs != expected {
            verdict
                .failures
                .push(format!("item {}: seq {seqs:?}", item.id));
            continue;
        }
        let offers: Vec<(UserId, BidOffer)> = item
            .bids
            .iter()
            .filter_map(|b| Some((UserId::from_uuid(b.bidder), b.offer()?)))
            .collect();
        let standing = replay(offers.iter().map(|(user, offer)| (*user, offer)));
        let leader = standing.leader();
        let replayed = (
            leader.map(|l| l.price.minor_units()),
            leader.map(|l| l.bidder.as_uuid()),
        );
        if replayed != (item.final_price, item.winner) {
            verdict.failures.push(format!(
                "item {}: replayed {replayed:?}, stored ({:?}, {:?})",
                item.id, item.final_price, item.winner
            ));
        }
    }
    verdict
}

/// Every subscriber, across its reconnects, saw each price event of its
/// item once and in order (ids 1, 2, … after its first), and `closed` once
/// at the end.
pub fn streams_have_no_gap_or_repeat(
    subscriptions: &[Subscription],
    items: &[ClosedItem],
) -> Verdict {
    let mut verdict = Verdict::new("live streams: every event once, in order, closed once");
    let counts: HashMap<uuid::Uuid, u64> = items
        .iter()
        .map(|item| (item.id, item.bids.len() as u64))
        .collect();
    for subscription in subscriptions {
        let Some(first) = subscription.seen.first() else {
            verdict.failures.push(format!(
                "a subscriber of {} saw nothing ({} reconnects)",
                subscription.item, subscription.reconnects
            ));
            continue;
        };
        let mut expected = first.id;
        let mut closed = 0;
        for seen in &subscription.seen[1..] {
            expected += 1;
            if seen.id != expected {
                verdict.failures.push(format!(
                    "a subscriber of {} got id {} where {expected} was due ({} reconnects)",
                    subscription.item, seen.id, subscription.reconnects
                ));
                break;
            }
            closed += usize::from(seen.event == "closed");
        }
        let bids = counts.get(&subscription.item).copied().unwrap_or(0);
        let last = subscription.seen.last().map_or(0, |s| s.id);
        if closed != 1 || last != bids + 1 {
            verdict.failures.push(format!(
                "a subscriber of {} ended at id {last} with {closed} closed events; {bids} bids were stored",
                subscription.item
            ));
        }
    }
    verdict
}

/// Every registration answered 201 got its mail at least once, and the
/// copies of one message (a delivery retried after a crash) share one
/// `Message-ID`.
pub fn registrations_are_mailed(
    registrations: &[crate::history::Registration],
    mails: &[pp_testkit::smtp::ReceivedMail],
) -> Verdict {
    let mut verdict = Verdict::new("every registration's mail arrives, copies share a Message-ID");
    for registration in registrations {
        if registration.answer != Answer::Status(201, None) {
            continue;
        }
        let to_them: Vec<&pp_testkit::smtp::ReceivedMail> = mails
            .iter()
            .filter(|mail| {
                mail.recipients
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(&registration.email))
            })
            .collect();
        if to_them.is_empty() {
            verdict
                .failures
                .push(format!("no mail to {}", registration.email));
        }
        let ids: std::collections::BTreeSet<_> =
            to_them.iter().map(|m| m.message_id.clone()).collect();
        if ids.len() > 1 {
            verdict.failures.push(format!(
                "{} mails to {} with {} Message-IDs",
                to_them.len(),
                registration.email,
                ids.len()
            ));
        }
    }
    verdict
}

/// No access token was accepted after its logout, during the run or after
/// it (by then Redis, which holds the blacklist, was restarted empty).
pub async fn revoked_tokens_stay_refused(
    revoked: &[String],
    accepted_during_run: &[String],
    balancer: &crate::load::Balancer,
) -> Verdict {
    let mut verdict = Verdict::new("a logged-out access token is refused ever after");
    verdict.failures.extend(accepted_during_run.iter().cloned());
    let client = crate::load::client(std::time::Duration::from_secs(10));
    for token in revoked {
        let (instance, url) = balancer.next();
        if let Ok(me) = client
            .get(format!("{url}/api/v1/users/me"))
            .bearer_auth(token)
            .send()
            .await
            && me.status().is_success()
        {
            verdict.failures.push(format!(
                "instance {} took a logged-out token after the run",
                instance + 1
            ));
        }
    }
    verdict
}

/// One row of the table: a fault kind.
#[derive(Debug, Default)]
pub struct FaultRow {
    pub injected: usize,
    /// Bid requests sent while a fault of the kind was in force.
    pub requests: usize,
    /// Of those, answered with a success or a documented refusal.
    pub correct: usize,
    /// The longest time, after a fault ended, until the last wrong answer
    /// to a request sent after it and before the next fault: how long the
    /// service took to be whole again.
    pub recovery: std::time::Duration,
    /// The wrong answers during and after it, by kind, most frequent first.
    pub wrong: BTreeMap<String, usize>,
}

/// The table per fault kind.
pub fn table(
    attempts: &[BidAttempt],
    faults: &[crate::history::FaultWindow],
) -> BTreeMap<&'static str, FaultRow> {
    let mut rows: BTreeMap<&'static str, FaultRow> = BTreeMap::new();
    for (n, fault) in faults.iter().enumerate() {
        let row = rows.entry(fault.kind).or_default();
        row.injected += 1;
        let next = faults
            .get(n + 1)
            .map_or(fault.to + std::time::Duration::from_secs(30), |f| f.from);
        for attempt in attempts {
            let during = attempt.sent >= fault.from && attempt.sent <= fault.to;
            let after = attempt.sent > fault.to && attempt.sent < next;
            if during {
                row.requests += 1;
                row.correct += usize::from(attempt.answer.is_correct());
            }
            if (during || after) && !attempt.answer.is_correct() {
                let kind = match &attempt.answer {
                    Answer::Status(status, code) => {
                        format!("{status} {}", code.as_deref().unwrap_or(""))
                    }
                    Answer::None(error) => {
                        format!("no answer: {}", error.chars().take(60).collect::<String>())
                    }
                };
                *row.wrong.entry(kind).or_default() += 1;
            }
            if after && !attempt.answer.is_correct() {
                row.recovery = row.recovery.max(attempt.answered - fault.to);
            }
        }
    }
    rows
}
