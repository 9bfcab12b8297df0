//! Issue 20 over HTTP: soft close (the item, price events, `extended` live
//! and on resume), the bid ledger (its head, revealed salts and hashes
//! recomputed here, `poison-pill verify`), and editing an item.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::binary::{poison_pill, text};
use crate::support::{SseStream, TestApp, problem};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hex(value: &Value, digits: usize) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == digits
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `h0` of an item, computed here from the spec alone.
fn genesis(item: &str) -> [u8; 32] {
    let id = uuid::Uuid::parse_str(item).unwrap();
    let mut hasher = Sha256::new();
    hasher.update(b"poison-pill ledger v1");
    hasher.update(id.as_bytes());
    hasher.finalize().into()
}

/// The chain over revealed bids, from their public fields alone.
fn chain(item: &str, revealed: &[Value]) -> Vec<String> {
    let mut value = genesis(item);
    revealed
        .iter()
        .map(|bid| {
            let (budget, step) = match &bid["poison"] {
                Value::Null => (0, 0),
                poison => (
                    poison["budget"].as_i64().unwrap(),
                    poison["step"].as_i64().unwrap(),
                ),
            };
            let record = format!(
                "{}|{}|{}|{budget}|{step}|{}|{}",
                bid["seq"],
                bid["bidder_id"].as_str().unwrap(),
                bid["amount"],
                bid["created_at"].as_str().unwrap(),
                bid["salt"].as_str().unwrap(),
            );
            let mut hasher = Sha256::new();
            hasher.update(value);
            hasher.update(record.as_bytes());
            value = hasher.finalize().into();
            hex(&value)
        })
        .collect()
}

