//! Background work `serve` runs beside the HTTP server (unless
//! `RUN_WORKERS=false`) and `poison-pill worker` runs alone: closing
//! auctions when their time comes, delivering the mail outbox, and
//! forgetting expired WebSocket tickets. Safe with several instances
//! running: closing and delivering claim their rows with SKIP LOCKED, so
//! each item closes once and each message goes out once (but for a worker
//! that dies mid-delivery: at least once).
//!
//! Each loop is supervised ([`Workers`]): one that panics is logged,
//! counted in `worker_restarts_total` and started again; on shutdown each
//! is told to stop between rounds and awaited, so a message in delivery is
//! settled before the process gives back what it still holds.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use pp_domain::auth::TicketService;
use pp_domain::outbox::{OutboxStore, OutboxWorker};
use pp_domain::photos::PhotoService;
use pp_domain::ports::{Clock, SystemClock};
use pp_domain::retention::Retention;
use pp_domain::service::AuctionService;

/// How often due items are looked for: an item closes within this (plus one
/// short transaction) of its `close_at`.
pub const CLOSE_EVERY: Duration = Duration::from_millis(250);

/// Items closed per transaction.
const CLOSE_BATCH: u32 = 100;

/// How often expired tickets are purged.
pub const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Closes due items forever, every [`CLOSE_EVERY`]. An item that cannot be
/// read is logged at error and counted in `auction_close_failures_total`;
/// the store passes it by for a while, so the others keep closing.
pub async fn close_auctions(auctions: AuctionService, mut stop: Stop) {
    let mut every = tokio::time::interval(CLOSE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while next_tick(&mut every, &mut stop).await {
        // Keep going while full batches come back: a backlog (after a
        // restart, or many items closing together) clears at once.
        loop {
            match auctions.close_due_items(CLOSE_BATCH).await {
                Ok(round) => {
                    for listed in &round.closed {
                        tracing::info!(item = %listed.item.id, status = listed.item.status.as_str(), bids = listed.standing.bid_count, "auction closed");
                    }
                    for failure in &round.failed {
                        tracing::error!(
                            item = %failure.item,
                            error = %failure.error,
                            failures = failure.failures,
                            retry_at = %failure.retry_at,
                            "an auction due to close cannot be read; it stays open and is retried later"
                        );
                    }
                    metrics::counter!("auctions_closed_total").increment(round.closed.len() as u64);
                    metrics::counter!("auction_close_failures_total")
                        .increment(round.failed.len() as u64);
                    if round.taken() < CLOSE_BATCH as usize {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "closing due auctions failed; retrying shortly");
                    break;
                }
            }
        }
    }
}

/// Purges expired WebSocket tickets forever, every [`PURGE_EVERY`].
pub async fn purge_tickets(tickets: TicketService, mut stop: Stop) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while next_tick(&mut every, &mut stop).await {
        if let Err(error) = tickets.purge_expired().await {
            tracing::warn!(error = %error, "purging expired tickets failed");
        }
    }
}

/// How often due mail is looked for: a message goes out within this of
/// being written (or of its retry time).
pub const DELIVER_EVERY: Duration = Duration::from_millis(250);

/// Messages claimed at once: one, so the lease covers one delivery (at most
/// `pp_mail::SEND_TIMEOUT`, well within it) and a slow relay never lets a
/// claim lapse while its message waits its turn.
const DELIVERY_BATCH: u32 = 1;

