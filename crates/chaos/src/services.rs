//! The services the harness owns, so that it can kill and restart them: a
//! PostgreSQL cluster of its own (initdb in a temporary folder, its own
//! port) and a `redis-server` of its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A free TCP port on the loopback interface (bound, then let go).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until something accepts connections on `port`.
pub async fn wait_for_port(port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("nothing listens on port {port} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The newest installed PostgreSQL server's binaries.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no pg_ctl under /usr/lib/postgresql/*/bin")
}

/// Runs a PostgreSQL tool as the `postgres` account when the harness runs
/// as root (the server refuses to run as root).
fn as_postgres(tool: &Path) -> Command {
    Command::from(as_postgres_blocking(tool))
}

/// [`as_postgres`], for where nothing can be awaited (a drop).
fn as_postgres_blocking(tool: &Path) -> std::process::Command {
    if rustix::process::getuid().is_root() {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        std::process::Command::new(tool)
    }
}

async fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A PostgreSQL cluster in a temporary folder, on its own port.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Postgres {
    /// Creates the cluster (trust authentication, user `postgres`) and
    /// starts it.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let dir = tempfile::Builder::new().prefix("pp-chaos-pg").tempdir()?;
        if rustix::process::getuid().is_root() {
            run(
                {
                    let mut chown = Command::new("chown");
                    chown.arg("postgres:postgres").arg(dir.path());
                    chown
                },
                "chown",
            )
            .await?;
        }
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb.arg("-D").arg(dir.path().join("data")).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(initdb, "initdb").await?;
        let postgres = Postgres {
            port: free_port()?,
            dir,
            bin,
        };
        postgres.pg_ctl(&["start", "-w"]).await?;
        Ok(postgres)
    }

    async fn pg_ctl(&self, action: &[&str]) -> anyhow::Result<()> {
        let mut pg_ctl = as_postgres(&self.bin.join("pg_ctl"));
        pg_ctl
            .args(action)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                self.port,
                self.dir.path().display()
            ));
        run(pg_ctl, &format!("pg_ctl {}", action.join(" "))).await
    }

    /// A fast restart: sessions are cut, in-flight transactions roll back.
    pub async fn restart_fast(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["restart", "-m", "fast", "-w"]).await
    }

    /// A URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name`.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let mut createdb = as_postgres(&self.bin.join("createdb"));
        createdb.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            name,
        ]);
        run(createdb, "createdb").await
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres_blocking(&self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `redis-server` of the harness's own, keeping nothing on disk: killed
/// and started again, it is empty.
#[derive(Debug)]
pub struct Redis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts it on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        let mut redis = Redis {
            port: free_port()?,
            child: None,
        };
        redis.spawn().await?;
        Ok(redis)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server (apt-get install redis-server)")?;
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10)).await
    }

    /// Kills it (SIGKILL) and starts it again, empty.
    pub async fn kill_and_restart(&mut self, pause: Duration) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        tokio::time::sleep(pause).await;
        self.spawn().await
    }
}
