//! Live updates: an item's public events over Server-Sent Events, and each
//! user's notifications over a WebSocket opened with a single-use ticket.
//!
//! An SSE stream never misses an event and never repeats one: event ids are
//! the item's bid count, the stream subscribes before it reads where the
//! item stands, drops what it already sent, and fills any gap (an event lost
//! in transit, or a `Last-Event-ID` from before a reconnect) from the
//! database. A subscriber that cannot keep up is dropped; its client
//! reconnects with `Last-Event-ID` and gets exactly what it missed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BodyStream, BoxBody};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::from_fn;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use pp_domain::auth::{SocketHolder, TicketService};
use pp_domain::live::{ItemEvent, LiveStream, Notification, NotificationData, PriceEvent};
use pp_domain::service::AuctionService;
use pp_domain::{ItemId, ListedItem, Money};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::items::{ItemBody, item_id};
use crate::errors::{invalid_ticket, item_not_found};
use crate::extract::Authenticated;
use crate::fanout::{Frame, Frames};
use crate::middleware::{ClientIp, require_user};
use crate::problem::{ApiError, ProblemBody};
use crate::state::AppState;
use crate::streams::{EndsWithRetry, SharedReads, StreamSlot};

/// Price events fetched per replay query.
const REPLAY_CHUNK: u32 = 500;

/// How much of a streamed body the server gathers before it writes
/// (actix's `h1_write_buffer_size`; its default is 32 KiB).
pub const WRITE_BUFFER: usize = 4 * 1024;

/// The largest piece a stream hands the server at once: with
/// [`WRITE_BUFFER`] gathered at most before it, the two fit the 8 KiB
/// buffer every connection starts with, so a burst (a frame of a whole
/// bid batch) never makes a stream's buffer grow, and ten thousand
/// streams keep their memory after it.
pub const MAX_CHUNK: usize = 3 * 1024;

/// `price`: after every accepted bid.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceBody {
    item_id: Uuid,
    current_price: i64,
    minimum_next_bid: i64,
    bid_count: u64,
    at: DateTime<Utc>,
    /// When bidding ends now (soft close may have moved it).
    close_at: DateTime<Utc>,
    /// How many times a late bid moved the close.
    extensions_used: u32,
    /// The item's ledger head after this bid (64 lower-case hex digits):
    /// what a watcher compares the revealed bids with after close.
    #[schema(required = true, pattern = "^[0-9a-f]{64}$")]
    ledger_head: Option<String>,
}

/// `extended`: right after the `price` of a bid that moved the close (soft
/// close), under the same id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtendedBody {
    item_id: Uuid,
    /// The close the bid moved the item to.
    close_at: DateTime<Utc>,
    /// Extensions used by then.
    extensions_used: u32,
}

impl From<&PriceEvent> for PriceBody {
    fn from(event: &PriceEvent) -> Self {
        PriceBody {
            item_id: event.item.as_uuid(),
            current_price: event.current_price.minor_units(),
            minimum_next_bid: event.minimum_next_bid,
            bid_count: event.bid_count,
            at: event.at,
            close_at: event.closing.close_at,
            extensions_used: event.closing.extensions_used,
            ledger_head: event.ledger_head.map(|head| head.to_string()),
        }
    }
}

/// `closed`: once, when bidding ends (closed, or cancelled before any bid).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClosedBody {
    item_id: Uuid,
    /// What the winner pays; `null` without a winner.
    #[schema(required = true)]
    final_price: Option<i64>,
    has_winner: bool,
    status: ClosedStatus,
}

/// How bidding ended.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClosedStatus {
    /// At `close_at`.
    Closed,
    /// An admin cancelled the item.
    Cancelled,
}

/// One SSE message, encoded (`id`, `event`, `data`).
fn sse_message(id: u64, name: &'static str, data: String) -> Bytes {
    sse_bytes(russe::Event::Message(russe::Message {
        data: data.into(),
        event: Some(name.into()),
        retry: None,
        id: Some(id.to_string().into()),
    }))
}

