//! Items and sealed bids over HTTP: the worked example of docs/spec/auction-rules.md,
//! every rejection in docs/spec/api.md's order, concurrency, sealing and revealing.

use std::collections::HashSet;
use std::time::Duration;

use pp_domain::engine::replay;
use pp_domain::{BidOffer, Money, UserId};
use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Options, TestApp, problem};

/// What a bidder should see of their own bid: state, effective, remaining budget.
type View = (&'static str, i64, i64);

/// One step of the worked example: who bids what, the price after, and the
/// views of every bidder concerned.
type Step = (&'static str, Value, i64, Vec<(&'static str, View)>);

async fn own_view(app: &TestApp, user: &str, item: &str) -> View {
    let response = app.get_as(&format!("/api/v1/items/{item}/bid"), user).await;
    assert_eq!(response.status(), StatusCode::OK);
    let bid: Value = response.json().await.unwrap();
    let state = match bid["state"].as_str().unwrap() {
        "leading" => "leading",
        "outbid" => "outbid",
        "exhausted" => "exhausted",
        "won" => "won",
        "lost" => "lost",
        other => panic!("unknown state {other}"),
    };
    (
        state,
        bid["effective"].as_i64().unwrap(),
        bid["remaining_budget"].as_i64().unwrap(),
    )
}

