//! The checks, after the run, of what the clients saw against what the
//! database holds (read through the API once every item has closed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use pp_domain::engine::replay;
use pp_domain::{BidOffer, Money, UserId};
use serde_json::Value;

use crate::history::{Answer, BidAttempt, FaultWindow, RefreshRace, Subscription};

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

/// The run's clock and faults, to tell where in the run a record falls:
/// a failure shows its history excerpt against them.
#[derive(Clone, Copy, Debug)]
pub struct Timeline<'a> {
    pub started: Instant,
    pub faults: &'a [FaultWindow],
}

impl Timeline<'_> {
    /// `t+12.345s`: seconds since the load began.
    pub fn at(&self, when: Instant) -> String {
        format!(
            "t+{:.3}s",
            when.saturating_duration_since(self.started).as_secs_f64()
        )
    }

    /// The faults in force within three seconds of `when`, or "no fault".
    pub fn faults_near(&self, when: Instant) -> String {
        let margin = Duration::from_secs(3);
        let near: Vec<String> = self
            .faults
            .iter()
            .filter(|f| f.from <= when + margin && when <= f.to + margin)
            .map(|f| {
                format!(
                    "{} on {} ({} to {})",
                    f.kind,
                    f.target,
                    self.at(f.from),
                    self.at(f.to)
                )
            })
            .collect();
        if near.is_empty() {
            "no fault near".to_owned()
        } else {
            near.join("; ")
        }
    }

    /// One bid request, as an excerpt line.
    fn attempt(&self, attempt: &BidAttempt) -> String {
        format!(
            "{} bid {} {:?} sent to api-{}, answered after {} ms: {:?} [{}]",
            self.at(attempt.sent),
            attempt.amount,
            attempt.poison,
            attempt.instance + 1,
            attempt
                .answered
                .saturating_duration_since(attempt.sent)
                .as_millis(),
            attempt.answer,
            self.faults_near(attempt.sent)
        )
    }
}

