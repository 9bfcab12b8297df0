//! The Poison Pill processes under test: `serve` instances on fixed ports
//! (a restarted instance comes back where clients expect it) and a worker.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// One `poison-pill` process, restartable.
#[derive(Debug)]
pub struct Instance {
    /// `api-1`, `worker`, …
    pub name: String,
    /// Where it serves (the API, or a worker's probes).
    pub port: u16,
    binary: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    logs: PathBuf,
    child: Option<Child>,
    /// How many times it was started.
    pub starts: u32,
}

impl Instance {
    /// An instance of `binary` run with `args` and `env` (plus its
    /// `BIND_ADDR`), logging under `logs`; not started.
    pub fn new(
        name: &str,
        binary: PathBuf,
        args: &[&str],
        env: Vec<(String, String)>,
        logs: PathBuf,
    ) -> anyhow::Result<Self> {
        Ok(Instance {
            name: name.to_owned(),
            port: crate::services::free_port()?,
            binary,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
            logs,
            child: None,
            starts: 0,
        })
    }

    /// The base URL of its HTTP endpoints.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it and waits until `/health` answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let log =
            std::fs::File::create(self.logs.join(format!("{}.{}.log", self.name, self.starts)))?;
        let child = Command::new(&self.binary)
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        self.child = Some(child);
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(format!("{}/health", self.url())).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                bail!("{} exited at start: {status}", self.name);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{} did not answer /health within 60 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn pid(&self) -> Option<rustix::process::Pid> {
        let id = self.child.as_ref()?.id()?;
        rustix::process::Pid::from_raw(i32::try_from(id).ok()?)
    }

    fn signal(&self, signal: rustix::process::Signal) -> anyhow::Result<()> {
        if let Some(pid) = self.pid() {
            rustix::process::kill_process(pid, signal)?;
        }
        Ok(())
    }

    /// `kill -9`: no chance to finish anything.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM, then waits (up to `within`) for it to exit; its status.
    pub async fn terminate(&mut self, within: Duration) -> anyhow::Result<Option<i32>> {
        self.signal(rustix::process::Signal::TERM)?;
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        match tokio::time::timeout(within, child.wait()).await {
            Ok(status) => Ok(status?.code()),
            Err(_) => {
                child.kill().await?;
                bail!("{} did not exit within {within:?} of SIGTERM", self.name)
            }
        }
    }

    /// SIGSTOP: the process freezes, its connections stay open.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal(rustix::process::Signal::STOP)
    }

    /// SIGCONT.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal(rustix::process::Signal::CONT)
    }
}
