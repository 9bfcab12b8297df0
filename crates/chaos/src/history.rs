//! What the clients saw, recorded as it happened, for the checker.

use std::sync::Mutex;
use std::time::Instant;

/// How a request ended, as its client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status, with the problem's `code` for an error.
    Status(u16, Option<String>),
    /// No answer: refused, reset, timed out. The request may or may not
    /// have taken effect.
    None(String),
}

impl Answer {
    /// A 2xx answer.
    pub fn is_success(&self) -> bool {
        matches!(self, Answer::Status(200..=299, _))
    }

    /// A success, or a refusal the API documents (4xx, or 503 with its
    /// problem code): the service worked as it should.
    pub fn is_correct(&self) -> bool {
        match self {
            Answer::Status(status, code) => {
                *status < 500 || (*status == 503 && code.as_deref() == Some("service_unavailable"))
            }
            Answer::None(_) => false,
        }
    }
}

/// One bid request.
#[derive(Clone, Debug)]
pub struct BidAttempt {
    pub user: uuid::Uuid,
    pub item: uuid::Uuid,
    pub amount: i64,
    pub poison: Option<(i64, i64)>,
    pub instance: usize,
    pub sent: Instant,
    pub answered: Instant,
    pub answer: Answer,
}

/// One SSE event a subscriber received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub event: String,
    pub id: u64,
    /// When it arrived.
    pub at: Instant,
}

/// One subscriber's whole history across its reconnects.
#[derive(Clone, Debug, Default)]
pub struct Subscription {
    pub item: uuid::Uuid,
    pub seen: Vec<Seen>,
    pub reconnects: u32,
}

/// One fault, and when it was in force.
#[derive(Clone, Debug)]
pub struct FaultWindow {
    pub kind: &'static str,
    pub target: String,
    pub from: Instant,
    pub to: Instant,
}

/// One registration: the address, and how it was answered.
#[derive(Clone, Debug)]
pub struct Registration {
    pub email: String,
    pub answer: Answer,
}

/// Two rotations of one refresh token sent at once to two instances: at
/// most one may succeed, and the family is then revoked.
#[derive(Clone, Debug)]
pub struct RefreshRace {
    pub sent: Instant,
    pub answers: [Answer; 2],
    /// A successor issued by the race, tried after it: how it was answered
    /// (it belongs to a revoked family, so only a refusal is right).
    pub successor_after: Option<Answer>,
    /// The successor's access token on `/users/me` after the race.
    pub access_after: Option<Answer>,
}

/// Everything recorded during a run.
#[derive(Debug, Default)]
pub struct History {
    pub bids: Mutex<Vec<BidAttempt>>,
    pub registrations: Mutex<Vec<Registration>>,
    /// Access tokens logged out (answered 204), to be refused ever after.
    pub revoked: Mutex<Vec<String>>,
    /// A revoked token accepted (the instance, and when).
    pub accepted_after_revocation: Mutex<Vec<String>>,
    pub subscriptions: Mutex<Vec<Subscription>>,
    pub faults: Mutex<Vec<FaultWindow>>,
    pub refresh_races: Mutex<Vec<RefreshRace>>,
}

impl History {
    pub fn bid(&self, attempt: BidAttempt) {
        if let Ok(mut bids) = self.bids.lock() {
            bids.push(attempt);
        }
    }

    pub fn registration(&self, registration: Registration) {
        if let Ok(mut registrations) = self.registrations.lock() {
            registrations.push(registration);
        }
    }

    pub fn fault(&self, window: FaultWindow) {
        if let Ok(mut faults) = self.faults.lock() {
            faults.push(window);
        }
    }

    pub fn refresh_race(&self, race: RefreshRace) {
        if let Ok(mut races) = self.refresh_races.lock() {
            races.push(race);
        }
    }

    pub fn subscription(&self, subscription: Subscription) {
        if let Ok(mut subscriptions) = self.subscriptions.lock() {
            subscriptions.push(subscription);
        }
    }
}
