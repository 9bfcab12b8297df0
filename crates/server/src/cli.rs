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
    /// Run the API and its background work (the default; `RUN_WORKERS=false`
    /// leaves the work to `worker` processes). Applies pending migrations first.
    Serve,
    /// Run only the background work: closing auctions, delivering the
    /// outbox's mail, purging. No HTTP. Any number may run at once.
    Worker,
    /// Ask the server on this host (`BIND_ADDR`) whether it runs: exits 0
    /// when `/health` answers 200 within 3 s, else 1. For a container's
    /// HEALTHCHECK, where there is no curl.
    Health,
    /// Look at the mail outbox, or hurry it.
    Outbox {
        /// What to do.
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Apply, revert or list database migrations.
    Migrate {
        /// The direction.
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Recompute every item's bid ledger (or one item's) from the database
    /// and compare it with the stored chain: exits 0, or 1 printing
    /// `item {id}: chain breaks at seq {n}` for each item that differs.
    Verify {
        /// Only this item.
        #[arg(long)]
        item: Option<uuid::Uuid>,
    },
    /// Administration without the web flow.
    Admin {
        /// What to do.
        #[command(subcommand)]
        action: AdminAction,
    },
}

/// What `admin` does.
#[derive(Debug, Subcommand, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// Create an account (how the first admin is made). The password is
    /// prompted for without echo, or read as one line from stdin.
    CreateUser {
        /// The account's e-mail address.
        #[arg(long)]
        email: String,
        /// `user` or `admin`.
        #[arg(long, value_parser = ["user", "admin"])]
        role: String,
        /// Mark the address as verified.
        #[arg(long)]
        verified: bool,
        /// Read the password as one line from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// What `outbox` does.
#[derive(Debug, Subcommand, Clone, Copy, PartialEq, Eq)]
pub enum OutboxAction {
    /// Messages by state, and how long the oldest due one has waited.
    Status,
    /// Make every waiting message due now (skipping its backoff).
    Retry {
        /// Also give dead messages a fresh set of attempts.
        #[arg(long)]
        dead: bool,
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
    fn the_worker_and_the_outbox_have_their_commands() {
        assert_eq!(
            Cli::parse_from(["poison-pill", "worker"]).command,
            Some(Command::Worker)
        );
        assert_eq!(
            Cli::parse_from(["poison-pill", "outbox", "status"]).command,
            Some(Command::Outbox {
                action: OutboxAction::Status
            })
        );
        assert_eq!(
            Cli::parse_from(["poison-pill", "outbox", "retry", "--dead"]).command,
            Some(Command::Outbox {
                action: OutboxAction::Retry { dead: true }
            })
        );
        assert!(Cli::try_parse_from(["poison-pill", "outbox", "purge"]).is_err());
    }

    #[test]
    fn health_is_a_command() {
        assert_eq!(
            Cli::parse_from(["poison-pill", "health"]).command,
            Some(Command::Health)
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

    #[test]
    fn create_user_takes_an_email_a_role_and_flags() {
        let cli = Cli::parse_from([
            "poison-pill",
            "admin",
            "create-user",
            "--email",
            "root@example.com",
            "--role",
            "admin",
            "--verified",
            "--password-stdin",
        ]);
        assert_eq!(
            cli.command,
            Some(Command::Admin {
                action: AdminAction::CreateUser {
                    email: "root@example.com".into(),
                    role: "admin".into(),
                    verified: true,
                    password_stdin: true,
                }
            })
        );
        let bad_role = [
            "poison-pill",
            "admin",
            "create-user",
            "--email",
            "a@b.example",
            "--role",
            "root",
        ];
        assert!(Cli::try_parse_from(bad_role).is_err());
    }
}
