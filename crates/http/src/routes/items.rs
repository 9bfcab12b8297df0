//! `/items/*` and `/me/bids`: listing and cancelling items, sealed bids,
//! your own bids, and every bid once an item has closed.

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use pp_domain::item::{ItemDraft, ItemEditDraft};
use pp_domain::ledger::ledger_time;
use pp_domain::photos::Photo;
use pp_domain::ports::PlaceBidError;
use pp_domain::service::{OwnBid, RevealedBid};
use pp_domain::{
    BidOffer, BidState, ItemFilter, ItemId, ItemSearch, ItemSort, ItemStatus, ListedItem, Money,
    StatusFilter,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::errors::{bid_not_found, item_not_found};
use crate::extract::{
    Admin, Authenticated, Context, Json, PageParams, PageQuery, optional_whole_number, whole_number,
};
use crate::middleware::{LimitClass, enforce, require_admin, require_user};
use crate::problem::{ApiError, ProblemBody};
use crate::routes::photos::{PhotoBody, media_url};
use crate::state::AppState;

/// An item's status as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusName {
    /// Taking bids.
    Open,
    /// Closed: `final_price` and `winner_id` are set.
    Closed,
    /// Cancelled by an admin before anyone bid.
    Cancelled,
}

impl From<StatusName> for StatusFilter {
    fn from(status: StatusName) -> Self {
        match status {
            StatusName::Open => StatusFilter::Open,
            StatusName::Closed => StatusFilter::Closed,
            StatusName::Cancelled => StatusFilter::Cancelled,
        }
    }
}

/// An item as anyone may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemBody {
    id: Uuid,
    title: String,
    description: String,
    /// Three-letter code, lower case.
    currency: String,
    /// How many digits of an amount in minor units are decimals, by ISO
    /// 4217 (2 for `usd`, 0 for `jpy`; 2 for a code it does not list):
    /// 1250 minor units of `usd` read 12.50.
    currency_decimals: u32,
    /// Minor units: the lowest acceptable first bid.
    base_price: i64,
    /// Minor units: the smallest raise over the current price.
    min_increment: i64,
    /// `null` until the first bid.
    #[schema(required = true)]
    current_price: Option<i64>,
    /// The lowest acceptable next bid now.
    minimum_next_bid: i64,
    bid_count: u64,
    close_at: DateTime<Utc>,
    status: StatusName,
    created_at: DateTime<Utc>,
    /// Only when closed: what the winner pays (`null` without a winner).
    #[serde(skip_serializing_if = "Option::is_none")]
    final_price: Option<Option<i64>>,
    /// Only when closed: the winner's id, `null` when nobody bid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Uuid>)]
    winner_id: Option<Option<Uuid>>,
    /// The anti-sniping rule, `null` without one.
    #[schema(required = true)]
    soft_close: Option<SoftCloseBody>,
    /// How many times a late bid moved `close_at` (0 without soft close).
    extensions_used: u32,
    /// The head of the item's bid ledger (64 lower-case hex digits): a
    /// commitment to every sealed bid, see docs/spec/auction-rules.md,
    /// "Ledger". `null` only for an item from before the ledger that the
    /// server has not chained yet.
    #[schema(required = true, pattern = "^[0-9a-f]{64}$")]
    ledger_head: Option<String>,
    /// The photos in display order. Absent where an item comes with a bid
    /// (a bid's answer, your bid) and in the live stream's snapshot: those
    /// are about the price.
    #[serde(skip_serializing_if = "Option::is_none")]
    photos: Option<Vec<PhotoBody>>,
    /// The first photo's thumbnail, `null` without photos. Absent where
    /// `photos` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    cover_thumb_url: Option<Option<String>>,
}

impl ItemBody {
    /// The body with the item's photos, in display order.
    #[must_use]
    pub fn with_photos(mut self, photos: &[Photo]) -> Self {
        self.cover_thumb_url = Some(photos.first().map(|photo| media_url(&photo.thumbnail.key)));
        self.photos = Some(photos.iter().map(PhotoBody::from).collect());
        self
    }
}

