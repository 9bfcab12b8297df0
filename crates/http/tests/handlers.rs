//! The HTTP layer alone, on the domain's mocks and the in-process twins (no
//! database, no Redis): the order in which a request is judged, and how
//! each domain error reaches the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, test};
use pp_domain::auth::ports::{
    MockAccessTokens, MockAuditLog, MockOneTimeTokenStore, MockPasswordHasher,
    MockPasswordStrength, MockSecretTokens, MockSessionStore, MockTicketStore,
};
use pp_domain::auth::tokens::{AccessClaims, TokenRejected};
use pp_domain::auth::{AuthPolicy, AuthPorts, AuthService, LockoutPolicy, TicketService};
use pp_domain::ports::{MockAuctionStore, MockUserStore, PlaceBidError, StoreError, SystemClock};
use pp_domain::service::{AuctionPolicy, AuctionService};
use pp_domain::{BidRejection, Email, Role, SessionId, TokenId, User, UserId};
use pp_http::streams::{SharedReads, Slots};
use pp_http::{AppState, CursorCodec, Probes, RateLimits};
use pp_store_memory::{EventHub, MemoryConnectionSlots, MemoryRateLimiter, MemoryRevocationList};
use serde_json::{Value, json};

/// The tokens the mocked access-token port accepts, and for whom.
const USER_TOKEN: &str = "a-user's-token";
const ADMIN_TOKEN: &str = "an-admin's-token";
const REVOKED_TOKEN: &str = "a-logged-out-token";

fn account(role: Role) -> User {
    User {
        id: UserId::generate(),
        email: Email::parse("ann@example.com").unwrap(),
        display_name: "Ann".into(),
        role,
        email_verified: true,
        is_active: true,
        notify_email: true,
        totp_enabled: false,
        created_at: chrono::Utc::now(),
    }
}

/// An app whose tokens are judged by mocks (a user, an admin, a revoked
/// session; anything else is forged) and whose auction store is `store`.
fn state(store: MockAuctionStore) -> AppState {
    let (user, admin) = (account(Role::User), account(Role::Admin));
    let sessions_of = [
        (USER_TOKEN, SessionId::generate(), Some(user)),
        (ADMIN_TOKEN, SessionId::generate(), Some(admin)),
        (REVOKED_TOKEN, SessionId::generate(), None),
    ];
    let mut access = MockAccessTokens::new();
    let claims = sessions_of.clone();
    access.expect_verify().returning(move |token, now| {
        let (_, session, holder) = claims
            .iter()
            .find(|(t, _, _)| *t == token)
            .ok_or(TokenRejected::BadSignature)?;
        let holder = holder.clone().unwrap_or_else(|| account(Role::User));
        Ok(AccessClaims {
            user: holder.id,
            role: holder.role,
            token: TokenId::generate(),
            session: *session,
            issued_at: now,
            expires_at: now + chrono::Duration::minutes(15),
        })
    });
    let mut sessions = MockSessionStore::new();
    sessions
        .expect_active_session_user()
        .returning(move |session| {
            Ok(sessions_of
                .iter()
                .find(|(_, s, _)| *s == session)
                .and_then(|(_, _, holder)| holder.clone()))
        });
    let clock = Arc::new(SystemClock);
    let auth = AuthService::new(
        AuthPorts {
            users: Arc::new(MockUserStore::new()),
            sessions: Arc::new(sessions),
            one_time: Arc::new(MockOneTimeTokenStore::new()),
            audit: Arc::new(MockAuditLog::new()),
            hasher: Arc::new(MockPasswordHasher::new()),
            strength: Arc::new(MockPasswordStrength::new()),
            access: Arc::new(access),
            secrets: Arc::new(MockSecretTokens::new()),
            revocations: Arc::new(MemoryRevocationList::new()),
            identities: Arc::new(pp_domain::auth::identities::MockIdentityStore::new()),
            second_factors: Arc::new(pp_domain::auth::second_factor::MockSecondFactorStore::new()),
            codes: Arc::new(pp_domain::auth::second_factor::MockOneTimeCodes::new()),
            clock: clock.clone(),
        },
        AuthPolicy {
            passwords: pp_domain::auth::PasswordPolicy::default(),
            lockout: LockoutPolicy::default(),
            lifetimes: pp_domain::auth::tokens::TokenLifetimes::default(),
            require_verified_email: true,
            public_url: "https://auction.test".into(),
            mails_per_account_per_hour: 3,
            require_admin_second_factor: false,
        },
    );
    let hub = EventHub::new();
    let slots: Arc<MemoryConnectionSlots> = Arc::new(MemoryConnectionSlots::new());
    AppState {
        auth,
        auctions: AuctionService::new(
            Arc::new(store),
            hub.clone(),
            clock.clone(),
            AuctionPolicy::default(),
        ),
        photos: {
            // No photos anywhere: the item routes read them for their bodies.
            let mut photos = pp_domain::photos::MockPhotoStore::new();
            photos
                .expect_photos_of()
                .returning(|_| Ok(std::collections::HashMap::new()));
            photos.expect_image_length().returning(|_| Ok(None));
            pp_domain::photos::PhotoService::new(
                Arc::new(MockAuctionStore::new()),
                Arc::new(photos),
                Arc::new(pp_domain::photos::MockMediaStore::new()),
                Arc::new(pp_domain::photos::MockImageProcessor::new()),
                clock.clone(),
            )
        },
        tickets: TicketService::new(
            Arc::new(MockTicketStore::new()),
            Arc::new(MockSecretTokens::new()),
            Arc::new(MockSessionStore::new()),
            clock,
        ),
        identity_providers: Arc::new(pp_domain::auth::identities::MockIdentityProviders::new()),
        flow_key: pp_http::routes::oidc::FlowKey::derive_from(&[7; 32]),
        item_frames: Arc::new(pp_http::fanout::ItemFrames::new(hub.clone())),
        live: hub,
        limiter: Arc::new(MemoryRateLimiter::new()),
        limits: RateLimits::default(),
        trusted_proxies: Vec::new(),
        cursors: CursorCodec::new(b"a-cursor-secret-that-is-long-enough"),
        probes: Probes::default(),
        metrics_sources: Vec::new(),
        web_dir: None,
        ws_ping: Duration::from_secs(30),
        keep_alive: Duration::from_secs(15),
        sse_streams: Slots::new(slots.clone(), "sse", 32, Duration::from_secs(45)),
        sockets: Slots::new(slots, "ws", 8, Duration::from_secs(90)),
        keep_alive_reads: Arc::new(SharedReads::new(Duration::from_secs(15))),
        hsts: false,
        mail_flows: Arc::new(tokio::sync::Semaphore::new(4)),
        stopping: tokio_util::sync::CancellationToken::new(),
    }
}