/// How often the outbox's gauges are refreshed.
pub const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// Delivers due mail forever, every [`DELIVER_EVERY`]; counts each outcome
/// in `outbox_deliveries_total{outcome}` and logs each failure (without the
/// message: it may carry a secret link).
pub async fn deliver_mail(outbox: OutboxWorker, mut stop: Stop) {
    let mut every = tokio::time::interval(DELIVER_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while next_tick(&mut every, &mut stop).await {
        // A backlog (after an outage) is worked through at once, one
        // message at a time, stopping between two when asked.
        while !*stop.borrow() {
            match outbox.deliver_due(DELIVERY_BATCH).await {
                Ok(round) => {
                    for failure in &round.failures {
                        // With the id of the request that caused the mail.
                        let _span = tracing::info_span!(
                            "mail_delivery",
                            request_id = failure.request_id.as_deref(),
                            outbox_id = %failure.id,
                            attempt = failure.attempt,
                        )
                        .entered();
                        match failure.retry_at {
                            Some(retry_at) => {
                                tracing::warn!(kind = failure.kind, error = %failure.error, %retry_at, "mail delivery failed; retrying later")
                            }
                            None => {
                                tracing::error!(kind = failure.kind, error = %failure.error, "mail delivery failed for good; the message is dead (`poison-pill outbox retry --dead` sends it again)")
                            }
                        }
                    }
                    for (outcome, count) in [
                        ("sent", round.sent),
                        ("retry", round.retried),
                        ("dead", round.dead),
                    ] {
                        metrics::counter!("outbox_deliveries_total", "outcome" => outcome)
                            .increment(count as u64);
                    }
                    if round.claimed < DELIVERY_BATCH as usize {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "reading the outbox failed; retrying shortly");
                    break;
                }
            }
        }
    }
}

/// Keeps `outbox_messages{state}`, `outbox_oldest_due_seconds` and
/// `outbox_oldest_pending_seconds` current, every [`GAUGE_EVERY`].
pub async fn outbox_gauges(store: Arc<dyn OutboxStore>) {
    let mut every = tokio::time::interval(GAUGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        let now = SystemClock.now();
        match store.status(now).await {
            Ok(status) => {
                for (state, count) in [("pending", status.pending), ("dead", status.dead)] {
                    metrics::gauge!("outbox_messages", "state" => state).set(count as f64);
                }
                let age = |since: Option<pp_domain::Timestamp>| {
                    since.map_or(0.0, |at| {
                        (now - at).num_milliseconds().max(0) as f64 / 1000.0
                    })
                };
                metrics::gauge!("outbox_oldest_due_seconds").set(age(status.oldest_due));
                metrics::gauge!("outbox_oldest_pending_seconds").set(age(status.oldest_pending));
            }
            Err(error) => tracing::warn!(error = %error, "reading the outbox's counts failed"),
        }
    }
}

/// How often the retention purges run.
pub const RETAIN_EVERY: Duration = Duration::from_secs(3600);

/// Rows one purge statement removes at most.
const PURGE_BATCH: u32 = 1_000;

/// Purges what is past retention, every [`RETAIN_EVERY`] (the first time
/// at start), counting `retention_purged_total{what}`.
pub async fn purge_retained(retention: Retention, mut stop: Stop) {
    let mut every = tokio::time::interval(RETAIN_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while next_tick(&mut every, &mut stop).await {
        match retention.purge_all(PURGE_BATCH).await {
            Ok(purged) => {
                for (what, count) in purged {
                    metrics::counter!("retention_purged_total", "what" => what.as_str())
                        .increment(count);
                    if count > 0 {
                        tracing::info!(
                            what = what.as_str(),
                            count,
                            "purged what is past retention"
                        );
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "a retention purge failed; the next run carries on")
            }
        }
    }
}

/// How often stored images no photo names are looked for.
const MEDIA_PURGE_EVERY: Duration = Duration::from_secs(15 * 60);

/// How long an unnamed image is kept: an upload stores its images before
/// its row, and one in progress must not lose them.
const MEDIA_GRACE: chrono::Duration = chrono::Duration::hours(1);

/// Deletes the stored images no photo names (removed photos, uploads that
/// failed or lost a race after storing), older than [`MEDIA_GRACE`].
pub async fn purge_media(photos: PhotoService, mut stop: Stop) {
    let mut every = tokio::time::interval(MEDIA_PURGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while next_tick(&mut every, &mut stop).await {
        match photos.purge(MEDIA_GRACE).await {
            Ok(purged) => {
                metrics::counter!("media_purged_total").increment(purged);
                if purged > 0 {
                    tracing::info!(purged, "deleted images no photo names");
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "the media purge failed; the next run carries on")
            }
        }
    }
}

/// Tells a loop to stop: `true` once shutdown began.
pub type Stop = watch::Receiver<bool>;

/// Waits for the next tick; `false` when asked to stop instead.
async fn next_tick(every: &mut tokio::time::Interval, stop: &mut Stop) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = every.tick() => true,
        _ = stop.changed() => false,
    }
}

/// The background loops, supervised, until [`Workers::stop`].
#[derive(Debug)]
pub struct Workers {
    stop: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
}

impl Workers {
    /// No loops yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            loops: Vec::new(),
        }
    }

    /// Runs `work` (given the stop signal), starting it again, after a
    /// second, whenever it panics.
    pub fn supervise<F, Fut>(&mut self, name: &'static str, work: F)
    where
        F: Fn(Stop) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.subscribe();
        self.loops.push(tokio::spawn(async move {
            loop {
                let run = tokio::spawn(work(stop.clone()));
                // Cutting the supervisor off (a loop that did not stop in
                // time) cuts its loop off too.
                let _cut_with_me = AbortOnDrop(run.abort_handle());
                match run.await {
                    Err(failure) if failure.is_panic() && !*stop.borrow() => {
                        tracing::error!(
                            worker = name,
                            "a background loop panicked; restarting it in a second"
                        );
                        metrics::counter!("worker_restarts_total", "worker" => name).increment(1);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    _ => return,
                }
            }
        }));
    }

    /// Asks every loop to stop between rounds and waits up to `within` for
    /// them; those still running then are cut off.
    pub async fn stop(self, within: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + within;
        for work in self.loops {
            let abort = work.abort_handle();
            if tokio::time::timeout_at(deadline, work).await.is_err() {
                tracing::warn!("a background loop did not stop in time; cut off");
                abort.abort();
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}