/// Whether `text` holds `n` as a whole JSON number (`:n` not followed by a digit).
fn has_number(text: &str, n: i64) -> bool {
    let needle = format!(":{n}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

fn plain(amount: i64) -> Value {
    json!({ "amount": amount })
}

fn poisoned(amount: i64, budget: i64, step: i64) -> Value {
    json!({ "amount": amount, "poison": { "budget": budget, "step": step } })
}

#[tokio::test]
async fn the_worked_example_over_http_with_every_bidders_view_after_each_step() {
    let app = TestApp::spawn().await;
    let admin = app.admin("auctioneer@example.com").await.access;
    let names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
    let users = app.users("example-", names.len()).await;
    let token = |name: &str| {
        users[names.iter().position(|n| *n == name).unwrap()]
            .access
            .clone()
    };
    let item = app.list_item(&admin, 100, 5, Duration::from_secs(3)).await;

    // (bidder, bid, price after, minimum next, every bidder's own view after)
    let steps: Vec<Step> = vec![
        (
            "alice",
            plain(120),
            120,
            vec![("alice", ("leading", 120, 0))],
        ),
        (
            "bob",
            poisoned(125, 200, 5),
            125,
            vec![("alice", ("outbid", 120, 0)), ("bob", ("leading", 125, 75))],
        ),
        (
            "carol",
            plain(150),
            155,
            vec![
                ("alice", ("outbid", 120, 0)),
                ("bob", ("leading", 155, 45)),
                ("carol", ("outbid", 150, 0)),
            ],
        ),
        (
            "dave",
            poisoned(160, 300, 10),
            210,
            vec![
                ("bob", ("exhausted", 200, 0)),
                ("carol", ("outbid", 150, 0)),
                ("dave", ("leading", 210, 90)),
            ],
        ),
        (
            "erin",
            poisoned(215, 300, 5),
            300,
            vec![
                ("dave", ("leading", 300, 0)),
                ("erin", ("exhausted", 300, 0)),
            ],
        ),
        (
            "frank",
            plain(305),
            305,
            vec![
                ("dave", ("exhausted", 300, 0)),
                ("erin", ("exhausted", 300, 0)),
                ("frank", ("leading", 305, 0)),
            ],
        ),
    ];
    for (n, (bidder, bid, price, views)) in steps.into_iter().enumerate() {
        let response = app.bid(&token(bidder), &item, &bid).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{bidder}");
        let placed: Value = response.json().await.unwrap();
        assert_eq!(placed["item"]["current_price"], price, "{bidder}");
        assert_eq!(placed["bid"]["amount"], bid["amount"]);
        let public = app.item(&item).await;
        assert_eq!(public["current_price"], price);
        assert_eq!(public["minimum_next_bid"], price + 5);
        assert_eq!(public["bid_count"], n as u64 + 1);
        assert_eq!(public["status"], "open");
        assert!(public.get("final_price").is_none() && public.get("winner_id").is_none());
        for (who, view) in views {
            assert_eq!(
                own_view(&app, &token(who), &item).await,
                view,
                "{who} after {bidder}"
            );
        }
    }

    // grace 309 is below the minimum of 310: refused, with the minimum.
    let low = app.bid(&token("grace"), &item, &plain(309)).await;
    let body = problem(low, 422, "bid_too_low").await;
    assert_eq!(body["minimum_next_bid"], 310);
    let none = app
        .get_as(&format!("/api/v1/items/{item}/bid"), &token("grace"))
        .await;
    problem(none, 404, "bid_not_found").await;

    // At close frank wins and pays 305; the bids are revealed in order.
    let closed = app.closed(&item).await;
    assert_eq!(closed["final_price"], 305);
    let frank_id = app
        .get_as("/api/v1/users/me", &token("frank"))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .clone();
    assert_eq!(closed["winner_id"], frank_id);
    assert_eq!(
        own_view(&app, &token("frank"), &item).await,
        ("won", 305, 0)
    );
    assert_eq!(
        own_view(&app, &token("dave"), &item).await,
        ("lost", 300, 0)
    );
    let revealed = app.revealed(&item).await;
    let summary: Vec<(u64, i64, &str)> = revealed
        .iter()
        .map(|b| {
            (
                b["seq"].as_u64().unwrap(),
                b["amount"].as_i64().unwrap(),
                b["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 120, "lost"),
            (2, 125, "lost"),
            (3, 150, "lost"),
            (4, 160, "lost"),
            (5, 215, "lost"),
            (6, 305, "won"),
        ]
    );
    assert_eq!(revealed[1]["poison"], json!({"budget": 200, "step": 5}));
    assert_eq!(revealed[0]["poison"], Value::Null);
    assert_eq!(revealed[5]["effective"], 305);
    let late = app.bid(&token("grace"), &item, &plain(400)).await;
    problem(late, 409, "auction_closed").await;
}

#[tokio::test]
async fn every_rejection_in_order_and_none_uses_up_the_bid() {
    let app =
        TestApp::spawn_with(Options::default().with("REQUIRE_EMAIL_VERIFICATION", "true")).await;
    let admin = app.admin("seller@example.com").await.access;
    let item = app
        .list_item(&admin, 100, 10, Duration::from_secs(60))
        .await;
    let bidder = app.user("bidder@example.com").await.access;

    // 422 validation_failed: a malformed body, naming the fields.
    for (body, field) in [
        (json!({}), Some("amount")),
        (json!({"amount": 0}), Some("amount")),
        (json!({"amount": "ten"}), Some("amount")),
        (
            json!({"amount": 100, "poison": {"budget": 0, "step": 10}}),
            Some("poison.budget"),
        ),
        (
            json!({"amount": 100, "poison": {"budget": 500}}),
            Some("poison.step"),
        ),
        (json!({"amount": 1_000_000_000_001_i64}), Some("amount")),
        (json!({"amount": 100, "extra": true}), Some("extra")),
    ] {
        let answer = problem(
            app.bid(&bidder, &item, &body).await,
            422,
            "validation_failed",
        )
        .await;
        let fields: Vec<&str> = answer["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        if let Some(field) = field {
            assert!(fields.contains(&field), "{body}: {fields:?}");
        }
    }
    // 404 item_not_found, for unknown and malformed ids.
    for missing in [uuid::Uuid::now_v7().to_string(), "not-an-id".to_owned()] {
        problem(
            app.bid(&bidder, &missing, &plain(100)).await,
            404,
            "item_not_found",
        )
        .await;
    }
    // 403 own_item.
    problem(app.bid(&admin, &item, &plain(100)).await, 403, "own_item").await;
    // 403 email_not_verified: logins need a verified address too, so take
    // a verified account's session and withdraw the verification under it.
    let doubtful = app.user("doubtful@example.com").await.access;
    sea_orm::ConnectionTrait::execute_unprepared(
        app.store.database().connection(),
        "UPDATE users SET email_verified = false WHERE email = 'doubtful@example.com'",
    )
    .await
    .unwrap();
    problem(
        app.bid(&doubtful, &item, &plain(100)).await,
        403,
        "email_not_verified",
    )
    .await;
    app.register("unverified@example.com").await;
    let unverified_login = app
        .login("unverified@example.com", crate::support::PASSWORD)
        .await;
    problem(unverified_login, 403, "email_not_verified").await;
    // 422 invalid_poison: budget below amount, step below the increment.
    let answer = problem(
        app.bid(&bidder, &item, &poisoned(150, 140, 10)).await,
        422,
        "invalid_poison",
    )
    .await;
    assert_eq!(answer["errors"][0]["field"], "poison.budget");
    let answer = problem(
        app.bid(&bidder, &item, &poisoned(150, 300, 9)).await,
        422,
        "invalid_poison",
    )
    .await;
    assert_eq!(answer["errors"][0]["field"], "poison.step");
    // 422 bid_too_low with the minimum.
    let answer = problem(
        app.bid(&bidder, &item, &plain(99)).await,
        422,
        "bid_too_low",
    )
    .await;
    assert_eq!(answer["minimum_next_bid"], 100);

    // None of that used up the bid.
    let placed = app.bid(&bidder, &item, &plain(100)).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    // 409 bid_already_placed, however low or invalid the second bid is.
    for second in [plain(1_000), plain(1), poisoned(150, 140, 1)] {
        problem(
            app.bid(&bidder, &item, &second).await,
            409,
            "bid_already_placed",
        )
        .await;
    }
    // An unauthenticated bid is 401.
    let anonymous = app
        .send(
            Method::POST,
            &format!("/api/v1/items/{item}/bid"),
            None,
            Some(&plain(500)),
        )
        .await;
    problem(anonymous, 401, "unauthorized").await;
}

#[tokio::test]
async fn bidding_needs_a_verified_address_only_when_configured() {
    let app =
        TestApp::spawn_with(Options::default().with("REQUIRE_EMAIL_VERIFICATION", "false")).await;
    let admin = app.admin("seller@example.com").await.access;
    let item = app
        .list_item(&admin, 100, 10, Duration::from_secs(60))
        .await;
    app.register("fresh@example.com").await;
    let fresh = app.session("fresh@example.com").await.access;
    assert_eq!(
        app.bid(&fresh, &item, &plain(100)).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn fifty_bidders_at_once_replay_exactly_to_the_final_price_and_winner() {
    let app = TestApp::spawn().await;
    let admin = app.admin("auctioneer@example.com").await.access;
    let users = app.users("crowd-", 50).await;
    let mut me = Vec::new();
    for user in &users {
        let body: Value = app
            .get_as("/api/v1/users/me", &user.access)
            .await
            .json()
            .await
            .unwrap();
        me.push(body["id"].as_str().unwrap().to_owned());
    }
    let item = app.list_item(&admin, 100, 5, Duration::from_secs(3)).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(users.len()));
    let mut rng = rand::rng();
    let bids: Vec<Value> = (0..users.len())
        .map(|_| {
            let amount = rng.random_range(100..2_000);
            if rng.random_bool(0.5) {
                poisoned(
                    amount,
                    amount + rng.random_range(0..1_000),
                    rng.random_range(5..50),
                )
            } else {
                plain(amount)
            }
        })
        .collect();
    let tasks: Vec<_> = users
        .iter()
        .zip(bids.iter().cloned())
        .map(|(user, bid)| {
            let (client, url, token, barrier) = (
                app.client.clone(),
                app.url(&format!("/api/v1/items/{item}/bid")),
                user.access.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&bid)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut accepted = HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => {
                accepted.insert(body["bid"]["id"].as_str().unwrap().to_owned());
            }
            StatusCode::UNPROCESSABLE_ENTITY => assert_eq!(body["error_code"], "bid_too_low"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!accepted.is_empty());

    let closed = app.closed(&item).await;
    let revealed = app.revealed(&item).await;
    // Every 201 is a revealed bid and every revealed bid a 201.
    assert_eq!(revealed.len(), accepted.len());
    assert_eq!(closed["bid_count"], accepted.len() as u64);
    let seqs: Vec<u64> = revealed
        .iter()
        .map(|b| b["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=accepted.len() as u64).collect::<Vec<_>>());
    // Replaying the revealed bids with the domain's rules gives the outcome.
    let offers: Vec<(UserId, BidOffer)> = revealed
        .iter()
        .map(|b| {
            let amount = Money::new(b["amount"].as_i64().unwrap()).unwrap();
            let offer = match b["poison"].as_object() {
                None => BidOffer::plain(amount),
                Some(p) => BidOffer::poisoned(
                    amount,
                    Money::new(p["budget"].as_i64().unwrap()).unwrap(),
                    Money::new(p["step"].as_i64().unwrap()).unwrap(),
                ),
            };
            (b["bidder_id"].as_str().unwrap().parse().unwrap(), offer)
        })
        .collect();
    let standing = replay(offers.iter().map(|(b, o)| (*b, o)));
    let leader = standing.leader().unwrap();
    assert_eq!(closed["final_price"], leader.price.minor_units());
    assert_eq!(closed["winner_id"], leader.bidder.to_string());
    let winners: Vec<&Value> = revealed.iter().filter(|b| b["state"] == "won").collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0]["bidder_id"], leader.bidder.to_string());
    assert!(
        revealed
            .iter()
            .all(|b| me.contains(&b["bidder_id"].as_str().unwrap().to_owned()))
    );
}

#[tokio::test]
async fn one_users_five_concurrent_bids_give_one_201_and_four_409() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let item = app.list_item(&admin, 100, 5, Duration::from_secs(60)).await;
    let user = app.user("eager@example.com").await.access;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(5));
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let (client, url, token, barrier) = (
                app.client.clone(),
                app.url(&format!("/api/v1/items/{item}/bid")),
                user.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"amount": 100 + i * 50}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        if status == StatusCode::CONFLICT {
            assert_eq!(body["error_code"], "bid_already_placed");
        }
        statuses.push(status.as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409]);
    assert_eq!(app.item(&item).await["bid_count"], 1);
}

#[tokio::test]
async fn nothing_reveals_another_bidders_bid_before_close_and_everything_after() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let item = app
        .list_item(&admin, 1_000, 100, Duration::from_secs(3))
        .await;
    let [alice, bob] = <[_; 2]>::try_from(app.users("secret-", 2).await).unwrap();
    app.bid(&alice.access, &item, &poisoned(1_234_567, 9_876_543, 1_111))
        .await;
    app.bid(&bob.access, &item, &plain(2_345_678)).await;
    // Alice's poison answered: the price is 2_345_678 + 1_111, public.
    let secrets = [1_234_567_i64, 9_876_543, 1_111];

    let alice_id = app
        .get_as("/api/v1/users/me", &alice.access)
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sealed = app.get(&format!("/api/v1/items/{item}/bids")).await;
    problem(sealed, 403, "bids_sealed").await;
    let sealed_to_admin = app
        .get_as(&format!("/api/v1/items/{item}/bids"), &admin)
        .await;
    problem(sealed_to_admin, 403, "bids_sealed").await;
    let mut seen = String::new();
    for path in [
        format!("/api/v1/items/{item}"),
        "/api/v1/items".to_owned(),
        "/api/v1/items?status=open".to_owned(),
        format!("/api/v1/items/{item}/bid"),
        "/api/v1/me/bids".to_owned(),
        "/metrics".to_owned(),
    ] {
        for token in [&bob.access, &admin] {
            seen.push_str(&app.get_as(&path, token).await.text().await.unwrap());
        }
    }
    // The public price is there; nobody else's amount, budget, step or identity is.
    assert!(has_number(&seen, 2_346_789));
    for secret in secrets {
        assert!(!has_number(&seen, secret), "{secret} leaked before close");
    }
    assert!(
        !seen.contains(&alice_id),
        "the leader's identity leaked before close"
    );
    // Bob sees his own bid, and only his.
    let own: Value = app
        .get_as(&format!("/api/v1/items/{item}/bid"), &bob.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (own["amount"].as_i64(), own["state"].as_str()),
        (Some(2_345_678), Some("outbid"))
    );

    app.closed(&item).await;
    let revealed = serde_json::to_string(&app.revealed(&item).await).unwrap();
    for secret in [1_234_567, 9_876_543, 1_111, 2_345_678] {
        assert!(
            has_number(&revealed, secret),
            "{secret} revealed after close"
        );
    }
    assert!(revealed.contains(&alice_id));
}

#[tokio::test]
async fn admins_list_and_cancel_items_and_everyone_browses_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let user = app.user("browser@example.com").await.access;

    // Only admins list items, with every rule checked.
    let create = json!({"title": "Clock", "base_price": 500, "close_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()});
    problem(
        app.post_as("/api/v1/items", &user, Some(&create)).await,
        403,
        "forbidden",
    )
    .await;
    let invalid = json!({"title": "", "base_price": 0, "min_increment": 0, "currency": "dollars", "close_at": "2020-01-01T00:00:00Z"});
    let answer = problem(
        app.post_as("/api/v1/items", &admin, Some(&invalid)).await,
        422,
        "validation_failed",
    )
    .await;
    let fields: HashSet<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in [
        "title",
        "base_price",
        "min_increment",
        "currency",
        "close_at",
    ] {
        assert!(fields.contains(field), "{field} in {fields:?}");
    }
    let created = app.post_as("/api/v1/items", &admin, Some(&create)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let clock: Value = created.json().await.unwrap();
    assert_eq!(
        (
            clock["min_increment"].as_i64(),
            clock["currency"].as_str(),
            clock["current_price"].as_null()
        ),
        (Some(100), Some("usd"), Some(()))
    );
    assert_eq!(clock["minimum_next_bid"], 500);

    let mut ids = vec![clock["id"].as_str().unwrap().to_owned()];
    for _ in 0..4 {
        ids.push(
            app.list_item(&admin, 100, 5, Duration::from_secs(3600))
                .await,
        );
    }
    // Cancel: only without bids.
    app.bid(&user, &ids[1], &plain(100)).await;
    problem(
        app.post_as(&format!("/api/v1/items/{}/cancel", ids[1]), &admin, None)
            .await,
        409,
        "item_has_bids",
    )
    .await;
    problem(
        app.post_as(&format!("/api/v1/items/{}/cancel", ids[2]), &user, None)
            .await,
        403,
        "forbidden",
    )
    .await;
    let cancelled = app
        .post_as(&format!("/api/v1/items/{}/cancel", ids[2]), &admin, None)
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["status"],
        "cancelled"
    );
    problem(
        app.post_as(&format!("/api/v1/items/{}/cancel", ids[2]), &admin, None)
            .await,
        409,
        "auction_closed",
    )
    .await;
    problem(
        app.post_as(
            &format!("/api/v1/items/{}/cancel", uuid::Uuid::now_v7()),
            &admin,
            None,
        )
        .await,
        404,
        "item_not_found",
    )
    .await;

    // The public list: newest first, pages, status filter, signed cursors.
    let mut listed = Vec::new();
    let mut path = "/api/v1/items?limit=2".to_owned();
    loop {
        let page: Value = app.get(&path).await.json().await.unwrap();
        listed.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(page["has_more"], true);
                path = format!("/api/v1/items?limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    let open: Value = app
        .get("/api/v1/items?status=open")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["items"].as_array().unwrap().len(), 4);
    let gone: Value = app
        .get("/api/v1/items?status=cancelled")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(gone["items"][0]["id"], ids[2].as_str());
    problem(
        app.get("/api/v1/items?status=sold").await,
        422,
        "validation_failed",
    )
    .await;
    problem(
        app.get("/api/v1/items?cursor=forged.cursor").await,
        400,
        "invalid_cursor",
    )
    .await;
    // A cursor of one filter is no good for another.
    let page: Value = app
        .get("/api/v1/items?status=open&limit=1")
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    problem(
        app.get(&format!("/api/v1/items?status=closed&cursor={cursor}"))
            .await,
        400,
        "invalid_cursor",
    )
    .await;
    // Orders: each pages through every item by its key, and its cursors
    // are no good for another order.
    problem(
        app.get("/api/v1/items?sort=cheapest").await,
        422,
        "validation_failed",
    )
    .await;
    for (sort, key) in [
        ("price_asc", "price"),
        ("price_desc", "price"),
        ("closing_soon", "close_at"),
    ] {
        let mut keys = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut path = format!("/api/v1/items?sort={sort}&limit=2");
        loop {
            let page: Value = app.get(&path).await.json().await.unwrap();
            for item in page["items"].as_array().unwrap() {
                assert!(
                    seen.insert(item["id"].as_str().unwrap().to_owned()),
                    "{sort}: an item twice"
                );
                keys.push(if key == "price" {
                    let price = item["current_price"].as_i64();
                    price.unwrap_or_else(|| item["base_price"].as_i64().unwrap())
                } else {
                    let at = item[key].as_str().unwrap();
                    chrono::DateTime::parse_from_rfc3339(at)
                        .unwrap()
                        .timestamp_micros()
                });
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/items?sort={sort}&limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(
            seen,
            ids.iter().cloned().collect(),
            "{sort}: every item once"
        );
        let mut ordered = keys.clone();
        ordered.sort_unstable();
        if sort == "price_desc" {
            ordered.reverse();
        }
        assert_eq!(keys, ordered, "{sort}");
    }
    let page: Value = app
        .get("/api/v1/items?sort=price_desc&limit=1")
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    for other in ["sort=price_asc&", "", "sort=newest&"] {
        problem(
            app.get(&format!("/api/v1/items?{other}cursor={cursor}"))
                .await,
            400,
            "invalid_cursor",
        )
        .await;
    }
    problem(
        app.get(&format!("/api/v1/items/{}", uuid::Uuid::now_v7()))
            .await,
        404,
        "item_not_found",
    )
    .await;

    // My bids, newest first, each with where it stands.
    app.bid(&user, &ids[3], &poisoned(100, 400, 5)).await;
    let mine: Value = app
        .get_as("/api/v1/me/bids?limit=1", &user)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"][0]["item_id"], ids[3].as_str());
    assert_eq!(mine["items"][0]["remaining_budget"], 300);
    assert_eq!(mine["items"][0]["currency"], "usd");
    assert_eq!(mine["items"][0]["currency_decimals"], 2);
    let rest: Value = app
        .get_as(
            &format!(
                "/api/v1/me/bids?cursor={}",
                mine["next_cursor"].as_str().unwrap()
            ),
            &user,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["item_id"], ids[1].as_str());
    assert_eq!(rest["has_more"], false);
    // Someone else's cursor is refused.
    let other = app.user("other@example.com").await.access;
    let foreign = app
        .get_as(
            &format!(
                "/api/v1/me/bids?cursor={}",
                mine["next_cursor"].as_str().unwrap()
            ),
            &other,
        )
        .await;
    problem(foreign, 400, "invalid_cursor").await;
}

#[tokio::test]
async fn the_write_limit_allows_three_bids_or_listings_a_minute_per_user() {
    let app = TestApp::spawn_with(Options::default().with("RATE_LIMIT_WRITE", "3/60s")).await;
    let admin = app.admin("seller@example.com").await.access;
    let mut items = Vec::new();
    for _ in 0..3 {
        items.push(
            app.list_item(&admin, 100, 5, Duration::from_secs(600))
                .await,
        );
    }
    let create = json!({"title": "One too many", "base_price": 100, "close_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()});
    let limited = app.post_as("/api/v1/items", &admin, Some(&create)).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(limited.headers()["ratelimit-limit"], "3");
    problem(limited, 429, "rate_limited").await;

    let bidder = app.user("quick@example.com").await.access;
    for item in &items {
        let placed = app.bid(&bidder, item, &plain(100)).await;
        assert_eq!(placed.status(), StatusCode::CREATED);
    }
    let fourth = app.bid(&bidder, &items[0], &plain(500)).await;
    problem(fourth, 429, "rate_limited").await;
    // The limit is per user: another bidder is not affected.
    let other = app.user("calm@example.com").await.access;
    assert_eq!(
        app.bid(&other, &items[0], &plain(500)).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_currency_says_its_decimals_before_any_item_has_it() {
    let app = TestApp::spawn().await;
    for (code, expected) in [
        ("usd", json!({"code": "usd", "decimals": 2})),
        ("JPY", json!({"code": "jpy", "decimals": 0})),
        ("huf", json!({"code": "huf", "decimals": 2})),
        ("kwd", json!({"code": "kwd", "decimals": 3})),
        ("zzz", json!({"code": "zzz", "decimals": 2})),
    ] {
        let response = app.get(&format!("/api/v1/currencies/{code}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{code}");
        assert_eq!(response.json::<Value>().await.unwrap(), expected);
    }
    for bad in ["us", "usdd", "u%24d", "0", "%20usd"] {
        problem(
            app.get(&format!("/api/v1/currencies/{bad}")).await,
            422,
            "validation_failed",
        )
        .await;
    }
}

#[tokio::test]
async fn a_search_ranks_its_matches_and_keeps_its_own_cursors() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let close_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let mut ids = HashSet::new();
    for (title, description, base_price) in [
        ("Café table", "Marble top", 900),
        ("Lamp", "Fits a café table", 500),
        ("Table lamp", "Green shade", 300),
        ("Chair", "Oak", 100),
    ] {
        let created: Value = app
            .post_as(
                "/api/v1/items",
                &admin,
                Some(&json!({"title": title, "description": description,
                    "base_price": base_price, "close_at": close_at})),
            )
            .await
            .json()
            .await
            .unwrap();
        ids.insert(created["id"].as_str().unwrap().to_owned());
    }
    let titles = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let get = |path: String| {
        let app = &app;
        async move {
            let response = app.get(&path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };
    // Every word must match, accents and case ignored, the title first.
    let both = get("/api/v1/items?q=CAFE%20Table".into()).await;
    assert_eq!(titles(&both), ["Café table", "Lamp"]);
    // A page at a time, each cursor valid for its search's words only.
    let first = get("/api/v1/items?q=cafe+table&limit=1".into()).await;
    assert_eq!(titles(&first), ["Café table"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let rest = get(format!(
        "/api/v1/items?q=cafe+table&limit=1&cursor={cursor}"
    ))
    .await;
    assert_eq!(titles(&rest), ["Lamp"]);
    assert_eq!(rest["has_more"], false);
    // Valid for that search only, as typed: another spelling may match
    // other items.
    for other in [
        "q=cafe&",
        "q=CAFE,%20Table!&",
        "",
        "q=cafe+table&sort=newest&",
        "q=cafe+table&status=open&",
    ] {
        problem(
            app.get(&format!("/api/v1/items?{other}cursor={cursor}"))
                .await,
            400,
            "invalid_cursor",
        )
        .await;
    }
    // A search under another order keeps its filter.
    let cheapest = get("/api/v1/items?q=table&sort=price_asc".into()).await;
    assert_eq!(titles(&cheapest), ["Table lamp", "Lamp", "Café table"]);
    // Punctuation matches nothing; a blank search is no search.
    for odd in ["%25", "_", "%27%22%25_%5C", "*", "%20%2D"] {
        let none = get(format!("/api/v1/items?q={odd}")).await;
        assert_eq!(titles(&none), Vec::<String>::new(), "{odd}");
    }
    // Control characters (a NUL no database takes) count as spaces.
    for blank in ["%20%20", "%00%01%7F", "%00"] {
        let all = get(format!("/api/v1/items?q={blank}")).await;
        let listed: HashSet<String> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, ids, "{blank}");
    }
    let cafe = get("/api/v1/items?q=caf%00e".into()).await;
    assert!(titles(&cafe).is_empty(), "a NUL splits a word");
    let answer = problem(
        app.get(&format!("/api/v1/items?q={}", "a".repeat(201)))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(answer["errors"][0]["field"], "q");
    get(format!("/api/v1/items?q={}", "é".repeat(200))).await;
}