fn sse_bytes(event: russe::Event) -> Bytes {
    // The fields are ours (no line breaks in JSON or names): it encodes.
    event
        .into_bytestring()
        .map(bytestring::ByteString::into_bytes)
        .unwrap_or_default()
}

/// An item event as its SSE messages: its own, and for a bid that moved
/// the close, `extended` after it under the same id. Encoded once per
/// instance and shared by every stream of the item ([`crate::fanout`]).
pub fn encode_item_event(event: &ItemEvent) -> Bytes {
    let own = sse_event(event);
    let ItemEvent::Price(price) = event else {
        return own;
    };
    let Some(closing) = price.extension else {
        return own;
    };
    let body = ExtendedBody {
        item_id: price.item.as_uuid(),
        close_at: closing.close_at,
        extensions_used: closing.extensions_used,
    };
    let extended = sse_message(
        event.id(),
        "extended",
        serde_json::to_string(&body).unwrap_or_default(),
    );
    let mut both = Vec::with_capacity(own.len() + extended.len());
    both.extend_from_slice(&own);
    both.extend_from_slice(&extended);
    Bytes::from(both)
}

fn sse_event(event: &ItemEvent) -> Bytes {
    let (name, data) = match event {
        ItemEvent::Price(price) => ("price", serde_json::to_string(&PriceBody::from(price))),
        ItemEvent::Closed(closed) => (
            "closed",
            serde_json::to_string(&ClosedBody {
                item_id: closed.item.as_uuid(),
                final_price: closed.final_price.map(Money::minor_units),
                has_winner: closed.has_winner,
                status: if closed.cancelled {
                    ClosedStatus::Cancelled
                } else {
                    ClosedStatus::Closed
                },
            }),
        ),
    };
    sse_message(event.id(), name, data.unwrap_or_default())
}

/// The id the stream stands at once `listed` is known: its bid count, one
/// more once bidding ended.
fn position_of(listed: &ListedItem) -> u64 {
    ItemEvent::closed(listed).map_or(listed.standing.bid_count, |closed| closed.id())
}

/// Counts an open stream in the `sse_streams` gauge for as long as it lives,
/// however it ends (also when the client goes away mid-stream).
struct OpenStream;

impl OpenStream {
    fn count() -> Self {
        metrics::gauge!("sse_streams").increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("sse_streams").decrement(1.0);
    }
}

/// One subscriber's stream.
struct Feed {
    auctions: AuctionService,
    /// The keep-alive reads this instance's streams of the item share.
    shared: std::sync::Arc<SharedReads>,
    item: ItemId,
    /// The id of the last event sent (or queued in `ready`).
    last: u64,
    /// Where the database says the item stands while the stream is still
    /// replaying up to it, one chunk at a time: a client far behind never
    /// makes the server hold its whole backlog. Boxed: most streams never
    /// replay, and every open stream carries this field.
    replaying_to: Option<Box<ListedItem>>,
    /// The item's live events, encoded once for every stream of it here.
    live: Frames,
    keep_alive: tokio::time::Interval,
    /// Encoded messages waiting to be written, in order.
    ready: VecDeque<Bytes>,
    /// Bidding ended and its event is queued: nothing can follow.
    finished: bool,
    /// Ends the stream when the process begins to stop.
    stopping: CancellationToken,
    _counted: OpenStream,
    /// Its place among its client's open streams.
    _slot: StreamSlot,
}

impl Feed {
    /// Replays every event after `self.last` up to `listed`'s position from
    /// the database, starting with its first chunk.
    async fn catch_up(&mut self, listed: ListedItem) -> Result<(), ApiError> {
        self.replaying_to = Some(Box::new(listed));
        self.replay_chunk().await
    }

