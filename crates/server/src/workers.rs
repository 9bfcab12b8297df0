//! Background work `serve` runs beside the HTTP server (unless
//! `RUN_WORKERS=false`) and `poison-pill worker` runs alone: closing
//! auctions when their time comes, delivering the mail outbox, and
//! forgetting expired WebSocket tickets. Safe with several instances
//! running: closing and delivering claim their rows with SKIP LOCKED, so
//! each item closes once and each message goes out once (but for a worker
//! that dies mid-delivery: at least once).

use std::sync::Arc;
use std::time::Duration;

use pp_domain::auth::TicketService;
use pp_domain::outbox::{OutboxStore, OutboxWorker};
use pp_domain::ports::{Clock, SystemClock};
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
pub async fn close_auctions(auctions: AuctionService) {
    let mut every = tokio::time::interval(CLOSE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
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
pub async fn purge_tickets(tickets: TicketService) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        if let Err(error) = tickets.purge_expired().await {
            tracing::warn!(error = %error, "purging expired tickets failed");
        }
    }
}

/// How often due mail is looked for: a message goes out within this of
/// being written (or of its retry time).
pub const DELIVER_EVERY: Duration = Duration::from_millis(250);

/// Messages claimed at once: each is sent before the next is, all within
/// the claim's lease.
const DELIVERY_BATCH: u32 = 20;

/// How often the outbox's gauges are refreshed.
pub const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// Delivers due mail forever, every [`DELIVER_EVERY`]; counts each outcome
/// in `outbox_deliveries_total{outcome}` and logs each failure (without the
/// message: it may carry a secret link).
pub async fn deliver_mail(outbox: OutboxWorker) {
    let mut every = tokio::time::interval(DELIVER_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        // A backlog (after an outage) is worked through at once.
        loop {
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

/// Keeps `outbox_messages{state}` and `outbox_oldest_due_seconds` current,
/// every [`GAUGE_EVERY`].
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
                let waited = status.oldest_due.map_or(0.0, |due| {
                    (now - due).num_milliseconds().max(0) as f64 / 1000.0
                });
                metrics::gauge!("outbox_oldest_due_seconds").set(waited);
            }
            Err(error) => tracing::warn!(error = %error, "reading the outbox's counts failed"),
        }
    }
}
