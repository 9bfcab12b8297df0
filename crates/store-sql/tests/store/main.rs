//! The SQL adapter against real databases: every behavioural test runs on
//! PostgreSQL (a fresh database per test) and on SQLite (a fresh file).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod support;

mod accounts;
mod bidding;
mod concurrency;
mod extras;
mod identities;
mod lifecycle;
mod listing;
mod migrations;
mod notifications;
mod outbox;
mod photos;
mod retention;
mod sealing;
mod second_factors;
mod users;

/// Generates `postgres::name` and `sqlite::name` tokio tests calling `name(backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(pp_testkit::Backend::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(pp_testkit::Backend::Sqlite).await;
                }
            )*
        }
    };
}
