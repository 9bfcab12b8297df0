//! `poison-pill`: parses the command line and the configuration, then runs.

use std::process::ExitCode;

use clap::Parser;
use poison_pill::app::Application;
use poison_pill::cli::{Cli, Command};
use poison_pill::config::{DatabaseConfig, Environment, LogFormat, Settings};
use poison_pill::telemetry;

/// Exit status for a configuration problem (as `sysexits.h`'s `EX_CONFIG`).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = match Environment::load() {
        Ok(env) => env,
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
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            match LogFormat::from_env(&env) {
                Ok(format) => telemetry::init(format),
                Err(e) => return config_error(&e),
            }
            let settings = match Settings::from_env(&env) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            runtime.block_on(async {
                Application::build(settings)
                    .await?
                    .run_until_stopped()
                    .await?;
                anyhow::Ok(())
            })
        }
        Command::Worker => {
            match LogFormat::from_env(&env) {
                Ok(format) => telemetry::init(format),
                Err(e) => return config_error(&e),
            }
            let settings = match Settings::from_env(&env) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            runtime.block_on(poison_pill::worker(&settings))
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
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("poison-pill: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(error: &poison_pill::config::ConfigError) -> ExitCode {
    eprintln!("poison-pill: configuration error: {error}");
    ExitCode::from(EXIT_CONFIG)
}
