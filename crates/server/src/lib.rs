//! # The Poison Pill server
//!
//! The `poison-pill` binary's library half: configuration ([`config`]), the
//! command line ([`cli`]), logging ([`telemetry`]) and the composition root
//! ([`app::Application`]) that wires adapters into the HTTP layer. `main`
//! only parses, wires and runs.

pub mod app;
pub mod cli;
pub mod config;
pub mod health;
pub mod telemetry;
pub mod workers;

mod secrets;

use std::io::Write;

use anyhow::Context;

use pp_domain::Role;
use pp_domain::auth::Password;
use pp_domain::auth::service::RegisterError;
use zeroize::Zeroizing;

use crate::cli::{AdminAction, MigrateAction, OutboxAction};
use crate::config::{DatabaseConfig, Settings};

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

/// Reads the new account's password: one line from stdin, or a prompt
/// without echo (asked twice).
fn read_password(from_stdin: bool) -> anyhow::Result<Zeroizing<String>> {
    if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
        return Ok(trimmed);
    }
    let first = Zeroizing::new(rpassword::prompt_password("Password: ")?);
    let second = Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
    anyhow::ensure!(*first == *second, "the passwords differ");
    Ok(first)
}

/// Runs `poison-pill admin …`.
///
/// # Errors
/// When the account cannot be created (the message says why).
pub async fn admin(settings: &Settings, action: AdminAction) -> anyhow::Result<()> {
    let AdminAction::CreateUser {
        email,
        role,
        verified,
        password_stdin,
    } = action;
    let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role {e}"))?;
    let password = read_password(password_stdin)?;
    let services = app::Services::build(settings).await?;
    let created = services
        .auth
        .create_user(&email, Password::presented(&password), role, verified)
        .await;
    let user = match created {
        Ok(user) => user,
        Err(RegisterError::Invalid(errors)) => anyhow::bail!("{errors}"),
        Err(RegisterError::EmailTaken) => {
            anyhow::bail!("an account with this e-mail address exists")
        }
        Err(RegisterError::Store(error)) => return Err(error.into()),
    };
    writeln!(
        std::io::stdout().lock(),
        "created {} {} ({})",
        user.role,
        user.email,
        user.id
    )?;
    Ok(())
}