    /// Queues the next chunk of the replay; once the replay reached its
    /// target, the `closed` event if bidding ended there.
    async fn replay_chunk(&mut self) -> Result<(), ApiError> {
        let Some(target) = self.replaying_to.take() else {
            return Ok(());
        };
        if self.last < target.standing.bid_count {
            let missed = self
                .auctions
                .price_events(&target.item, self.last, REPLAY_CHUNK)
                .await?;
            match missed.last().map(|e| e.bid_count) {
                Some(newest) => {
                    self.ready.extend(
                        missed
                            .iter()
                            .map(|e| encode_item_event(&ItemEvent::Price(*e))),
                    );
                    self.last = newest;
                }
                // Bids from before the price history was kept: skip ahead.
                None => self.last = target.standing.bid_count,
            }
            if self.last < target.standing.bid_count {
                self.replaying_to = Some(target);
                return Ok(());
            }
        }
        if let Some(closed) = ItemEvent::closed(&target)
            && self.last < closed.id()
        {
            self.ready.push_back(sse_event(&closed));
            self.last = closed.id();
            self.finished = true;
        }
        Ok(())
    }

    /// Takes a frame of live events: queues what it holds after the last
    /// event sent, fills the gap first if events are missing (or the relay
    /// says they may be), ignores what was already sent.
    async fn take(&mut self, frame: Arc<Frame>) -> Result<(), ApiError> {
        match self.take_in_order(frame) {
            None => Ok(()),
            // The database's part is boxed: it is rare, and every open
            // stream's state would otherwise be as large as its deepest
            // query's.
            Some(gap) => Box::pin(self.fill_gap(gap.made_at())).await,
        }
    }

    /// Queues the frame's events after the last one sent; hands the frame
    /// back if events are missing before it.
    fn take_in_order(&mut self, frame: Arc<Frame>) -> Option<Arc<Frame>> {
        if frame.is_gap() || frame.first() > self.last + 1 {
            return Some(frame);
        }
        if frame.last() > self.last {
            self.ready.push_back(frame.after(self.last));
            self.last = frame.last();
            self.finished = frame.finished();
        }
        None
    }

    async fn fill_gap(&mut self, since: std::time::Instant) -> Result<(), ApiError> {
        let listed = self.read_since(since).await?;
        self.catch_up(listed).await
    }

    /// The keep-alive: catches up with where the item stood at most one
    /// keep-alive ago (events pub/sub lost, a close nobody announced).
    async fn check(&mut self) -> Result<(), ApiError> {
        let listed = self.shared_read().await?;
        self.catch_up(listed).await
    }

    /// Where the item stands in a read begun at or after `since` (the
    /// frame that showed events missing was made then, so the read sees
    /// them), shared by every stream of the item here that needs one: a
    /// relay's gap costs one read, not one per watcher.
    async fn read_since(&self, since: std::time::Instant) -> Result<ListedItem, ApiError> {
        let id = self.item;
        self.shared
            .item_since(
                id,
                since,
                || async move { Ok(self.auctions.item(id).await?) },
            )
            .await?
            .ok_or_else(item_not_found)
    }

    /// Where the item stood at most one keep-alive ago, in a read this
    /// instance's streams of the item share: thousands of watchers cost one
    /// query per keep-alive, not one each.
    async fn shared_read(&self) -> Result<ListedItem, ApiError> {
        let id = self.item;
        self.shared
            .item(id, || async move { Ok(self.auctions.item(id).await?) })
            .await?
            .ok_or_else(item_not_found)
    }

    /// The next thing to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(mut bytes) = self.ready.pop_front() {
                if bytes.len() > MAX_CHUNK {
                    // A slice of the same shared bytes, not a copy.
                    let first = bytes.split_to(MAX_CHUNK);
                    self.ready.push_front(bytes);
                    return Some(first);
                }
                return Some(bytes);
            }
            if self.finished || self.stopping.is_cancelled() {
                return None;
            }
            if self.replaying_to.is_some() {
                if Box::pin(self.replay_chunk()).await.is_err() {
                    return None;
                }
                continue;
            }
            let stopping = self.stopping.clone();
            let outcome = tokio::select! {
                // The client reconnects, with Last-Event-ID, to an instance
                // that stays: nothing is missed.
                () = stopping.cancelled() => return None,
                live = self.live.next() => match live {
                    Some(frame) => self.take(frame).await,
                    // Fell behind, or the hub went away: the client
                    // reconnects with Last-Event-ID.
                    None => return None,
                },
                _ = self.keep_alive.tick() => {
                    let checked = Box::pin(self.check()).await;
                    if checked.is_ok() && self.ready.is_empty() {
                        return Some(Bytes::from_static(b": keep-alive\n\n"));
                    }
                    checked
                }
            };
            if outcome.is_err() {
                return None;
            }
        }
    }
}

