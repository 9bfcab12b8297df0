//! # The Poison Pill server
//!
//! The `poison-pill` binary's library half: configuration ([`config`]), the
//! command line ([`cli`]), logging ([`telemetry`]) and the composition root
//! ([`app::Application`]) that wires adapters into the HTTP layer. `main`
//! only parses, wires and runs.

pub mod app;
pub mod cli;
pub mod config;
pub mod telemetry;

mod secrets;

use std::io::Write;

use anyhow::Context;

use crate::cli::MigrateAction;
use crate::config::DatabaseConfig;

/// Runs `poison-pill migrate …`, printing what it did.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate(config: &DatabaseConfig, action: MigrateAction) -> anyhow::Result<()> {
    let database = app::connect(config).await?;
    let mut out = std::io::stdout().lock();
    match action {
        MigrateAction::Up => {
            database.migrate_up().await.context("migration failed")?;
            writeln!(out, "all migrations applied")?;
        }
        MigrateAction::Down => {
            database.migrate_down(1).await.context("reverting failed")?;
            writeln!(out, "reverted the newest migration")?;
        }
        MigrateAction::Status => {
            for migration in database.migration_status().await? {
                let state = if migration.applied {
                    "applied"
                } else {
                    "pending"
                };
                writeln!(out, "{state:8} {}", migration.name)?;
            }
        }
    }
    Ok(())
}
