//! Live updates over real connections: Server-Sent Events with resume, the
//! notification WebSocket, and both across two instances sharing
//! PostgreSQL and Redis.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Notifications, Options, SseStream, TestApp, problem};

fn plain(amount: i64) -> Value {
    json!({ "amount": amount })
}

fn poisoned(amount: i64, budget: i64, step: i64) -> Value {
    json!({ "amount": amount, "poison": { "budget": budget, "step": step } })
}

async fn placed(app: &TestApp, user: &str, item: &str, bid: &Value) {
    let response = app.bid(user, item, bid).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{bid}");
}

#[tokio::test]
async fn price_events_carry_the_bid_count_and_a_resume_gets_exactly_what_was_missed() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let bidders = app.users("watcher-", 4).await;
    let item = app.list_item(&admin, 100, 5, Duration::from_secs(4)).await;

    let (status, mut stream) = SseStream::open(&app.url(&format!("/events/{item}")), None).await;
    assert_eq!(status, StatusCode::OK);
    let snapshot = stream.next().await;
    assert_eq!(
        (snapshot.event.as_str(), snapshot.id),
        ("snapshot", Some(0))
    );
    assert_eq!(snapshot.data["id"], item.as_str());
    assert_eq!(snapshot.data["minimum_next_bid"], 100);

    placed(&app, &bidders[0].access, &item, &plain(120)).await;
    placed(&app, &bidders[1].access, &item, &poisoned(125, 200, 5)).await;
    let first = stream.next().await;
    assert_eq!((first.event.as_str(), first.id), ("price", Some(1)));
    assert_eq!(
        first.data,
        json!({
            "item_id": item,
            "current_price": 120,
            "minimum_next_bid": 125,
            "bid_count": 1,
            "at": first.data["at"],
            "close_at": snapshot.data["close_at"],
            "extensions_used": 0,
            "ledger_head": first.data["ledger_head"],
        })
    );
    // The head after the bid: what the item's ledger shows now.
    let ledger: Value = app
        .get(&format!("/api/v1/items/{item}/ledger"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(first.data["ledger_head"], snapshot.data["ledger_head"]);
    assert_eq!(ledger["count"], 2);
    let second = stream.next().await;
    assert_eq!(
        (second.id, &second.data["current_price"]),
        (Some(2), &json!(125))
    );
    assert_eq!(second.data["ledger_head"], ledger["head"]);
    drop(stream);

    // While this client is away two more bids happen.
    placed(&app, &bidders[2].access, &item, &plain(150)).await;
    placed(&app, &bidders[3].access, &item, &plain(160)).await;
    let (_, mut resumed) =
        SseStream::open(&app.url(&format!("/api/v1/items/{item}/events")), Some(2)).await;
    let third = resumed.next().await;
    assert_eq!((third.event.as_str(), third.id), ("price", Some(3)));
    assert_eq!(
        third.data["current_price"], 155,
        "bob's poison answered carol"
    );
    let fourth = resumed.next().await;
    assert_eq!(
        (fourth.id, &fourth.data["current_price"]),
        (Some(4), &json!(165))
    );
    assert_eq!(fourth.data["minimum_next_bid"], 170);

    // The close is event 5 (bid count + 1); then the stream ends.
    let closed = resumed.next_within(Duration::from_secs(8)).await.unwrap();
    assert_eq!((closed.event.as_str(), closed.id), ("closed", Some(5)));
    assert_eq!(
        closed.data,
        json!({"item_id": item, "final_price": 165, "has_winner": true, "status": "closed"})
    );
    assert_eq!(resumed.next_within(Duration::from_secs(1)).await, None);

    // Resuming from the middle replays the rest, close included; from the
    // end, 204 tells EventSource to stop.
    let (_, mut late) = SseStream::open(&app.url(&format!("/events/{item}")), Some(3)).await;
    let ids: Vec<Option<u64>> = vec![late.next().await.id, late.next().await.id];
    assert_eq!(ids, vec![Some(4), Some(5)]);
    let (status, _) = SseStream::open(&app.url(&format!("/events/{item}")), Some(5)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A fresh subscriber of a closed item gets its snapshot, id 5, and the end.
    let (_, mut fresh) = SseStream::open(&app.url(&format!("/events/{item}")), None).await;
    let snapshot = fresh.next().await;
    assert_eq!(
        (snapshot.event.as_str(), snapshot.id),
        ("snapshot", Some(5))
    );
    assert_eq!(snapshot.data["status"], "closed");
    assert_eq!(fresh.next_within(Duration::from_secs(1)).await, None);

    let missing = app.get(&format!("/events/{}", uuid::Uuid::now_v7())).await;
    problem(missing, 404, "item_not_found").await;
}

#[tokio::test]
async fn a_cancelled_item_ends_its_stream() {
    let app = TestApp::spawn_with(Options::default().redis(crate::support::RedisMode::None)).await;
    let admin = app.admin("seller@example.com").await.access;
    let item = app
        .list_item(&admin, 100, 5, Duration::from_secs(600))
        .await;
    let (_, mut stream) = SseStream::open(&app.url(&format!("/events/{item}")), None).await;
    assert_eq!(stream.next().await.event, "snapshot");
    let cancelled = app
        .post_as(&format!("/api/v1/items/{item}/cancel"), &admin, None)
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let end = stream.next().await;
    assert_eq!((end.event.as_str(), end.id), ("closed", Some(1)));
    assert_eq!(end.data["status"], "cancelled");
    assert_eq!(end.data["has_winner"], false);
}

#[tokio::test]
async fn a_ticket_opens_one_socket_and_bidders_hear_what_happened_to_their_bids() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let [ann, bob, cat] = <[_; 3]>::try_from(app.users("notified-", 3).await).unwrap();
    let item = app.list_item(&admin, 100, 5, Duration::from_secs(4)).await;

    let ticket = app.ticket(&ann.access).await;
    let mut ann_socket = Notifications::open(&app.address, &ticket).await.unwrap();
    assert_eq!(
        Notifications::open(&app.address, &ticket).await.err(),
        Some(401),
        "single use"
    );
    assert_eq!(
        Notifications::open(&app.address, "forged").await.err(),
        Some(401)
    );
    let mut bob_socket = Notifications::open(&app.address, &app.ticket(&bob.access).await)
        .await
        .unwrap();

    // ann leads plainly; bob's poison takes the lead: ann is outbid.
    placed(&app, &ann.access, &item, &plain(120)).await;
    placed(&app, &bob.access, &item, &poisoned(125, 300, 10)).await;
    let outbid = ann_socket.next().await;
    assert_eq!(outbid["type"], "outbid");
    assert_eq!(
        outbid["data"],
        json!({"item_id": item, "current_price": 130, "minimum_next_bid": 135})
    );
    assert!(outbid["at"].is_string());

    // cat bids 200: bob's poison raises to 210, leaving 90 of his budget.
    placed(&app, &cat.access, &item, &plain(200)).await;
    let raised = bob_socket.next().await;
    assert_eq!(raised["type"], "auto_raised");
    assert_eq!(
        raised["data"],
        json!({"item_id": item, "effective": 210, "remaining_budget": 90})
    );
    // ann hears nothing of bids that do not change her bid.
    assert_eq!(
        ann_socket.next_within(Duration::from_millis(300)).await,
        None
    );

    // At close the winner is told, and so is every loser.
    let won = bob_socket
        .next_within(Duration::from_secs(8))
        .await
        .unwrap();
    assert_eq!(won["type"], "won");
    assert_eq!(won["data"], json!({"item_id": item, "final_price": 210}));
    let lost = ann_socket
        .next_within(Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        (lost["type"].as_str(), &lost["data"]["final_price"]),
        (Some("lost"), &json!(210))
    );

    // A ticket needs a logged-in user.
    let anonymous = app.post("/api/v1/ws-ticket", &json!({})).await;
    problem(anonymous, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_socket_closes_when_its_session_ends_and_only_then() {
    let app = TestApp::spawn_with(Options::default().with("WS_PING_SECS", "1")).await;
    app.verified_user("two-tabs@example.com").await;
    let (ended, kept) = (
        app.session("two-tabs@example.com").await,
        app.session("two-tabs@example.com").await,
    );
    let mut ended_socket = Notifications::open(&app.address, &app.ticket(&ended.access).await)
        .await
        .unwrap();
    let mut kept_socket = Notifications::open(&app.address, &app.ticket(&kept.access).await)
        .await
        .unwrap();
    // Pings come and go (each client answers while it reads): a live
    // session stays.
    let (first, second) = tokio::join!(
        ended_socket.closed_within(Duration::from_millis(2_500)),
        kept_socket.closed_within(Duration::from_millis(2_500))
    );
    assert_eq!((first, second), (None, None));

    let logout = app
        .post_as("/api/v1/auth/logout", &ended.access, None)
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let (closed, kept_open) = tokio::join!(
        ended_socket.closed_within(Duration::from_secs(5)),
        // The same user's other session keeps its socket.
        kept_socket.closed_within(Duration::from_secs(3))
    );
    let (code, reason) = closed.expect("the logged-out session's socket closes at the next ping");
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("session ended"), "{reason}");
    assert_eq!(kept_open, None);
    let logout_all = app
        .post_as("/api/v1/auth/logout-all", &kept.access, None)
        .await;
    assert_eq!(logout_all.status(), StatusCode::NO_CONTENT);
    assert!(
        kept_socket
            .closed_within(Duration::from_secs(5))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn two_instances_share_live_events_and_close_each_item_once() {
    let app = TestApp::spawn().await;
    let other = app.sibling().await;
    let admin = app.admin("seller@example.com").await.access;
    let [ann, bob] = <[_; 2]>::try_from(app.users("twin-", 2).await).unwrap();
    let item = app.list_item(&admin, 100, 5, Duration::from_secs(3)).await;

    let (_, mut here) = SseStream::open(&app.url(&format!("/events/{item}")), None).await;
    let (_, mut there) = SseStream::open(&format!("{}/events/{item}", other.address), None).await;
    assert_eq!(here.next().await.event, "snapshot");
    assert_eq!(there.next().await.event, "snapshot");
    let mut winner_here = Notifications::open(&app.address, &app.ticket(&bob.access).await)
        .await
        .unwrap();
    // Tickets work on whichever instance the socket reaches.
    let mut loser_there = Notifications::open(&other.address, &app.ticket(&ann.access).await)
        .await
        .unwrap();

    // A bid taken by the other instance reaches subscribers here, and back.
    let on_other = reqwest::Client::new()
        .post(format!("{}/api/v1/items/{item}/bid", other.address))
        .bearer_auth(&ann.access)
        .json(&plain(150))
        .send()
        .await
        .unwrap();
    assert_eq!(on_other.status(), StatusCode::CREATED);
    let seen_here = here.next().await;
    assert_eq!(
        (seen_here.id, &seen_here.data["current_price"]),
        (Some(1), &json!(150))
    );
    placed(&app, &bob.access, &item, &plain(160)).await;
    // The other instance saw bid 1 first, then bid 2.
    assert_eq!(there.next().await.id, Some(1));
    assert_eq!(there.next().await.id, Some(2));
    assert_eq!(here.next().await.id, Some(2));
    let outbid = loser_there.next().await;
    assert_eq!(outbid["type"], "outbid");

    // Both closers run; the item closes once: one closed event on each
    // instance's stream, one won, one lost.
    for stream in [&mut here, &mut there] {
        let closed = stream.next_within(Duration::from_secs(8)).await.unwrap();
        assert_eq!((closed.event.as_str(), closed.id), ("closed", Some(3)));
        assert_eq!(stream.next_within(Duration::from_secs(1)).await, None);
    }
    assert_eq!(winner_here.next().await["type"], "won");
    assert_eq!(loser_there.next().await["type"], "lost");
    assert_eq!(
        winner_here.next_within(Duration::from_secs(1)).await,
        None,
        "one won only"
    );
    assert_eq!(
        loser_there.next_within(Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test]
async fn a_stream_fills_a_gap_from_the_database_when_events_went_missing() {
    use pp_domain::engine::BidCommand;
    use pp_domain::ports::{AuctionStore, BidDecision, SystemClock};
    use pp_domain::{BidOffer, ItemId, Money, UserId};

    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let bidders = app.users("gap-", 3).await;
    let item = app
        .list_item(&admin, 100, 5, Duration::from_secs(600))
        .await;
    let (_, mut stream) = SseStream::open(&app.url(&format!("/events/{item}")), None).await;
    assert_eq!(stream.next().await.id, Some(0));

    // Two bids stored without their events being published (as if the
    // messages were lost), then one more over HTTP.
    for (session, amount) in bidders[..2].iter().zip([100, 110]) {
        let me: Value = app
            .get_as("/api/v1/users/me", &session.access)
            .await
            .json()
            .await
            .unwrap();
        let command = BidCommand {
            item: item.parse::<ItemId>().unwrap(),
            bidder: me["id"].as_str().unwrap().parse::<UserId>().unwrap(),
            bidder_may_bid: true,
            offer: BidOffer::plain(Money::new(amount).unwrap()),
        };
        app.store
            .place_bid(BidDecision::new(command, std::sync::Arc::new(SystemClock)))
            .await
            .unwrap();
    }
    placed(&app, &bidders[2].access, &item, &plain(130)).await;
    let events: Vec<(Option<u64>, Value)> = vec![
        stream.next().await,
        stream.next().await,
        stream.next().await,
    ]
    .into_iter()
    .map(|e| (e.id, e.data["current_price"].clone()))
    .collect();
    assert_eq!(
        events,
        vec![
            (Some(1), json!(100)),
            (Some(2), json!(110)),
            (Some(3), json!(130))
        ]
    );
}

#[tokio::test]
async fn a_resume_far_behind_replays_every_missed_event_in_order_then_goes_live() {
    use pp_domain::engine::BidCommand;
    use pp_domain::ports::{AuctionStore, BidDecision, SystemClock};
    use pp_domain::{BidOffer, ItemId, Money, Role};

    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let item = app
        .list_item(&admin, 100, 5, Duration::from_secs(600))
        .await;
    let id = item.parse::<ItemId>().unwrap();
    // More bids than one replay query fetches (500), straight into the
    // store: the stream must page through them.
    let missed = 1_100;
    for n in 0..missed {
        let bidder = pp_testkit::create_user(app.store.as_ref(), Role::User, true).await;
        let command = BidCommand {
            item: id,
            bidder: bidder.id,
            bidder_may_bid: true,
            offer: BidOffer::plain(Money::new(100 + 5 * n).unwrap()),
        };
        app.store
            .place_bid(BidDecision::new(command, std::sync::Arc::new(SystemClock)))
            .await
            .unwrap();
    }
    let (status, mut stream) = SseStream::open(&app.url(&format!("/events/{item}")), Some(0)).await;
    assert_eq!(status, StatusCode::OK);
    for n in 0..missed {
        let event = stream.next().await;
        assert_eq!(
            (event.event.as_str(), event.id, &event.data["current_price"]),
            ("price", Some(n as u64 + 1), &json!(100 + 5 * n))
        );
    }
    let late = app.users("late-", 1).await;
    placed(&app, &late[0].access, &item, &plain(100 + 5 * missed)).await;
    let live = stream.next().await;
    assert_eq!(live.id, Some(missed as u64 + 1));

    // The open stream is counted (and uncounted when dropped, however it
    // ends: actix-web notices a vanished client only when a write fails,
    // too late for a test to wait for).
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let open = metrics
        .lines()
        .find_map(|line| line.strip_prefix("sse_streams "))
        .map(str::trim);
    assert_eq!(open, Some("1"));
}

#[tokio::test]
async fn an_offline_bidder_finds_what_happened_in_their_notifications_and_marks_them_read() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada@example.com").await;
    let item = app
        .list_item(&admin.access, 100, 10, Duration::from_secs(600))
        .await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cat = app.user("cat@example.com").await;
    // Ann bids and goes away; Bob outbids her twice over, on two items.
    placed(&app, &ann.access, &item, &json!({"amount": 150})).await;
    placed(&app, &bob.access, &item, &json!({"amount": 400})).await;
    // The first time, she is mailed a notice with a link to the item.
    let notice = app.await_notices_to("ann@example.com", 1).await.remove(0);
    assert!(
        notice.contains("is outbid: the price is now 4.00 USD."),
        "{notice}"
    );
    assert!(
        notice.contains(&format!("\r\nhttps://auction.test/items/{item}\r\n")),
        "{notice}"
    );
    // Then she turns notices off: the second time, she is not mailed.
    let quiet = app
        .send(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            Some(&ann.access),
            Some(&json!({"notify_email": false})),
        )
        .await;
    assert_eq!(quiet.status(), StatusCode::OK);
    let other = app
        .list_item(&admin.access, 100, 10, Duration::from_secs(600))
        .await;
    placed(&app, &ann.access, &other, &json!({"amount": 120})).await;
    placed(&app, &bob.access, &other, &json!({"amount": 300})).await;
    // A later notice (the oldest due goes first) proves hers was not held
    // back, only never written.
    placed(&app, &cat.access, &item, &json!({"amount": 900})).await;
    app.await_notices_to("bob@example.com", 1).await;
    assert_eq!(app.notices_to("ann@example.com").len(), 1);

    let list = |token: String, query: &'static str| {
        let app = &app;
        async move {
            let response = app
                .get_as(&format!("/api/v1/me/notifications{query}"), &token)
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };
    let anns = list(ann.access.clone(), "").await;
    let items = anns["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let newest = &items[0];
    assert_eq!(newest["type"], "outbid");
    assert_eq!(newest["read"], false);
    assert_eq!(newest["data"]["item_id"], other.as_str());
    assert_eq!(newest["data"]["item_title"], "A painted lamp");
    assert_eq!(newest["data"]["current_price"], 300);
    assert_eq!(newest["data"]["currency"], "usd");
    assert_eq!(newest["data"]["currency_decimals"], 2);
    assert_eq!(anns["unread"], 2);
    assert_eq!(items[1]["data"]["item_id"], item.as_str());
    let bobs = list(bob.access.clone(), "").await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1, "{bobs}");
    assert_eq!(bobs["items"][0]["data"]["item_id"], item.as_str());

    // Pages of one, then marking the older one read leaves the newer unread.
    let first = list(ann.access.clone(), "?limit=1").await;
    assert_eq!(first["has_more"], true);
    let older_id = items[1]["id"].as_str().unwrap();
    let marked = app
        .post_as(
            "/api/v1/me/notifications/read",
            &ann.access,
            Some(&json!({"up_to_id": older_id})),
        )
        .await;
    assert_eq!(marked.status(), StatusCode::NO_CONTENT);
    let after = list(ann.access.clone(), "").await;
    assert_eq!(after["unread"], 1);
    assert_eq!(after["items"][0]["read"], false);
    assert_eq!(after["items"][1]["read"], true);
    // Someone else's, or nobody's: 404.
    let foreign = app
        .post_as(
            "/api/v1/me/notifications/read",
            &bob.access,
            Some(&json!({"up_to_id": older_id})),
        )
        .await;
    problem(foreign, 404, "not_found").await;
    let anonymous = app.get("/api/v1/me/notifications").await;
    problem(anonymous, 401, "unauthorized").await;
}