/// An item's live events (no auth).
#[utoipa::path(tag = "live",
    params(("id" = Uuid, Path, description = "The item's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last id received, to resume")),
    responses(
        (status = 200, description = "`text/event-stream`: `snapshot` (the item), then `price` after every bid (and `extended` after one that moved the close, same id) and `closed` at the end; ids are the bid count (`closed`: one more); a comment every 15 s", content_type = "text/event-stream", body = PriceBody),
        (status = 204, description = "Resuming after the `closed` event: nothing will follow"),
        (status = 404, description = "`item_not_found`", body = ProblemBody),
        (status = 429, description = "`too_many_streams`: this address holds `LIVE_STREAMS_PER_IP` streams open already", body = ProblemBody)))]
#[get("/items/{id}/events")]
pub async fn item_events(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    stream_item_events(request, state, path).await
}

/// The stream both paths serve.
async fn stream_item_events(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = item_id(&path)?;
    let client = request
        .extensions()
        .get::<ClientIp>()
        .map(|ip| ip.limit_key(state.limits.ipv6_prefix).to_string());
    let slot = state
        .sse_streams
        .open(client.as_deref().unwrap_or("unknown"))
        .await?;
    // Subscribe before reading, so nothing published in between is missed.
    let live = state.item_frames.subscribe(id);
    let listed = state.auctions.item(id).await?.ok_or_else(item_not_found)?;
    let position = position_of(&listed);
    let resume_from = request
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|last| *last <= position);

    let keep_alive = state.keep_alive;
    let mut feed = Feed {
        auctions: state.auctions.clone(),
        shared: std::sync::Arc::clone(&state.keep_alive_reads),
        item: id,
        last: 0,
        live,
        keep_alive: tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive),
        // Browsers reconnect this soon after a dropped connection.
        ready: VecDeque::from([sse_bytes(russe::Event::Retry(Duration::from_secs(2)))]),
        finished: false,
        replaying_to: None,
        stopping: state.stopping.clone(),
        _counted: OpenStream::count(),
        _slot: slot,
    };
    match resume_from {
        Some(last) if last == position && ItemEvent::closed(&listed).is_some() => {
            // Everything was seen, and nothing can follow: tell EventSource
            // to stop reconnecting.
            return Ok(HttpResponse::NoContent().finish());
        }
        Some(last) => {
            feed.last = last;
            feed.catch_up(listed).await?;
        }
        None => {
            let snapshot = serde_json::to_string(&ItemBody::from(&listed)).unwrap_or_default();
            feed.ready
                .push_back(sse_message(position, "snapshot", snapshot));
            feed.last = position;
            feed.finished = ItemEvent::closed(&listed).is_some();
        }
    }
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let bytes = feed.next().await?;
        Some((Ok::<_, Infallible>(bytes), feed))
    });
    let body = EndsWithRetry::new(
        BoxBody::new(BodyStream::new(stream)),
        state.stopping.clone(),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        // Written as it comes: no compression, no cache, no proxy buffering.
        .insert_header(header::ContentEncoding::Identity)
        .insert_header(header::CacheControl(vec![header::CacheDirective::NoCache]))
        .insert_header(("x-accel-buffering", "no"))
        .body(body))
}

/// A WebSocket ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketBody {
    /// Pass as `GET /ws?ticket=…` within `expires_in` seconds; works once.
    ticket: String,
    /// Seconds.
    expires_in: i64,
}