/// The body of `listed` with its photos, read now.
pub(crate) async fn item_with_photos(
    state: &AppState,
    listed: &ListedItem,
) -> Result<ItemBody, ApiError> {
    let mut photos = state.photos.photos_of(&[listed.item.id]).await?;
    let photos = photos.remove(&listed.item.id).unwrap_or_default();
    Ok(ItemBody::from(listed).with_photos(&photos))
}

/// An item's soft-close rule: a bid that changes the leader in the last
/// `window_secs` moves the close to `extend_by_secs` after it, at most
/// `max_extensions` times.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SoftCloseBody {
    /// 1–3600.
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 3600)]
    window_secs: i64,
    /// 1–3600.
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 3600)]
    extend_by_secs: i64,
    /// 1–100.
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 100)]
    max_extensions: i64,
}

impl From<&ListedItem> for ItemBody {
    fn from(listed: &ListedItem) -> Self {
        let item = &listed.item;
        let (status, final_price, winner_id) = match item.status {
            ItemStatus::Open => (StatusName::Open, None, None),
            ItemStatus::Cancelled => (StatusName::Cancelled, None, None),
            ItemStatus::Closed(outcome) => (
                StatusName::Closed,
                Some(outcome.final_price().map(Money::minor_units)),
                Some(outcome.winner().map(|w| w.as_uuid())),
            ),
        };
        ItemBody {
            id: item.id.as_uuid(),
            title: item.title.as_str().to_owned(),
            description: item.description.as_str().to_owned(),
            currency: item.currency.as_str().to_owned(),
            currency_decimals: item.currency.decimals(),
            base_price: item.base_price.minor_units(),
            min_increment: item.min_increment.minor_units(),
            current_price: listed.standing.current_price.map(Money::minor_units),
            minimum_next_bid: listed.minimum_next_bid(),
            bid_count: listed.standing.bid_count,
            close_at: item.close_at,
            status,
            created_at: item.created_at,
            final_price,
            winner_id,
            soft_close: item.soft_close.map(|rule| SoftCloseBody {
                window_secs: rule.window().num_seconds(),
                extend_by_secs: rule.extend_by().num_seconds(),
                max_extensions: rule.max_extensions().into(),
            }),
            extensions_used: item.extensions_used,
            ledger_head: item.ledger_head.map(|head| head.to_string()),
            photos: None,
            cover_thumb_url: None,
        }
    }
}

/// A poisoned bid's auto-raise.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoisonBody {
    /// Minor units: the most this bid will ever pay (≥ `amount`).
    #[serde(deserialize_with = "whole_number")]
    budget: i64,
    /// Minor units: the raise used to outbid (≥ the item's `min_increment`).
    #[serde(deserialize_with = "whole_number")]
    step: i64,
}

/// A bid's state as the API spells it.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    /// This bid leads.
    Leading,
    /// Not leading, not poisoned.
    Outbid,
    /// Not leading, poisoned: its whole budget is spent.
    Exhausted,
    /// Led at close.
    Won,
    /// Did not lead at close.
    Lost,
}

impl From<BidState> for StateName {
    fn from(state: BidState) -> Self {
        match state {
            BidState::Leading => StateName::Leading,
            BidState::Outbid => StateName::Outbid,
            BidState::Exhausted => StateName::Exhausted,
            BidState::Won => StateName::Won,
            BidState::Lost => StateName::Lost,
        }
    }
}

fn poison_of(offer: &BidOffer) -> Option<PoisonBody> {
    offer.poison.map(|p| PoisonBody {
        budget: p.budget.minor_units(),
        step: p.step.minor_units(),
    })
}

/// Your own bid and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnBidBody {
    id: Uuid,
    item_id: Uuid,
    /// The item's currency, lower case, which the amounts are in.
    currency: String,
    /// How many digits of those amounts are decimals (as an item's).
    currency_decimals: u32,
    amount: i64,
    #[schema(required = true)]
    poison: Option<PoisonBody>,
    state: StateName,
    /// What the bid stands at: the price while leading or won, else its
    /// amount (plain) or budget (poisoned).
    effective: i64,
    /// Budget still unspent while leading; 0 otherwise.
    remaining_budget: i64,
    created_at: DateTime<Utc>,
}