async fn list(app: &TestApp, admin: &str, closes_in: chrono::Duration, extra: Value) -> Value {
    let mut body = json!({
        "title": "A clock",
        "base_price": 100,
        "min_increment": 5,
        "close_at": (chrono::Utc::now() + closes_in).to_rfc3339(),
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let response = app.post_as("/api/v1/items", admin, Some(&body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

fn close_at(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_late_new_leader_extends_the_item_live_and_on_resume() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let bidders = app.users("sniper-", 2).await;
    let rule = json!({"window_secs": 600, "extend_by_secs": 900, "max_extensions": 1});
    let item = list(
        &app,
        &admin,
        chrono::Duration::minutes(5),
        json!({ "soft_close": rule }),
    )
    .await;
    let id = item["id"].as_str().unwrap().to_owned();
    assert_eq!(item["soft_close"], rule);
    assert_eq!(item["extensions_used"], 0);
    assert_eq!(item["ledger_head"], hex(&genesis(&id)));
    let listed_close = close_at(&item["close_at"]);

    let (_, mut stream) = SseStream::open(&app.url(&format!("/events/{id}")), None).await;
    assert_eq!(stream.next().await.event, "snapshot");
    let first = app
        .bid(&bidders[0].access, &id, &json!({"amount": 100}))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let placed: Value = first.json().await.unwrap();
    let moved = close_at(&placed["item"]["close_at"]);
    assert!(
        moved > listed_close + chrono::Duration::minutes(9),
        "{moved}"
    );
    assert_eq!(placed["item"]["extensions_used"], 1);

    let price = stream.next().await;
    assert_eq!((price.event.as_str(), price.id), ("price", Some(1)));
    assert_eq!(close_at(&price.data["close_at"]), moved);
    assert_eq!(price.data["extensions_used"], 1);
    let extended = stream.next().await;
    assert_eq!(
        (extended.event.as_str(), extended.id),
        ("extended", Some(1))
    );
    assert_eq!(
        extended.data,
        json!({"item_id": id, "close_at": price.data["close_at"], "extensions_used": 1})
    );
    // The one extension is used: a new leader no longer moves the close.
    let second = app
        .bid(&bidders[1].access, &id, &json!({"amount": 200}))
        .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let price = stream.next().await;
    assert_eq!((price.event.as_str(), price.id), ("price", Some(2)));
    assert_eq!(close_at(&price.data["close_at"]), moved);
    assert_eq!(stream.next_within(Duration::from_millis(300)).await, None);

    // A resume replays the extension after its price, under the same id.
    let (_, mut resumed) = SseStream::open(&app.url(&format!("/events/{id}")), Some(0)).await;
    let replayed: Vec<(String, Option<u64>)> = [
        resumed.next().await,
        resumed.next().await,
        resumed.next().await,
    ]
    .into_iter()
    .map(|e| (e.event, e.id))
    .collect();
    assert_eq!(
        replayed,
        [
            ("price".to_owned(), Some(1)),
            ("extended".to_owned(), Some(1)),
            ("price".to_owned(), Some(2)),
        ]
    );
    assert_eq!(app.item(&id).await["extensions_used"], 1);
}

#[tokio::test]
async fn a_soft_close_rule_out_of_range_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let body = |rule: Value| {
        json!({
            "title": "A clock",
            "base_price": 100,
            "close_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "soft_close": rule,
        })
    };
    for rule in [
        json!({"window_secs": 0, "extend_by_secs": 60, "max_extensions": 1}),
        json!({"window_secs": 60, "extend_by_secs": 3601, "max_extensions": 1}),
        json!({"window_secs": 60, "extend_by_secs": 60, "max_extensions": 101}),
    ] {
        let refused = app
            .post_as("/api/v1/items", &admin, Some(&body(rule.clone())))
            .await;
        let problem = problem(refused, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "soft_close", "{rule}");
    }
    for rule in [
        json!({"window_secs": 60, "extend_by_secs": 60}),
        json!({"window_secs": 60, "extend_by_secs": 60, "max_extensions": 1, "x": 1}),
        json!({"window_secs": 1.5, "extend_by_secs": 60, "max_extensions": 1}),
    ] {
        let refused = app
            .post_as("/api/v1/items", &admin, Some(&body(rule)))
            .await;
        problem(refused, 422, "validation_failed").await;
    }
    // Without the rule an item never extends, and says so.
    let plain = list(&app, &admin, chrono::Duration::hours(1), json!({})).await;
    assert_eq!(
        (&plain["soft_close"], &plain["extensions_used"]),
        (&Value::Null, &json!(0))
    );
}

#[tokio::test]
async fn the_ledger_head_commits_to_the_bids_anyone_can_check_after_close() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let bidders = app.users("ledger-", 3).await;
    let item = app.list_item(&admin, 100, 5, Duration::from_secs(3)).await;
    let ledger = |app: &TestApp, item: String| {
        let app_url = app.url(&format!("/api/v1/items/{item}/ledger"));
        async move {
            let response = reqwest::get(app_url).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };
    let empty = ledger(&app, item.clone()).await;
    assert_eq!(
        empty,
        json!({"item_id": item, "count": 0, "head": hex(&genesis(&item))})
    );
    let offers = [
        json!({"amount": 100}),
        json!({"amount": 120, "poison": {"budget": 300, "step": 10}}),
        json!({"amount": 150}),
    ];
    for (bidder, offer) in bidders.iter().zip(&offers) {
        let placed = app.bid(&bidder.access, &item, offer).await;
        assert_eq!(placed.status(), StatusCode::CREATED);
    }
    // The head seen while the bids are sealed.
    let before_close = ledger(&app, item.clone()).await;
    assert_eq!(before_close["count"], 3);
    assert!(is_hex(&before_close["head"], 64));
    assert_eq!(app.item(&item).await["ledger_head"], before_close["head"]);

    app.closed(&item).await;
    let revealed = app.revealed(&item).await;
    assert_eq!(revealed.len(), 3);
    for bid in &revealed {
        assert!(is_hex(&bid["salt"], 32), "{bid}");
        assert!(is_hex(&bid["hash"], 64), "{bid}");
        let created = bid["created_at"].as_str().unwrap();
        assert_eq!(
            created.len(),
            "2026-12-05T10:00:00.123456Z".len(),
            "{created}"
        );
        assert!(created.ends_with('Z') && created.as_bytes()[19] == b'.');
    }
    // Recomputed here from the revealed bids: each hash, and the head seen
    // before the close.
    let recomputed = chain(&item, &revealed);
    let shown: Vec<String> = revealed
        .iter()
        .map(|b| b["hash"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recomputed, shown);
    assert_eq!(
        recomputed.last().map(String::as_str),
        before_close["head"].as_str()
    );
    problem(
        app.get(&format!("/api/v1/items/{}/ledger", uuid::Uuid::now_v7()))
            .await,
        404,
        "item_not_found",
    )
    .await;
}

#[tokio::test]
async fn verify_exits_1_naming_each_item_whose_chain_was_changed() {
    use sea_orm::ConnectionTrait;

    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let bidders = app.users("verify-", 3).await;
    let sound = app
        .list_item(&admin, 100, 5, Duration::from_secs(600))
        .await;
    let changed = app
        .list_item(&admin, 100, 5, Duration::from_secs(600))
        .await;
    for item in [&sound, &changed] {
        for (n, bidder) in bidders.iter().enumerate() {
            let placed = app
                .bid(&bidder.access, item, &json!({"amount": 100 + 10 * n}))
                .await;
            assert_eq!(placed.status(), StatusCode::CREATED);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_URL", app.database.url.as_str()),
        ("JWT_SECRET", crate::support::JWT_SECRET),
        ("BID_SEALING_KEY", crate::support::SEALING_KEY),
        ("MAIL_DIR", "mail"),
    ];
    let verified = poison_pill(dir.path(), &env, &["verify"]).output().unwrap();
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(text(&verified.stderr).contains("2 item ledgers verified"));

    // Someone with the database owner's rights renumbers a stored bid.
    let db = sea_orm::Database::connect(&app.database.url).await.unwrap();
    for sql in [
        "ALTER TABLE bids DISABLE TRIGGER bids_refuse_update_delete".to_owned(),
        format!("UPDATE bids SET seq = 12 WHERE seq = 2 AND item_id = '{changed}'"),
        "ALTER TABLE bids ENABLE TRIGGER bids_refuse_update_delete".to_owned(),
    ] {
        db.execute_unprepared(&sql).await.unwrap();
    }
    let broken = poison_pill(dir.path(), &env, &["verify"]).output().unwrap();
    assert_eq!(broken.status.code(), Some(1));
    assert_eq!(
        text(&broken.stdout),
        format!("item {changed}: chain breaks at seq 2\n")
    );
    let one = poison_pill(dir.path(), &env, &["verify", "--item", &sound])
        .output()
        .unwrap();
    assert!(one.status.success(), "{}", text(&one.stderr));
    let unknown = uuid::Uuid::now_v7().to_string();
    let missing = poison_pill(dir.path(), &env, &["verify", "--item", &unknown])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no item"));
}

#[tokio::test]
async fn an_admin_edits_an_item_before_its_first_bid_and_never_after() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let bidder = app.user("bidder@example.com").await.access;
    let item = list(&app, &admin, chrono::Duration::hours(1), json!({})).await;
    let id = item["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/items/{id}");
    let later = close_at(&item["close_at"]) + chrono::Duration::hours(1);
    let patch = |token: &str, body: Value| {
        let (path, token) = (path.clone(), token.to_owned());
        let app = &app;
        async move {
            app.send(Method::PATCH, &path, Some(&token), Some(&body))
                .await
        }
    };

    let edited = patch(
        &admin,
        json!({"title": " A mantel clock ", "description": "Walnut", "close_at": later.to_rfc3339()}),
    )
    .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(
        (&edited["title"], &edited["description"]),
        (&json!("A mantel clock"), &json!("Walnut"))
    );
    assert_eq!(close_at(&edited["close_at"]), later);
    assert_eq!(app.item(&id).await["title"], "A mantel clock");

    let earlier = (later - chrono::Duration::minutes(1)).to_rfc3339();
    let refused = problem(
        patch(&admin, json!({"close_at": earlier})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "close_at");
    for body in [
        json!({"title": ""}),
        json!({"base_price": 5}),
        json!({"close_at": (chrono::Utc::now() + chrono::Duration::days(400)).to_rfc3339()}),
    ] {
        problem(patch(&admin, body).await, 422, "validation_failed").await;
    }
    problem(
        patch(&bidder, json!({"title": "Mine"})).await,
        403,
        "forbidden",
    )
    .await;
    let unknown = app
        .send(
            Method::PATCH,
            &format!("/api/v1/items/{}", uuid::Uuid::now_v7()),
            Some(&admin),
            Some(&json!({"title": "Nothing"})),
        )
        .await;
    problem(unknown, 404, "item_not_found").await;

    let bid = app.bid(&bidder, &id, &json!({"amount": 100})).await;
    assert_eq!(bid.status(), StatusCode::CREATED);
    problem(
        patch(&admin, json!({"title": "Too late"})).await,
        409,
        "item_has_bids",
    )
    .await;
    let other = list(&app, &admin, chrono::Duration::hours(1), json!({})).await;
    let other_id = other["id"].as_str().unwrap();
    let cancel = app
        .post_as(&format!("/api/v1/items/{other_id}/cancel"), &admin, None)
        .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let cancelled = app
        .send(
            Method::PATCH,
            &format!("/api/v1/items/{other_id}"),
            Some(&admin),
            Some(&json!({"title": "Back"})),
        )
        .await;
    problem(cancelled, 409, "auction_closed").await;

    let records = app.store.audit_records().await.unwrap();
    let edits: Vec<_> = records
        .iter()
        .filter(|r| r.event == "item_edited")
        .collect();
    assert_eq!(edits.len(), 1, "only the edit that happened is audited");
    assert_eq!(
        edits[0].detail.as_deref(),
        Some(format!("item {id}: title, description, close_at").as_str())
    );
    assert!(edits[0].actor.is_some());
}
