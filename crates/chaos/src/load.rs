//! The clients: bidders and live subscribers, reaching the instances
//! directly and round-robin, as behind a load balancer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::{Rng, RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::history::{Answer, BidAttempt, History, RefreshRace, Seen, Subscription};

/// The instances' URLs, handed out in turn.
#[derive(Debug)]
pub struct Balancer {
    urls: Vec<String>,
    next: AtomicUsize,
}

impl Balancer {
    pub fn new(urls: Vec<String>) -> Self {
        Balancer {
            urls,
            next: AtomicUsize::new(0),
        }
    }

    /// The next instance: its index and URL.
    pub fn next(&self) -> (usize, &str) {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len();
        (index, &self.urls[index])
    }
}

/// A client that gives up on a request after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default()
}

/// Sends `request`; how it ended, with the problem code of an error.
pub async fn answer_of(request: reqwest::RequestBuilder) -> (Answer, Option<Value>) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.json::<Value>().await {
                Ok(body) => {
                    let code = body["error_code"].as_str().map(str::to_owned);
                    (Answer::Status(status, code), Some(body))
                }
                Err(error) if status == 204 => {
                    let _ = error;
                    (Answer::Status(status, None), None)
                }
                Err(error) => (Answer::None(format!("body: {error}")), None),
            }
        }
        Err(error) => (Answer::None(error.to_string()), None),
    }
}

/// A bidder: an account with its access token.
#[derive(Clone, Debug)]
pub struct Bidder {
    pub id: uuid::Uuid,
    pub token: String,
}

/// Bids on random items until `until`, one bid per item at most (a
/// retried bid after no answer may meet `bid_already_placed`), paced so
/// that its bids spread over the whole run. A bid is pitched at the item's
/// minimum next bid as read just before (so most are accepted), plus a
/// little; one in three is poisoned.
pub async fn bid(
    bidder: Bidder,
    items: Arc<Vec<uuid::Uuid>>,
    hot: usize,
    balancer: Arc<Balancer>,
    history: Arc<History>,
    seed: u64,
    until: Instant,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let client = client(Duration::from_secs(10));
    let mut done = std::collections::HashSet::new();
    let pace = until
        .saturating_duration_since(Instant::now())
        .checked_div(u32::try_from(items.len()).unwrap_or(u32::MAX).max(1))
        .unwrap_or_default();
    while Instant::now() < until && done.len() < items.len() {
        // Most bids go to the few hot items.
        let item = if rng.random_bool(0.7) {
            items[rng.random_range(0..hot)]
        } else {
            items[rng.random_range(0..items.len())]
        };
        if !done.insert(item) {
            continue;
        }
        let (_, url) = balancer.next();
        let minimum = match answer_of(client.get(format!("{url}/api/v1/items/{item}"))).await {
            (Answer::Status(200, _), Some(body)) => body["minimum_next_bid"].as_i64(),
            _ => None,
        };
        let amount = minimum.unwrap_or(100) + rng.random_range(0..200_i64);
        let poison = rng.random_bool(0.3).then(|| {
            (
                amount + rng.random_range(0..2_000_i64),
                rng.random_range(10..60_i64),
            )
        });
        let body = match poison {
            Some((budget, step)) => {
                json!({"amount": amount, "poison": {"budget": budget, "step": step}})
            }
            None => json!({"amount": amount}),
        };
        let (instance, url) = balancer.next();
        let sent = Instant::now();
        let (answer, _) = answer_of(
            client
                .post(format!("{url}/api/v1/items/{item}/bid"))
                .bearer_auth(&bidder.token)
                .json(&body),
        )
        .await;
        history.bid(BidAttempt {
            user: bidder.id,
            item,
            amount,
            poison,
            instance,
            sent,
            answered: Instant::now(),
            answer,
        });
        // Around the pace, so that bidders do not march in step.
        let jitter = rng.random_range(0.5..1.5);
        tokio::time::sleep(pace.mul_f64(jitter)).await;
    }
}

/// Registers a new account every second or two until `until`: each
/// answered 201 is owed its verification mail, whatever crashes meanwhile.
pub async fn register(balancer: Arc<Balancer>, history: Arc<History>, seed: u64, until: Instant) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let client = client(Duration::from_secs(10));
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let email = format!("newcomer-{n}-{seed:x}@chaos.test");
        let (_, url) = balancer.next();
        let (answer, _) = answer_of(
            client
                .post(format!("{url}/api/v1/auth/register"))
                .json(&json!({"email": email, "password": crate::PASSWORD})),
        )
        .await;
        history.registration(crate::history::Registration { email, answer });
        tokio::time::sleep(Duration::from_millis(rng.random_range(800..2_000))).await;
    }
}

/// The `refresh_token` cookie a response sets.
fn refresh_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("refresh_token="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| !v.is_empty())
}