impl From<&OwnBid> for OwnBidBody {
    fn from(own: &OwnBid) -> Self {
        OwnBidBody {
            id: own.bid.id.as_uuid(),
            item_id: own.bid.item.as_uuid(),
            currency: own.item.item.currency.as_str().to_owned(),
            currency_decimals: own.item.item.currency.decimals(),
            amount: own.bid.offer.amount.minor_units(),
            poison: poison_of(&own.bid.offer),
            state: own.view.state.into(),
            effective: own.view.effective.minor_units(),
            remaining_budget: own.view.remaining_budget,
            created_at: own.bid.created_at,
        }
    }
}

/// A bid after its item closed, as everyone may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealedBidBody {
    /// 1-based arrival position on the item.
    seq: u64,
    bidder_id: Uuid,
    amount: i64,
    #[schema(required = true)]
    poison: Option<PoisonBody>,
    state: StateName,
    effective: i64,
    /// Exactly the text the ledger hashed: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    #[schema(value_type = String, format = DateTime, pattern = "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$")]
    created_at: String,
    /// The bid's ledger salt (32 lower-case hex digits).
    #[schema(pattern = "^[0-9a-f]{32}$")]
    salt: String,
    /// The ledger's value after this bid, `h(seq)` (64 lower-case hex
    /// digits); `null` only for a bid from before the ledger not yet chained.
    #[schema(required = true, pattern = "^[0-9a-f]{64}$")]
    hash: Option<String>,
}

impl From<&RevealedBid> for RevealedBidBody {
    fn from(revealed: &RevealedBid) -> Self {
        RevealedBidBody {
            seq: revealed.bid.seq,
            bidder_id: revealed.bid.bidder.as_uuid(),
            amount: revealed.bid.offer.amount.minor_units(),
            poison: poison_of(&revealed.bid.offer),
            state: revealed.view.state.into(),
            effective: revealed.view.effective.minor_units(),
            created_at: ledger_time(revealed.bid.created_at),
            salt: revealed.bid.salt.to_string(),
            hash: revealed.bid.chain_hash.map(|hash| hash.to_string()),
        }
    }
}

/// A page of items.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPage {
    items: Vec<ItemBody>,
    #[schema(required = true)]
    next_cursor: Option<String>,
    has_more: bool,
}

/// A page of your bids.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnBidPage {
    items: Vec<OwnBidBody>,
    #[schema(required = true)]
    next_cursor: Option<String>,
    has_more: bool,
}

/// A page of revealed bids, in `seq` order.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealedBidPage {
    items: Vec<RevealedBidBody>,
    #[schema(required = true)]
    next_cursor: Option<String>,
    has_more: bool,
}

/// `POST /items` (admin).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateItemRequest {
    /// 1–200 characters.
    title: String,
    /// Up to 10,000 characters.
    #[serde(default)]
    description: String,
    /// Minor units, ≥ 1.
    #[serde(deserialize_with = "whole_number")]
    base_price: i64,
    /// Minor units, ≥ 1; default 100.
    #[serde(default, deserialize_with = "optional_whole_number")]
    min_increment: Option<i64>,
    /// Three letters; default `usd`.
    currency: Option<String>,
    /// Strictly in the future, at most 365 days ahead.
    close_at: DateTime<Utc>,
    /// Opt-in anti-sniping (docs/spec/auction-rules.md, "Soft close").
    soft_close: Option<SoftCloseBody>,
}

/// `PATCH /items/{id}` (admin): what to change; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditItemRequest {
    /// 1–200 characters.
    title: Option<String>,
    /// Up to 10,000 characters.
    description: Option<String>,
    /// In the future, at most 365 days ahead, and not before the item's
    /// current close.
    close_at: Option<DateTime<Utc>>,
}

/// An item's bid ledger: how many bids it chains and its head.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerBody {
    item_id: Uuid,
    /// Bids chained.
    count: u64,
    /// `h(count)`, 64 lower-case hex digits (`null` only while an item from
    /// before the ledger waits to be chained).
    #[schema(required = true, pattern = "^[0-9a-f]{64}$")]
    head: Option<String>,
}