/// Runs `poison-pill worker`: the background work without the API, until
/// SIGINT or SIGTERM; then gives back the mail it holds. Its probes and
/// metrics (`/health`, `/ready`, `/metrics`) are served on `BIND_ADDR`.
///
/// # Errors
/// When the services cannot be built or the address cannot be bound.
pub async fn worker(settings: &Settings) -> anyhow::Result<()> {
    let services = app::Services::build(settings).await?;
    if settings.redis.is_none() {
        tracing::warn!(
            "a worker without REDIS_URL: the auctions it closes reach only its own live subscribers (none); set REDIS_URL as the servers do"
        );
    }
    // Listening before anything runs: a SIGTERM from now on stops cleanly.
    let stop = stop_signal()?;
    let (operations, port) = services.serve_operations(settings)?;
    let operations_handle = operations.handle();
    let mut operations = std::pin::pin!(operations);
    tokio::spawn(pp_http::ops::metrics_upkeep());
    tokio::spawn(workers::outbox_gauges(services.store.clone()));
    let workers = services.start_workers();
    tracing::info!(
        port,
        "worker running: closing auctions, delivering mail, purging"
    );
    tracing::info!(
        port,
        "probes and metrics listening (/health, /ready, /metrics)"
    );
    let failed = tokio::select! {
        () = stop => None,
        served = &mut operations => Some(served),
    };
    tracing::info!("worker stopping");
    services.stopping.cancel();
    let loops = services.stop_workers(workers, settings.shutdown_timeout);
    if let Some(served) = failed {
        loops.await;
        anyhow::bail!("the probes' server stopped: {served:?}");
    }
    // The probes answer (`/ready`: 503, stopping) and the last counters can
    // be scraped until the loops are done.
    let (_, served) = tokio::join!(
        async {
            loops.await;
            operations_handle.stop(true).await;
        },
        operations
    );
    served.context("the probes' server failed")?;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM (how orchestrators stop
/// a process); listening from the call on.
pub(crate) fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Runs `poison-pill verify`: recomputes the bid ledgers, prints one line
/// per item whose stored chain differs, and fails when any does.
///
/// # Errors
/// When the database cannot be reached, or a chain does not match.
pub async fn verify(settings: &Settings, item: Option<uuid::Uuid>) -> anyhow::Result<()> {
    let database = app::connect(&settings.database).await?;
    // It only reads: a database whose migrations are pending is an error,
    // not something to change while checking it.
    if database
        .migration_status()
        .await?
        .iter()
        .any(|migration| !migration.applied)
    {
        anyhow::bail!("the database has pending migrations: run `poison-pill migrate up` first");
    }
    let sealer = pp_crypto::AesGcmSealer::new(secrecy::ExposeSecret::expose_secret(
        &settings.bid_sealing_key,
    ));
    let store = pp_store_sql::SqlStore::new(database, std::sync::Arc::new(sealer));
    let report = store
        .verify_ledgers(item.map(pp_domain::ItemId::from_uuid))
        .await?;
    if let Some(item) = item
        && report.checked + report.pending == 0
    {
        anyhow::bail!("no item {item}");
    }
    let mut out = std::io::stdout().lock();
    for (item, at) in &report.broken {
        writeln!(out, "item {item}: chain breaks at seq {}", at.seq)?;
    }
    out.flush()?;
    if report.pending > 0 {
        eprintln!(
            "{} items from before the ledger are not chained yet (the server chains them when it starts)",
            report.pending
        );
    }
    match report.broken.len() {
        0 => {
            eprintln!("{} item ledgers verified", report.checked);
            Ok(())
        }
        1 => anyhow::bail!("1 item's ledger does not match"),
        n => anyhow::bail!("{n} items' ledgers do not match"),
    }
}

/// Runs `poison-pill outbox …`, printing what it found or did.
///
/// # Errors
/// When the database cannot be reached.
pub async fn outbox(settings: &Settings, action: OutboxAction) -> anyhow::Result<()> {
    use pp_domain::outbox::OutboxStore;
    use pp_domain::ports::{Clock, SystemClock};

    let database = app::connect(&settings.database).await?;
    database
        .migrate_up()
        .await
        .context("cannot apply the database migrations")?;
    // Counting and rescheduling open no message: no key is needed to read
    // them, but the store is built with one.
    let sealer = pp_crypto::AesGcmSealer::new(secrecy::ExposeSecret::expose_secret(
        &settings.bid_sealing_key,
    ));
    let store = pp_store_sql::SqlStore::new(database, std::sync::Arc::new(sealer));
    let now = SystemClock.now();
    let mut out = std::io::stdout().lock();
    match action {
        OutboxAction::Status => {
            let status = store.status(now).await?;
            writeln!(out, "pending {}", status.pending)?;
            writeln!(out, "sent    {}", status.sent)?;
            writeln!(out, "dead    {}", status.dead)?;
            match status.oldest_due {
                Some(due) => writeln!(
                    out,
                    "oldest due since {} ({} s ago)",
                    due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    (now - due).num_seconds().max(0)
                )?,
                None => writeln!(out, "nothing due")?,
            }
            if let Some(written) = status.oldest_pending {
                writeln!(
                    out,
                    "oldest waiting written {} ({} s ago)",
                    written.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    (now - written).num_seconds().max(0)
                )?;
            }
        }
        OutboxAction::Retry { dead } => {
            let hurried = store.retry(now, dead).await?;
            let noun = if hurried == 1 { "message" } else { "messages" };
            writeln!(out, "{hurried} {noun} due now")?;
        }
    }
    Ok(())
}