/// Sessions until `until`: log in, rotate the refresh token, log out, and
/// check at once (on the next instance) that the logged-out access token
/// is refused; every logged-out token is recorded, to be refused ever
/// after (the checker tries them all again after the faults). Three
/// sessions in ten instead rotate their refresh token twice at once.
pub async fn sessions(
    emails: Vec<String>,
    balancer: Arc<Balancer>,
    history: Arc<History>,
    seed: u64,
    until: Instant,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let client = client(Duration::from_secs(10));
    while Instant::now() < until && !emails.is_empty() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1_000))).await;
        let email = &emails[rng.random_range(0..emails.len())];
        let (_, url) = balancer.next();
        let Ok(login) = client
            .post(format!("{url}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": crate::PASSWORD}))
            .send()
            .await
        else {
            continue;
        };
        let Some(refresh) = refresh_cookie(&login) else {
            continue;
        };
        if rng.random_bool(0.3) {
            history.refresh_race(race_refresh(&client, &balancer, &refresh).await);
            continue;
        }
        let (_, url) = balancer.next();
        let Ok(rotated) = client
            .post(format!("{url}/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await
        else {
            continue;
        };
        if rotated.status() != 200 {
            continue;
        }
        let Ok(body) = rotated.json::<Value>().await else {
            continue;
        };
        let Some(access) = body["access_token"].as_str().map(str::to_owned) else {
            continue;
        };
        let (_, url) = balancer.next();
        let logged_out = client
            .post(format!("{url}/api/v1/auth/logout"))
            .bearer_auth(&access)
            .send()
            .await;
        if !logged_out.is_ok_and(|r| r.status() == 204) {
            continue;
        }
        if let Ok(mut revoked) = history.revoked.lock() {
            revoked.push(access.clone());
        }
        let (instance, url) = balancer.next();
        if let Ok(me) = client
            .get(format!("{url}/api/v1/users/me"))
            .bearer_auth(&access)
            .send()
            .await
            && me.status().is_success()
            && let Ok(mut accepted) = history.accepted_after_revocation.lock()
        {
            accepted.push(format!(
                "instance {} took a token just logged out",
                instance + 1
            ));
        }
    }
}

/// Rotates `refresh` on two instances at once (a stolen token used by
/// the thief and the owner together), then tries what the rotation that
/// won issued: the family was revoked by the loser, so both are refused.
async fn race_refresh(client: &reqwest::Client, balancer: &Balancer, refresh: &str) -> RefreshRace {
    let rotate = |url: &str| {
        client
            .post(format!("{url}/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": refresh}))
    };
    let sent = Instant::now();
    let ((first, first_body), (second, second_body)) = futures_util::future::join(
        answer_of(rotate(balancer.next().1)),
        answer_of(rotate(balancer.next().1)),
    )
    .await;
    let issued = [first_body, second_body]
        .into_iter()
        .flatten()
        .find(|body| body["access_token"].is_string());
    let (mut successor_after, mut access_after) = (None, None);
    if let Some(issued) = issued {
        let (_, url) = balancer.next();
        successor_after = Some(
            answer_of(
                client
                    .post(format!("{url}/api/v1/auth/refresh"))
                    .json(&json!({"refresh_token": issued["refresh_token"]})),
            )
            .await
            .0,
        );
        let (_, url) = balancer.next();
        access_after = Some(
            answer_of(
                client
                    .get(format!("{url}/api/v1/users/me"))
                    .bearer_auth(issued["access_token"].as_str().unwrap_or_default()),
            )
            .await
            .0,
        );
    }
    RefreshRace {
        sent,
        answers: [first, second],
        successor_after,
        access_after,
    }
}

/// Follows `item`'s live events until its `closed` event (or `until`),
/// reconnecting with `Last-Event-ID` to the next instance whenever the
/// stream breaks.
pub async fn subscribe(
    item: uuid::Uuid,
    balancer: Arc<Balancer>,
    history: Arc<History>,
    until: Instant,
) {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        // A stream that says nothing for three keep-alives is dead.
        .read_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut subscription = Subscription {
        item,
        ..Subscription::default()
    };
    let mut last: Option<u64> = None;
    let mut closed = false;
    while !closed && Instant::now() < until {
        let (_, url) = balancer.next();
        let mut request = client.get(format!("{url}/events/{item}"));
        if let Some(last) = last {
            request = request.header("last-event-id", last.to_string());
        }
        let Ok(response) = request.send().await else {
            subscription.reconnects += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if response.status() == 204 {
            // Everything was seen, the `closed` event included.
            break;
        }
        if !response.status().is_success() {
            subscription.reconnects += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let mut bytes = response.bytes_stream();
        let mut buffer = String::new();
        'stream: while let Some(chunk) = bytes.next().await {
            let Ok(chunk) = chunk else { break };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let (mut event, mut id) = (None, None);
                for line in frame.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = Some(name.to_owned());
                    } else if let Some(value) = line.strip_prefix("id: ") {
                        id = value.trim().parse::<u64>().ok();
                    }
                }
                if let (Some(event), Some(id)) = (event, id) {
                    last = Some(id);
                    closed = event == "closed";
                    subscription.seen.push(Seen {
                        event,
                        id,
                        at: Instant::now(),
                    });
                    if closed {
                        break 'stream;
                    }
                }
            }
        }
        if !closed {
            subscription.reconnects += 1;
        }
    }
    history.subscription(subscription);
}

/// Draws from `rng`: a duration between `low` and `high` milliseconds.
pub fn millis(rng: &mut impl Rng, low: u64, high: u64) -> Duration {
    Duration::from_millis(rng.random_range(low..high))
}