/// `POST /items/{id}/bid`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidRequest {
    /// Minor units, at least the item's `minimum_next_bid`.
    #[serde(deserialize_with = "whole_number")]
    amount: i64,
    /// Makes the bid auto-raise, up to `budget` by `step`.
    poison: Option<PoisonBody>,
}

/// An accepted bid and its item right after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BidPlaced {
    bid: OwnBidBody,
    item: ItemBody,
}

/// `?status=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StatusQuery {
    /// `open`, `closed` or `cancelled`; all when absent.
    #[param(value_type = Option<StatusName>)]
    status: Option<String>,
}

/// The order of the item list as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortName {
    /// Latest listed first (the default).
    Newest,
    /// Earliest close first, with the close as soft close moved it.
    ClosingSoon,
    /// Lowest price first: the current price, or the base price before the
    /// first bid, in minor units whatever the currency.
    PriceAsc,
    /// Highest price first.
    PriceDesc,
}

/// `?sort=` and `?q=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SortQuery {
    /// The order; the best match first for a search, else `newest`, when
    /// absent. Ties go by id, and a cursor is valid only for the order,
    /// status and search it was handed out with.
    #[param(value_type = Option<SortName>)]
    sort: Option<String>,
    /// Words matched in the title and description, accents and case
    /// ignored; every word must match. At most 200 characters; a search of
    /// only punctuation matches nothing, and a blank one everything.
    #[param(max_length = 200)]
    q: Option<String>,
}

pub(crate) fn item_id(raw: &str) -> Result<ItemId, ApiError> {
    raw.parse().map_err(|_| item_not_found())
}

/// Parses the offer, naming every field that is out of range.
fn offer_of(body: &BidRequest) -> Result<BidOffer, ApiError> {
    let mut problems = Vec::new();
    let mut money = |field: &str, units: i64| {
        Money::new(units)
            .map_err(|e| problems.push((field.to_owned(), e.to_string())))
            .ok()
    };
    let amount = money("amount", body.amount);
    let poison = body.poison.map(|p| {
        (
            money("poison.budget", p.budget),
            money("poison.step", p.step),
        )
    });
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    let (Some(amount), poison) = (amount, poison) else {
        return Err(ApiError::invalid_field("amount", "is required"));
    };
    Ok(match poison {
        Some((Some(budget), Some(step))) => BidOffer::poisoned(amount, budget, step),
        _ => BidOffer::plain(amount),
    })
}

/// How a bid ended, for `bids_total`: `accepted`, `rejected` by the rules,
/// or `failed`.
fn bid_outcome<T>(result: &Result<T, PlaceBidError>) -> &'static str {
    match result {
        Ok(_) => "accepted",
        Err(PlaceBidError::Rejected(_)) => "rejected",
        Err(_) => "failed",
    }
}

/// The write limit (per user) of docs/spec/api.md: bids and item creation.
async fn limit_writes(request: &HttpRequest, user: pp_domain::UserId) -> Result<(), ApiError> {
    enforce(request, LimitClass::Write, &format!("user:{user}")).await
}

/// Lists an item (admin).
#[utoipa::path(tag = "items", security(("bearer" = [])), request_body = CreateItemRequest,
    responses(
        (status = 201, body = ItemBody),
        (status = 403, description = "`forbidden`", body = ProblemBody),
        (status = 422, description = "`validation_failed`", body = ProblemBody),
        (status = 429, description = "`rate_limited`", body = ProblemBody)))]
#[post("/items", wrap = "from_fn(require_admin)")]
pub async fn create_item(
    request: HttpRequest,
    state: web::Data<AppState>,
    Admin(admin): Admin,
    Context(context): Context,
    Json(body): Json<CreateItemRequest>,
) -> Result<HttpResponse, ApiError> {
    limit_writes(&request, admin.user.id).await?;
    let draft = ItemDraft {
        title: body.title,
        description: body.description,
        base_price: body.base_price,
        min_increment: body.min_increment,
        currency: body.currency,
        close_at: body.close_at,
        soft_close: body
            .soft_close
            .map(|rule| (rule.window_secs, rule.extend_by_secs, rule.max_extensions)),
    };
    let listed = state
        .auctions
        .list_item(admin.user.id, draft, &context)
        .await?;
    metrics::counter!("items_created_total").increment(1);
    Ok(HttpResponse::Created().json(ItemBody::from(&listed).with_photos(&[])))
}