/// A failure's headline with the history it comes from, one excerpt line
/// under it each.
fn with_excerpt(headline: String, excerpt: impl IntoIterator<Item = String>) -> String {
    let mut text = headline;
    for line in excerpt {
        text.push_str("\n      | ");
        text.push_str(&line);
    }
    text
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
/// retry then meets `bid_already_placed`); no bidder has two stored bids
/// on one item.
pub fn acknowledged_bids_are_stored(
    attempts: &[BidAttempt],
    items: &[ClosedItem],
    timeline: Timeline<'_>,
) -> Verdict {
    let mut verdict = Verdict::new("acknowledged bids are stored once, refused ones are not");
    let stored = stored_bids(items);
    let history_of = |attempt: &BidAttempt| {
        let mut lines: Vec<String> = attempts
            .iter()
            .filter(|other| other.item == attempt.item && other.user == attempt.user)
            .map(|other| timeline.attempt(other))
            .collect();
        lines.push(format!(
            "item {} holds {} bids",
            attempt.item,
            items
                .iter()
                .find(|i| i.id == attempt.item)
                .map_or(0, |i| i.bids.len())
        ));
        lines
    };
    for ((item, bidder), bids) in &stored {
        if bids.len() > 1 {
            verdict.failures.push(format!(
                "bidder {bidder} has {} bids stored on item {item}: {bids:?}",
                bids.len()
            ));
        }
    }
    for attempt in attempts {
        let found = stored
            .get(&(attempt.item, attempt.user))
            .and_then(|bids| bids.first());
        match &attempt.answer {
            Answer::Status(201, _) => match found {
                Some(bid) if bid.amount == attempt.amount && bid.poison == attempt.poison => {}
                Some(bid) => verdict.failures.push(with_excerpt(
                    format!("acknowledged and stored differently: {bid:?}"),
                    history_of(attempt),
                )),
                None => verdict.failures.push(with_excerpt(
                    format!("acknowledged by api-{} and lost", attempt.instance + 1),
                    history_of(attempt),
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
                    verdict.failures.push(with_excerpt(
                        format!("refused ({status} {code:?}) and stored"),
                        history_of(attempt),
                    ));
                }
            }
            _ => {}
        }
    }
    verdict
}

/// The stored bids by (item, bidder).
fn stored_bids(items: &[ClosedItem]) -> HashMap<(uuid::Uuid, uuid::Uuid), Vec<&StoredBid>> {
    let mut stored: HashMap<_, Vec<&StoredBid>> = HashMap::new();
    for item in items {
        for bid in &item.bids {
            stored.entry((item.id, bid.bidder)).or_default().push(bid);
        }
    }
    stored
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
            verdict.failures.push(with_excerpt(
                format!(
                    "item {}: replayed {replayed:?}, stored ({:?}, {:?})",
                    item.id, item.final_price, item.winner
                ),
                item.bids.iter().map(|bid| format!("{bid:?}")),
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
    timeline: Timeline<'_>,
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
        let mut closed = usize::from(first.event == "closed");
        for (n, seen) in subscription.seen.iter().enumerate().skip(1) {
            expected += 1;
            if seen.id != expected {
                let around =
                    &subscription.seen[n.saturating_sub(3)..(n + 3).min(subscription.seen.len())];
                verdict.failures.push(with_excerpt(
                    format!(
                        "a subscriber of {} got id {} where {expected} was due ({} reconnects)",
                        subscription.item, seen.id, subscription.reconnects
                    ),
                    around.iter().map(|s| {
                        format!(
                            "{} {} id {} [{}]",
                            timeline.at(s.at),
                            s.event,
                            s.id,
                            timeline.faults_near(s.at)
                        )
                    }),
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

/// A notice of a close, as `/me/notifications` shows it.
#[derive(Clone, Debug)]
pub struct Notice {
    pub user: uuid::Uuid,
    pub item: uuid::Uuid,
    pub kind: String,
}

/// Each item closed once: each of its bidders holds exactly one notice of
/// the close (`won` for the winner, `lost` for the others), nobody else
/// holds one, and the winner's "You won" mail arrived, its copies under one
/// `Message-ID`.
pub fn items_close_once(
    items: &[ClosedItem],
    notices: &[Notice],
    mails: &[pp_testkit::smtp::ReceivedMail],
    titles: &HashMap<uuid::Uuid, String>,
    emails: &HashMap<uuid::Uuid, String>,
) -> Verdict {
    let mut verdict =
        Verdict::new("each item closes once: one won or lost notice per bidder, the winner mailed");
    let mut held: HashMap<(uuid::Uuid, uuid::Uuid), Vec<&str>> = HashMap::new();
    for notice in notices
        .iter()
        .filter(|n| n.kind == "won" || n.kind == "lost")
    {
        held.entry((notice.item, notice.user))
            .or_default()
            .push(&notice.kind);
    }
    for item in items {
        let bidders: BTreeSet<uuid::Uuid> = item.bids.iter().map(|b| b.bidder).collect();
        for bidder in &bidders {
            let due = if Some(*bidder) == item.winner {
                "won"
            } else {
                "lost"
            };
            let kinds = held.remove(&(item.id, *bidder)).unwrap_or_default();
            if kinds != [due] {
                verdict.failures.push(format!(
                    "bidder {bidder} on item {} holds {kinds:?} where one {due} was due",
                    item.id
                ));
            }
        }
        let (Some(winner), Some(title)) = (item.winner, titles.get(&item.id)) else {
            continue;
        };
        let Some(address) = emails.get(&winner) else {
            continue;
        };
        let subject = winner_subject(title);
        let copies: Vec<&pp_testkit::smtp::ReceivedMail> = mails
            .iter()
            .filter(|mail| {
                mail.subject.as_deref() == Some(subject.as_str())
                    && mail
                        .recipients
                        .iter()
                        .any(|r| r.eq_ignore_ascii_case(address))
            })
            .collect();
        let ids: BTreeSet<_> = copies.iter().map(|m| m.message_id.clone()).collect();
        if copies.is_empty() || ids.len() > 1 {
            verdict.failures.push(format!(
                "the winner of item {} ({address}) got {} \"{subject}\" mails with {} Message-IDs",
                item.id,
                copies.len(),
                ids.len()
            ));
        }
    }
    for ((item, user), kinds) in held {
        verdict.failures.push(format!(
            "user {user} holds {kinds:?} for item {item} without a bid on it"
        ));
    }
    verdict
}

/// The subject of the mail that tells a winner they won `title`.
pub fn winner_subject(title: &str) -> String {
    format!("You won \u{201c}{title}\u{201d}")
}

/// No refresh token had two successors: of two rotations of one token sent
/// at once, at most one succeeded; when the other was answered
/// `token_reused`, the family is revoked, so what the first issued (the
/// next refresh token and the access token) is refused; and no session in
/// the database holds two live tokens (`forked`, from the store).
pub fn refresh_families_stay_chains(
    races: &[RefreshRace],
    forked: &[(uuid::Uuid, i64)],
    timeline: Timeline<'_>,
) -> Verdict {
    let mut verdict =
        Verdict::new("a refresh token has one successor; a reused one revokes its family");
    let ok = |answer: &Answer| matches!(answer, Answer::Status(200, _));
    for race in races {
        let excerpt = || {
            vec![format!(
                "{} two rotations: {:?}; then the successor: {:?}, its access token: {:?} [{}]",
                timeline.at(race.sent),
                race.answers,
                race.successor_after,
                race.access_after,
                timeline.faults_near(race.sent)
            )]
        };
        if race.answers.iter().all(ok) {
            verdict.failures.push(with_excerpt(
                "one refresh token rotated twice".to_owned(),
                excerpt(),
            ));
            continue;
        }
        let reused = race
            .answers
            .iter()
            .any(|a| *a == Answer::Status(401, Some("token_reused".to_owned())));
        if reused && race.answers.iter().any(ok) {
            let accepted = [&race.successor_after, &race.access_after]
                .into_iter()
                .flatten()
                .any(|a| a.is_success());
            if accepted {
                verdict.failures.push(with_excerpt(
                    "a revoked family's token was accepted after the reuse".to_owned(),
                    excerpt(),
                ));
            }
        }
    }
    for (session, live) in forked {
        verdict.failures.push(format!(
            "session {session} holds {live} live refresh tokens"
        ));
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
    /// Of those, answered 201.
    pub acknowledged: usize,
    /// Acknowledged and not stored.
    pub lost: usize,
    /// Stored more than once.
    pub duplicated: usize,
    /// Live events that arrived, during the fault or until the next one,
    /// out of sequence: a repeat, an older id, or one after a gap.
    pub stale_events: usize,
    /// The longest time, after a fault ended, until the last wrong answer
    /// to a request sent after it and before the next fault: how long the
    /// service took to be whole again.
    pub recovery: Duration,
    /// The wrong answers during and after it, by kind, most frequent first.
    pub wrong: BTreeMap<String, usize>,
}

impl FaultRow {
    /// The share of requests answered correctly during the fault, in %.
    pub fn availability(&self) -> f64 {
        if self.requests == 0 {
            100.0
        } else {
            self.correct as f64 * 100.0 / self.requests as f64
        }
    }
}

/// The table per fault kind.
pub fn table(
    attempts: &[BidAttempt],
    items: &[ClosedItem],
    subscriptions: &[Subscription],
    faults: &[FaultWindow],
) -> BTreeMap<&'static str, FaultRow> {
    let stored = stored_bids(items);
    // Every out-of-sequence arrival, by when it arrived.
    let stale: Vec<Instant> = subscriptions
        .iter()
        .flat_map(|s| {
            s.seen
                .windows(2)
                .filter(|pair| pair[1].id != pair[0].id + 1)
                .map(|pair| pair[1].at)
        })
        .collect();
    let mut rows: BTreeMap<&'static str, FaultRow> = BTreeMap::new();
    for (n, fault) in faults.iter().enumerate() {
        let row = rows.entry(fault.kind).or_default();
        row.injected += 1;
        let next = faults
            .get(n + 1)
            .map_or(fault.to + Duration::from_secs(30), |f| f.from);
        row.stale_events += stale
            .iter()
            .filter(|at| **at >= fault.from && **at < next)
            .count();
        for attempt in attempts {
            let during = attempt.sent >= fault.from && attempt.sent <= fault.to;
            let after = attempt.sent > fault.to && attempt.sent < next;
            if during {
                row.requests += 1;
                row.correct += usize::from(attempt.answer.is_correct());
                let copies = stored
                    .get(&(attempt.item, attempt.user))
                    .map_or(0, Vec::len);
                if matches!(attempt.answer, Answer::Status(201, _)) {
                    row.acknowledged += 1;
                    row.lost += usize::from(copies == 0);
                }
                row.duplicated += usize::from(copies > 1);
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

#[cfg(test)]
mod tests;
