//! `poison-pill`: parses the command line and the configuration, then runs.

use std::process::ExitCode;

use clap::Parser;
use poison_pill::app::Application;
use poison_pill::cli::{Cli, Command};
use poison_pill::config::{DatabaseConfig, Environment, LogFormat, Settings, TraceExport};
use poison_pill::telemetry;

/// Exit status for a configuration problem (as `sysexits.h`'s `EX_CONFIG`).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = match Environment::load() {
        Ok(env) => env,
        Err(e) => return config_error(&e),
    };
    // First: every thread started from here on reports through it.
    let _reports = match poison_pill::config::error_reports(&env) {
        Ok(dsn) => dsn.map(telemetry::report_errors),
        Err(e) => return config_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("poison-pill: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let only_workers = command == Command::Worker;
    let outcome = match command {
        Command::Serve | Command::Worker => {
            let telemetry = match observe(&env, &runtime) {
                Ok(telemetry) => telemetry,
                Err(code) => return code,
            };
            let settings = match Settings::from_env(&env) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            let outcome = runtime.block_on(async {
                if only_workers {
                    return poison_pill::worker(&settings).await;
                }
                Application::build(settings)
                    .await?
                    .run_until_stopped()
                    .await?;
                anyhow::Ok(())
            });
            telemetry.shutdown();
            outcome
        }
        Command::Health => {
            let addr = match poison_pill::config::bind_addr(&env) {
                Ok(addr) => addr,
                Err(e) => return config_error(&e),
            };
            poison_pill::health::check(addr, std::time::Duration::from_secs(3))
        }
        Command::Outbox { action } => {
            let settings = match Settings::from_env(&env) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            telemetry::init_for_command();
            runtime.block_on(poison_pill::outbox(&settings, action))
        }
        Command::Verify { item } => {
            let settings = match Settings::from_env(&env) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            telemetry::init_for_command();
            runtime.block_on(poison_pill::verify(&settings, item))
        }
        Command::Admin { action } => {
            let settings = match Settings::from_env(&env) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            telemetry::init_for_command();
            runtime.block_on(poison_pill::admin(&settings, action))
        }
        Command::Migrate { action } => {
            let config = match DatabaseConfig::from_env(&env) {
                Ok(config) => config,
                Err(e) => return config_error(&e),
            };
            telemetry::init_for_command();
            runtime.block_on(poison_pill::migrate(&config, action))
        }
    };
    // A task still running (a password hash, a stuck read) must not hold
    // the exit past the shutdown's own timeout.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("poison-pill: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs, and traces where `OTEL_EXPORTER_OTLP_ENDPOINT` says.
fn observe(
    env: &Environment,
    runtime: &tokio::runtime::Runtime,
) -> Result<telemetry::Telemetry, ExitCode> {
    let format = LogFormat::from_env(env).map_err(|e| config_error(&e))?;
    let export = TraceExport::from_env(env).map_err(|e| config_error(&e))?;
    telemetry::init(format, export.as_ref(), runtime.handle()).map_err(|e| {
        eprintln!("poison-pill: cannot set up trace export: {e:#}");
        ExitCode::FAILURE
    })
}

fn config_error(error: &poison_pill::config::ConfigError) -> ExitCode {
    eprintln!("poison-pill: configuration error: {error}");
    ExitCode::from(EXIT_CONFIG)
}