/// A currency and how its amounts are written.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyBody {
    /// Three letters, lower case.
    code: String,
    /// How many digits of an amount in minor units are decimals, by ISO
    /// 4217 (2 for a code it does not list): what an item in this currency
    /// will carry as `currency_decimals`.
    decimals: u32,
}

/// How amounts in a currency are written, before any item has it (a form
/// that lists an item converts what is typed with it).
#[utoipa::path(tag = "items",
    params(("code" = String, Path, pattern = "^[A-Za-z]{3}$", description = "Three letters, either case")),
    responses(
        (status = 200, body = CurrencyBody),
        (status = 422, description = "`validation_failed`: not three letters", body = ProblemBody)))]
#[get("/currencies/{code}")]
pub async fn currency(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    // Exactly the three letters: a path takes no padding (the domain's
    // parse trims what a form sends).
    let exact = path.len() == 3 && path.bytes().all(|b| b.is_ascii_alphabetic());
    let currency = pp_domain::Currency::parse(&path)
        .ok()
        .filter(|_| exact)
        .ok_or_else(|| {
            ApiError::invalid_field("code", pp_domain::money::InvalidCurrency.to_string())
        })?;
    Ok(HttpResponse::Ok().json(CurrencyBody {
        code: currency.as_str().to_owned(),
        decimals: currency.decimals(),
    }))
}

/// Items, newest first (the best match first for a search) unless `sort`
/// says otherwise, optionally of one status or matching a search.
#[utoipa::path(tag = "items",
    params(StatusQuery, SortQuery, PageParams),
    responses(
        (status = 200, body = ItemPage),
        (status = 400, description = "`invalid_cursor` (also a cursor of another order, status or search)", body = ProblemBody),
        (status = 422, description = "`validation_failed` (an unknown status or order, or a search past 200 characters)", body = ProblemBody)))]
#[get("/items")]
pub async fn list_items(
    state: web::Data<AppState>,
    page: PageQuery,
    query: web::Query<StatusQuery>,
    order: web::Query<SortQuery>,
) -> Result<HttpResponse, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some("open") => Some(StatusFilter::Open),
        Some("closed") => Some(StatusFilter::Closed),
        Some("cancelled") => Some(StatusFilter::Cancelled),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "status",
                "must be open, closed or cancelled",
            ));
        }
    };
    let search = order
        .q
        .as_deref()
        .map(ItemSearch::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("q", e.to_string()))?
        .flatten();
    let sort = match order.sort.as_deref() {
        None if search.is_some() => ItemSort::BestMatch,
        None => ItemSort::Newest,
        Some(name) => ItemSort::parse(name).ok_or_else(|| {
            ApiError::invalid_field(
                "sort",
                "must be closing_soon, newest, price_asc or price_desc",
            )
        })?,
    };
    let status_name = status.map_or("all", |s| s.as_str());
    // Newest first keeps the list name its cursors had before orders
    // existed, so they stay valid across the upgrade. A search's text (as
    // typed, trimmed) names its lists: another spelling may match others.
    let list = match (sort, &search) {
        (ItemSort::Newest, None) => format!("items/{status_name}"),
        (other, None) => format!("items/{status_name}/{}", other.as_str()),
        (other, Some(search)) => {
            format!("items/{status_name}/{}/q/{}", other.as_str(), search.text())
        }
    };
    let after = page
        .cursor
        .as_deref()
        .map(|cursor| state.cursors.decode_item(&list, sort, cursor))
        .transpose()?;
    let filter = ItemFilter { status, search };
    let found = state
        .auctions
        .list_items(&filter, sort, after, page.limit)
        .await?;
    Ok(HttpResponse::Ok().json(ItemPage {
        items: {
            let ids: Vec<_> = found.items.iter().map(|listed| listed.item.id).collect();
            let photos = state.photos.photos_of(&ids).await?;
            found
                .items
                .iter()
                .map(|listed| {
                    let shown = photos.get(&listed.item.id).map_or(&[][..], Vec::as_slice);
                    ItemBody::from(listed).with_photos(shown)
                })
                .collect()
        },
        has_more: found.next.is_some(),
        next_cursor: found.next.map(|c| state.cursors.encode_item(&list, c)),
    }))
}