/// The same stream at `/events/{id}`, outside the API's base path (docs/spec/api.md,
/// Live updates): a plain `EventSource` URL that needs no version.
#[utoipa::path(tag = "live",
    params(("id" = Uuid, Path, description = "The item's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last id received, to resume")),
    responses(
        (status = 200, description = "The same stream as `/api/v1/items/{id}/events`", content_type = "text/event-stream", body = PriceBody),
        (status = 204, description = "Resuming after the `closed` event: nothing will follow"),
        (status = 404, description = "`item_not_found`", body = ProblemBody),
        (status = 429, description = "`too_many_streams`: this address holds `LIVE_STREAMS_PER_IP` streams open already", body = ProblemBody)))]
#[get("/events/{id}")]
pub async fn root_item_events(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    stream_item_events(request, state, path).await
}

/// Trades your access token for a single-use, 30-second WebSocket ticket.
#[utoipa::path(tag = "live", security(("bearer" = [])),
    responses((status = 201, body = TicketBody), (status = 401, description = "`unauthorized` / `invalid_token`", body = ProblemBody)))]
#[post("/ws-ticket", wrap = "from_fn(require_user)")]
pub async fn ws_ticket(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let issued = state.tickets.issue(&principal).await?;
    Ok(HttpResponse::Created().json(TicketBody {
        ticket: issued.ticket.as_str().to_owned(),
        expires_in: issued.expires_in.num_seconds(),
    }))
}

/// `?ticket=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TicketQuery {
    /// From `POST /api/v1/ws-ticket`.
    ticket: Option<String>,
}

/// A personal notification as sent on the socket.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationBody {
    #[serde(rename = "type")]
    pub(crate) kind: NotificationKind,
    pub(crate) data: NotificationFields,
    pub(crate) at: DateTime<Utc>,
}

/// What a notification tells, and the figures its `data` carries besides
/// `item_id`: `outbid`: `current_price`, `minimum_next_bid`; `auto_raised`:
/// `effective`, `remaining_budget`; `exhausted`: `effective`,
/// `current_price`, `minimum_next_bid`; `won` / `lost`: `final_price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Someone bid higher than you.
    Outbid,
    /// Your poisoned bid raised itself.
    AutoRaised,
    /// Your poisoned bid's budget ran out.
    Exhausted,
    /// The auction closed with you as the winner.
    Won,
    /// The auction closed with someone else as the winner.
    Lost,
}

/// A notification's figures: the item, and those its `type` names.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationFields {
    item_id: Uuid,
    /// The item's title (in the stored list; the socket names the id only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) item_title: Option<String>,
    /// The item's currency, lower case (in the stored list).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) currency: Option<String>,
    /// How many digits of its amounts are decimals, as an item's
    /// `currency_decimals` (in the stored list).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) currency_decimals: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    current_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    minimum_next_bid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    effective: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    remaining_budget: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    final_price: Option<i64>,
}

impl From<&Notification> for NotificationBody {
    fn from(notification: &Notification) -> Self {
        let mut data = NotificationFields {
            item_id: notification.data.item().as_uuid(),
            item_title: None,
            currency: None,
            currency_decimals: None,
            current_price: None,
            minimum_next_bid: None,
            effective: None,
            remaining_budget: None,
            final_price: None,
        };
        let kind = match notification.data {
            NotificationData::Outbid {
                current_price,
                minimum_next_bid,
                ..
            } => {
                data.current_price = Some(current_price.minor_units());
                data.minimum_next_bid = Some(minimum_next_bid);
                NotificationKind::Outbid
            }
            NotificationData::AutoRaised {
                effective,
                remaining_budget,
                ..
            } => {
                data.effective = Some(effective.minor_units());
                data.remaining_budget = Some(remaining_budget);
                NotificationKind::AutoRaised
            }
            NotificationData::Exhausted {
                effective,
                current_price,
                minimum_next_bid,
                ..
            } => {
                data.effective = Some(effective.minor_units());
                data.current_price = Some(current_price.minor_units());
                data.minimum_next_bid = Some(minimum_next_bid);
                NotificationKind::Exhausted
            }
            NotificationData::Won { final_price, .. } => {
                data.final_price = Some(final_price.minor_units());
                NotificationKind::Won
            }
            NotificationData::Lost { final_price, .. } => {
                data.final_price = Some(final_price.minor_units());
                NotificationKind::Lost
            }
        };
        NotificationBody {
            kind,
            data,
            at: notification.at,
        }
    }
}

