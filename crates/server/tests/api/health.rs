//! `/health` and `/ready`.

use pp_testkit::Backend;
use serde_json::{Value, json};

use crate::support::{Options, RedisMode, TestApp};

async fn health_answers_and_ready_checks_the_database(backend: Backend) {
    let app = TestApp::spawn_with(Options {
        backend,
        ..Options::default()
    })
    .await;
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready", "checks": {"database": "up", "redis": "up"}})
    );
}

#[tokio::test]
async fn health_and_ready_on_postgres() {
    health_answers_and_ready_checks_the_database(Backend::Postgres).await;
}

#[tokio::test]
async fn health_and_ready_on_sqlite() {
    health_answers_and_ready_checks_the_database(Backend::Sqlite).await;
}

#[tokio::test]
async fn ready_is_503_naming_the_database_once_it_is_gone_while_health_stays_200() {
    let app = TestApp::spawn_with(Options::default().redis(RedisMode::None)).await;
    assert_eq!(app.get("/ready").await.status(), 200);
    app.drop_database().await;

    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "unavailable", "checks": {"database": "down"}})
    );
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn ready_stays_200_degraded_naming_redis_when_it_does_not_answer() {
    let app = TestApp::spawn_with(Options::default().redis(RedisMode::Unreachable)).await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "degraded", "checks": {"database": "up", "redis": "down"}})
    );
}

#[tokio::test]
async fn ready_is_503_once_the_database_is_gone_even_with_redis_up() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.get("/ready").await.json::<Value>().await.unwrap(),
        json!({"status": "ready", "checks": {"database": "up", "redis": "up"}})
    );
    app.drop_database().await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "unavailable", "checks": {"database": "down", "redis": "up"}})
    );
}