/// One item as the public sees it.
#[utoipa::path(tag = "items",
    params(("id" = Uuid, Path, description = "The item's id")),
    responses((status = 200, body = ItemBody), (status = 404, description = "`item_not_found`", body = ProblemBody)))]
#[get("/items/{id}")]
pub async fn get_item(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let listed = state
        .auctions
        .item(item_id(&path)?)
        .await?
        .ok_or_else(item_not_found)?;
    Ok(HttpResponse::Ok().json(item_with_photos(&state, &listed).await?))
}

/// Cancels an item nobody has bid on (admin).
#[utoipa::path(tag = "items", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    responses(
        (status = 200, body = ItemBody),
        (status = 403, description = "`forbidden`", body = ProblemBody),
        (status = 404, description = "`item_not_found`", body = ProblemBody),
        (status = 409, description = "`item_has_bids` or `auction_closed`", body = ProblemBody)))]
#[post("/items/{id}/cancel", wrap = "from_fn(require_admin)")]
pub async fn cancel_item(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    Context(context): Context,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let cancelled = state
        .auctions
        .cancel_item(item_id(&path)?, admin.user.id, &context)
        .await?;
    Ok(HttpResponse::Ok().json(item_with_photos(&state, &cancelled).await?))
}

/// Edits an item nobody has bid on yet (admin): title, description, or a
/// later close.
#[utoipa::path(tag = "items", security(("bearer" = [])), request_body = EditItemRequest,
    params(("id" = Uuid, Path, description = "The item's id")),
    responses(
        (status = 200, body = ItemBody),
        (status = 403, description = "`forbidden`", body = ProblemBody),
        (status = 404, description = "`item_not_found`", body = ProblemBody),
        (status = 409, description = "`item_has_bids` or `auction_closed` (also for a cancelled item)", body = ProblemBody),
        (status = 422, description = "`validation_failed` (also a `close_at` earlier than the current one)", body = ProblemBody),
        (status = 429, description = "`rate_limited`", body = ProblemBody)))]
#[patch("/items/{id}", wrap = "from_fn(require_admin)")]
pub async fn edit_item(
    request: HttpRequest,
    state: web::Data<AppState>,
    Admin(admin): Admin,
    Context(context): Context,
    path: web::Path<String>,
    Json(body): Json<EditItemRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = item_id(&path)?;
    limit_writes(&request, admin.user.id).await?;
    let draft = ItemEditDraft {
        title: body.title,
        description: body.description,
        close_at: body.close_at,
    };
    let edited = state
        .auctions
        .edit_item(id, draft, admin.user.id, &context)
        .await?;
    Ok(HttpResponse::Ok().json(item_with_photos(&state, &edited).await?))
}

/// An item's bid ledger head: public at any time, a commitment to its
/// sealed bids that the revealed bids are checked against after close.
#[utoipa::path(tag = "items",
    params(("id" = Uuid, Path, description = "The item's id")),
    responses((status = 200, body = LedgerBody), (status = 404, description = "`item_not_found`", body = ProblemBody)))]
#[get("/items/{id}/ledger")]
pub async fn ledger(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let listed = state
        .auctions
        .item(item_id(&path)?)
        .await?
        .ok_or_else(item_not_found)?;
    Ok(HttpResponse::Ok().json(LedgerBody {
        item_id: listed.item.id.as_uuid(),
        count: listed.standing.bid_count,
        head: listed.item.ledger_head.map(|head| head.to_string()),
    }))
}