/// The headers of a WebSocket opening handshake (RFC 6455), which a
/// WebSocket client sends for you.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the handshake; actix-ws reads it
pub struct Handshake {
    /// `websocket`.
    #[param(rename = "Upgrade", pattern = "^websocket$")]
    upgrade: String,
    /// `Upgrade`.
    #[param(rename = "Connection", pattern = "^[Uu]pgrade$")]
    connection: String,
    /// 16 random bytes, base64 (canonical: the last digit before the
    /// padding carries no stray bits).
    #[param(rename = "Sec-WebSocket-Key", pattern = "^[A-Za-z0-9+/]{21}[AQgw]==$")]
    key: String,
    /// `13`.
    #[param(rename = "Sec-WebSocket-Version", pattern = "^13$")]
    version: String,
}

/// Your notifications over a WebSocket; open it with a ticket.
#[utoipa::path(tag = "live",
    params(Handshake, TicketQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket; its text messages are `NotificationBody` JSON, `{type, data, at}`. Pinged every 30 s; closed with 1008 once the ticket's session ends (logout, password reset, deactivation, expiry), and with 1001 when the instance stops (reconnect with a new ticket)"),
        (status = 400, description = "`bad_request`: not a WebSocket upgrade (the ticket is not spent)", body = ProblemBody),
        (status = 401, description = "`invalid_ticket`: malformed, unknown, used or expired", body = ProblemBody),
        (status = 429, description = "`rate_limited` (the per-address limit), or `too_many_streams`: the account holds `SOCKETS_PER_USER` sockets open already", body = ProblemBody),
        (status = 503, description = "`service_unavailable`: the instance is stopping; the ticket is not spent, try another", body = ProblemBody)))]
#[get("/ws")]
pub async fn websocket(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<TicketQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The handshake first: a plain GET must not spend a good ticket.
    let (response, session, messages) = actix_ws::handle(&request, body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "this endpoint speaks WebSocket only",
        )
    })?;
    let ticket = query
        .ticket
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(invalid_ticket)?;
    // Stopping: the ticket is kept for the instance the client tries next.
    if state.stopping.is_cancelled() {
        return Err(ApiError::unavailable());
    }
    // A malformed ticket is refused without a lookup.
    let holder = state
        .tickets
        .redeem(ticket)
        .await?
        .ok_or_else(invalid_ticket)?;
    let slot = state.sockets.open(&holder.user.id.to_string()).await?;
    let notifications = state.live.notifications(holder.user.id);
    actix_web::rt::spawn(serve_socket(
        session,
        messages,
        notifications,
        Keeper {
            tickets: state.tickets.clone(),
            holder,
            ping_every: state.ws_ping,
            stopping: state.stopping.clone(),
            _slot: slot,
        },
    ));
    Ok(response)
}

/// What keeps a socket open: its holder's session, checked at every ping.
struct Keeper {
    tickets: TicketService,
    holder: SocketHolder,
    ping_every: Duration,
    /// Closes the socket (1001) when the process begins to stop.
    stopping: CancellationToken,
    /// Its place among its account's open sockets.
    _slot: StreamSlot,
}

/// Why a socket ended, as `websocket_closed_total` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SocketEnd {
    /// The client closed it or the connection broke.
    ClientLeft,
    /// A send waited a whole ping interval: the client stopped reading.
    StoppedReading,
    /// Its notifications fell behind the hub.
    FellBehind,
    /// Silent for two ping intervals.
    MissedPings,
    /// Its session ended (logout, reset, deactivation, expiry).
    SessionEnded,
    /// The process is stopping.
    Stopping,
}