/// Sends `body` (of `content_type`) with `token`, answers status and body.
async fn call(
    state: AppState,
    method: actix_web::http::Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: &'static str,
) -> (StatusCode, Value) {
    let app = test::init_service(pp_http::wrap_app!(
        App::new().configure(pp_http::configure(state)),
        pp_http::cors(&[])
    ))
    .await;
    let request = test::TestRequest::default()
        .method(method)
        .uri(path)
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("content-type", content_type))
        .peer_addr("203.0.113.7:1234".parse().unwrap())
        .set_payload(body)
        .to_request();
    let response = test::call_service(&app, request).await;
    let status = response.status();
    let body = test::read_body(response).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn the_token_and_the_role_are_judged_before_the_body() {
    use actix_web::http::Method;
    let item = "/api/v1/items/00000000-0000-7000-8000-000000000001/bid";
    // A store that is never reached: its mock has no expectations.
    for (method, path, token, content_type, body, status, code) in [
        (
            Method::POST,
            "/api/v1/items",
            USER_TOKEN,
            "text/plain",
            "{",
            403,
            "forbidden",
        ),
        (
            Method::POST,
            "/api/v1/items",
            "forged",
            "application/json",
            "{",
            401,
            "invalid_token",
        ),
        (
            Method::POST,
            "/api/v1/items",
            REVOKED_TOKEN,
            "text/plain",
            "[]",
            401,
            "invalid_token",
        ),
        (
            Method::POST,
            item,
            REVOKED_TOKEN,
            "application/json",
            "{",
            401,
            "invalid_token",
        ),
        (
            Method::PATCH,
            "/api/v1/users/me",
            "forged",
            "text/plain",
            "",
            401,
            "invalid_token",
        ),
        (
            Method::GET,
            "/api/v1/users",
            USER_TOKEN,
            "application/json",
            "",
            403,
            "forbidden",
        ),
    ] {
        let (got, problem) = call(
            state(MockAuctionStore::new()),
            method.clone(),
            path,
            token,
            content_type,
            body,
        )
        .await;
        assert_eq!(
            (got.as_u16(), problem["error_code"].as_str()),
            (status, Some(code)),
            "{method} {path} as {token}: {problem}"
        );
    }
    // Past the token, the body is judged.
    let (got, problem) = call(
        state(MockAuctionStore::new()),
        Method::POST,
        "/api/v1/items",
        ADMIN_TOKEN,
        "text/plain",
        "{}",
    )
    .await;
    assert_eq!(
        (got.as_u16(), problem["error_code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
}

#[actix_web::test]
async fn each_bid_error_reaches_the_client_as_its_problem() {
    use actix_web::http::Method;
    let cases: Vec<(PlaceBidError, u16, &str)> = vec![
        (PlaceBidError::ItemNotFound, 404, "item_not_found"),
        (PlaceBidError::BidderNotFound, 403, "forbidden"),
        (
            PlaceBidError::Rejected(BidRejection::AuctionClosed),
            409,
            "auction_closed",
        ),
        (
            PlaceBidError::Rejected(BidRejection::OwnItem),
            403,
            "own_item",
        ),
        (
            PlaceBidError::Rejected(BidRejection::AlreadyPlaced),
            409,
            "bid_already_placed",
        ),
        (
            PlaceBidError::Rejected(BidRejection::TooLow {
                minimum_next_bid: 310,
            }),
            422,
            "bid_too_low",
        ),
        (
            PlaceBidError::Store(StoreError::Busy),
            503,
            "service_unavailable",
        ),
        (
            PlaceBidError::Store(StoreError::Integrity("a standing does not open".into())),
            500,
            "internal_error",
        ),
    ];
    for (error, status, code) in cases {
        let mut store = MockAuctionStore::new();
        let answer = std::sync::Mutex::new(Some(error));
        store
            .expect_place_bid()
            .times(1)
            .returning(move |_| Err(answer.lock().unwrap().take().unwrap()));
        let (got, problem) = call(
            state(store),
            Method::POST,
            "/api/v1/items/00000000-0000-7000-8000-000000000001/bid",
            USER_TOKEN,
            "application/json",
            r#"{"amount": 500}"#,
        )
        .await;
        assert_eq!(
            (got.as_u16(), problem["error_code"].as_str()),
            (status, Some(code)),
            "{problem}"
        );
        assert_eq!(problem["status"], json!(status));
        assert!(
            !problem.to_string().contains("standing does not open"),
            "a 5xx cause stays in the log: {problem}"
        );
        if code == "bid_too_low" {
            assert_eq!(problem["minimum_next_bid"], 310);
        }
    }
}
