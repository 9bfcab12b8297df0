//! Every migration goes up, down to zero and up again on both backends.

use pp_store_sql::Database;
use pp_testkit::{Backend, TestDatabase};
use sea_orm::ConnectionTrait;

use crate::on_both_backends;

async fn migrations_go_up_down_to_zero_and_up_again(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = Database::connect(&database.settings()).await.unwrap();
    let pending = db.migration_status().await.unwrap();
    assert!(pending.len() >= 3 && pending.iter().all(|m| !m.applied));

    db.migrate_up().await.unwrap();
    assert!(
        db.migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| m.applied)
    );
    db.migrate_down(pending.len() as u32).await.unwrap();
    assert!(
        db.migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| !m.applied)
    );
    let leftover = db
        .connection()
        .execute_unprepared("SELECT 1 FROM bids")
        .await;
    assert!(leftover.is_err(), "down must drop the tables");
    db.migrate_up().await.unwrap();
    assert!(
        db.migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| m.applied)
    );
    db.connection()
        .execute_unprepared("SELECT 1 FROM bids")
        .await
        .unwrap();
    db.ping().await.unwrap();
}

async fn one_step_down_reverts_only_the_newest(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.migrated().await;
    db.migrate_down(1).await.unwrap();
    let status = db.migration_status().await.unwrap();
    let applied: Vec<bool> = status.iter().map(|m| m.applied).collect();
    let mut expected = vec![true; status.len()];
    if let Some(last) = expected.last_mut() {
        *last = false;
    }
    assert_eq!(applied, expected);
}

async fn instances_starting_together_migrate_once(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut handles = Vec::new();
    for _ in 0..3 {
        handles.push(Database::connect(&database.settings()).await.unwrap());
    }
    let results = futures::future::join_all(handles.iter().map(Database::migrate_up)).await;
    for result in results {
        result.unwrap();
    }
    assert!(
        handles[0]
            .migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| m.applied)
    );
}

/// An instance starting while another one migrates waits for it, however
/// short the lock timeout its requests use (PostgreSQL; the other one is
/// played by a connection holding the migration lock).
#[tokio::test]
async fn an_instance_waits_for_another_ones_migration_past_the_lock_timeout() {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let database = TestDatabase::create(Backend::Postgres).await;
    let mut settings = database.settings();
    settings.lock_timeout = std::time::Duration::from_millis(100);
    let other = Database::connect(&database.settings()).await.unwrap();
    let migrating = other.connection().begin().await.unwrap();
    migrating
        .execute_unprepared("SELECT pg_advisory_xact_lock(x'706f69736f6e'::bigint)")
        .await
        .unwrap();
    let starting = Database::connect(&settings).await.unwrap();
    let waiting = tokio::spawn(async move { starting.migrate_up().await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "it did not wait: {:?}",
        waiting.await
    );
    migrating.commit().await.unwrap();
    waiting.await.unwrap().unwrap();
}

on_both_backends!(
    instances_starting_together_migrate_once,
    migrations_go_up_down_to_zero_and_up_again,
    one_step_down_reverts_only_the_newest,
);