/// Places your one sealed bid on an item, optionally poisoned.
#[utoipa::path(tag = "bids", security(("bearer" = [])), request_body = BidRequest,
    params(("id" = Uuid, Path, description = "The item's id")),
    responses(
        (status = 201, body = BidPlaced),
        (status = 403, description = "`own_item`, `email_not_verified`", body = ProblemBody),
        (status = 404, description = "`item_not_found`", body = ProblemBody),
        (status = 409, description = "`auction_closed`, `bid_already_placed`", body = ProblemBody),
        (status = 422, description = "`validation_failed`, `invalid_poison`, `bid_too_low` (with `minimum_next_bid`)", body = ProblemBody),
        (status = 429, description = "`rate_limited`", body = ProblemBody)))]
#[post("/items/{id}/bid", wrap = "from_fn(require_user)")]
pub async fn place_bid(
    request: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
    Json(body): Json<BidRequest>,
) -> Result<HttpResponse, ApiError> {
    let offer = offer_of(&body)?;
    let item = item_id(&path)?;
    limit_writes(&request, principal.user.id).await?;
    let result = state.auctions.place_bid(&principal.user, item, offer).await;
    metrics::counter!("bids_total", "outcome" => bid_outcome(&result)).increment(1);
    let own = OwnBid::from(result?);
    Ok(HttpResponse::Created().json(BidPlaced {
        bid: OwnBidBody::from(&own),
        item: ItemBody::from(&own.item),
    }))
}

/// Your own bid on an item.
#[utoipa::path(tag = "bids", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    responses((status = 200, body = OwnBidBody), (status = 404, description = "`bid_not_found` or `item_not_found`", body = ProblemBody)))]
#[get("/items/{id}/bid", wrap = "from_fn(require_user)")]
pub async fn own_bid(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let item = item_id(&path)?;
    if let Some(own) = state.auctions.own_bid(principal.user.id, item).await? {
        return Ok(HttpResponse::Ok().json(OwnBidBody::from(&own)));
    }
    let exists = state.auctions.item(item).await?.is_some();
    Err(if exists {
        bid_not_found()
    } else {
        item_not_found()
    })
}

/// Every bid of a closed item, in arrival order; sealed while it is open.
#[utoipa::path(tag = "bids",
    params(("id" = Uuid, Path, description = "The item's id"), PageParams),
    responses(
        (status = 200, body = RevealedBidPage),
        (status = 403, description = "`bids_sealed` while the auction is open", body = ProblemBody),
        (status = 404, description = "`item_not_found`", body = ProblemBody)))]
#[get("/items/{id}/bids")]
pub async fn revealed_bids(
    state: web::Data<AppState>,
    path: web::Path<String>,
    page: PageQuery,
) -> Result<HttpResponse, ApiError> {
    let item = item_id(&path)?;
    let after = page
        .cursor
        .as_deref()
        .map(|cursor| state.cursors.decode_seq(item, cursor))
        .transpose()?
        .unwrap_or(0);
    let found = state
        .auctions
        .revealed_bids(item, after, page.limit)
        .await?;
    Ok(HttpResponse::Ok().json(RevealedBidPage {
        items: found.items.iter().map(RevealedBidBody::from).collect(),
        has_more: found.next.is_some(),
        next_cursor: found.next.map(|seq| state.cursors.encode_seq(item, seq)),
    }))
}

/// Your bids, newest first.
#[utoipa::path(tag = "bids", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = OwnBidPage), (status = 400, description = "`invalid_cursor`", body = ProblemBody)))]
#[get("/me/bids", wrap = "from_fn(require_user)")]
pub async fn my_bids(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    page: PageQuery,
) -> Result<HttpResponse, ApiError> {
    let me = principal.user.id;
    let after = page
        .cursor
        .as_deref()
        .map(|cursor| state.cursors.decode_bid(me, cursor))
        .transpose()?;
    let found = state.auctions.own_bids(me, after, page.limit).await?;
    Ok(HttpResponse::Ok().json(OwnBidPage {
        items: found.items.iter().map(OwnBidBody::from).collect(),
        has_more: found.next.is_some(),
        next_cursor: found.next.map(|c| state.cursors.encode_bid(me, c)),
    }))
}
