//! Background work `serve` runs beside the HTTP server: closing auctions
//! when their time comes, and forgetting expired WebSocket tickets. Safe
//! with several instances running: closing claims items with SKIP LOCKED,
//! so each item closes exactly once, on whichever instance gets it first.

use std::time::Duration;

use pp_domain::auth::TicketService;
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