impl SocketEnd {
    fn label(self) -> &'static str {
        match self {
            SocketEnd::ClientLeft => "client_left",
            SocketEnd::StoppedReading => "stopped_reading",
            SocketEnd::FellBehind => "fell_behind",
            SocketEnd::MissedPings => "missed_pings",
            SocketEnd::SessionEnded => "session_ended",
            SocketEnd::Stopping => "stopping",
        }
    }

    /// The close frame the client is sent, if any is worth sending.
    fn close_reason(self) -> Option<actix_ws::CloseReason> {
        let (code, description) = match self {
            SocketEnd::ClientLeft | SocketEnd::StoppedReading => return None,
            SocketEnd::FellBehind => (
                actix_ws::CloseCode::Again,
                "fell behind; reconnect with a new ticket",
            ),
            SocketEnd::MissedPings => (actix_ws::CloseCode::Away, "missed two pings"),
            SocketEnd::SessionEnded => (
                actix_ws::CloseCode::Policy,
                "the session ended; log in again",
            ),
            // 1001 Going Away: the client reconnects, to another instance.
            SocketEnd::Stopping => (
                actix_ws::CloseCode::Away,
                "the server is restarting; reconnect with a new ticket",
            ),
        };
        Some(actix_ws::CloseReason {
            code,
            description: Some(description.into()),
        })
    }
}

/// Waits at most `limit` for `send` (a frame into actix-ws's bounded
/// queue, which stops draining when the client stops reading).
async fn sent<E>(
    limit: Duration,
    send: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), SocketEnd> {
    match tokio::time::timeout(limit, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SocketEnd::ClientLeft),
        Err(_) => Err(SocketEnd::StoppedReading),
    }
}

/// Forwards notifications until the client leaves, misses two pings, falls
/// behind, stops reading (a send waits a whole ping interval), or its
/// session ends.
async fn serve_socket(
    mut session: actix_ws::Session,
    mut messages: actix_ws::MessageStream,
    mut notifications: LiveStream<Notification>,
    keeper: Keeper,
) {
    metrics::gauge!("websocket_connections").increment(1.0);
    let ping_every = keeper.ping_every;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    let end = loop {
        let outcome = tokio::select! {
            () = keeper.stopping.cancelled() => Err(SocketEnd::Stopping),
            notification = notifications.next() => match notification {
                Some(Ok(notification)) => {
                    let text = serde_json::to_string(&NotificationBody::from(&notification)).unwrap_or_default();
                    sent(ping_every, session.text(text)).await
                }
                Some(Err(_)) | None => Err(SocketEnd::FellBehind),
            },
            message = messages.next() => match message {
                Some(Ok(actix_ws::Message::Ping(payload))) => {
                    last_heard = Instant::now();
                    sent(ping_every, session.pong(&payload)).await
                }
                Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => Err(SocketEnd::ClientLeft),
                Some(Ok(_)) => {
                    last_heard = Instant::now();
                    Ok(())
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > ping_every * 2 {
                    Err(SocketEnd::MissedPings)
                } else {
                    // A store failure is not an ended session: check again
                    // at the next ping.
                    // Boxed: a store round trip every ping would otherwise
                    // size every idle socket's state.
                    match Box::pin(keeper.tickets.still_valid(&keeper.holder)).await {
                        Ok(false) => Err(SocketEnd::SessionEnded),
                        _ => sent(ping_every, session.ping(b"")).await,
                    }
                }
            }
        };
        if let Err(end) = outcome {
            break end;
        }
    };
    metrics::counter!("websocket_closed_total", "reason" => end.label()).increment(1);
    // Bounded too: a client that stopped reading has no room for the close frame.
    let _ = sent(ping_every, session.close(end.close_reason())).await;
    metrics::gauge!("websocket_connections").decrement(1.0);
}
