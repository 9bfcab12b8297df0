//! The command line.

use clap::{Parser, Subcommand};

/// Poison Pill: a sealed-bid silent auction with proxy ("poisoned") bids.
#[derive(Debug, Parser)]
#[command(name = "poison-pill", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A command.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the API and its background work (the default). Applies pending
    /// migrations first.
    Serve,
    /// Apply, revert or list database migrations.
    Migrate {
        /// The direction.
        #[command(subcommand)]
        action: MigrateAction,
    },
}

/// What `migrate` does.
#[derive(Debug, Subcommand, Clone, Copy, PartialEq, Eq)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the newest applied migration.
    Down,
    /// List every migration and whether it is applied.
    Status,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_is_the_default() {
        assert_eq!(Cli::parse_from(["poison-pill"]).command, None);
        assert_eq!(
            Cli::parse_from(["poison-pill", "serve"]).command,
            Some(Command::Serve)
        );
    }

    #[test]
    fn migrate_takes_a_direction() {
        let cli = Cli::parse_from(["poison-pill", "migrate", "down"]);
        assert_eq!(
            cli.command,
            Some(Command::Migrate {
                action: MigrateAction::Down
            })
        );
        assert!(Cli::try_parse_from(["poison-pill", "migrate", "sideways"]).is_err());
    }
}
