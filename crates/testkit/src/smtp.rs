//! # A real SMTP server for the tests
//!
//! [`SmtpSink`] runs `scripts/smtp_sink.py` (aiosmtpd, a real SMTP server)
//! as a child process on 127.0.0.1 and keeps every message it accepts, so a
//! test can point the app's SMTP transport at [`SmtpSink::url`], stop the
//! server to make delivery fail, [`restart`](SmtpSink::restart) it on the
//! same port, and count and read what arrived ([`SmtpSink::messages`],
//! [`SmtpSink::wait_for`]). It answers 250 only once the message is on disk,
//! so every message a client saw accepted is in `messages()`, once per SMTP
//! transaction: counting them proves a message was not delivered twice.
//!
//! The python that runs the script is `SMTP_SINK_PYTHON`, else the
//! virtualenv `scripts/smtp-sink-venv.sh` makes
//! (`~/.cache/poison-pill/smtp-venv/bin/python`; `make test-rust` runs that
//! script first), else `python3`.
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! use pp_testkit::smtp::SmtpSink;
//!
//! let mut sink = SmtpSink::start().await;
//! let url = sink.url(); // smtp://127.0.0.1:PORT, for SMTP_URL
//! sink.stop().await; // down: connections are refused
//! // … the app tries, fails, retries …
//! sink.restart().await; // up again on the same port
//! let mails = sink.wait_for(1, Duration::from_secs(30)).await;
//! let link = &mails[0].links()[0];
//! # let _ = (url, link);
//! # }
//! ```

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// How long the sink may take to print `listening on …`.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of the sink's stderr is kept for failure messages (the end of it).
const STDERR_KEPT: usize = 64 * 1024;

/// The python that runs the sink: `SMTP_SINK_PYTHON`, else the virtualenv of
/// `scripts/smtp-sink-venv.sh` when it exists, else `python3`.
#[must_use]
pub fn python() -> PathBuf {
    crate::venv_python("SMTP_SINK_PYTHON", ".cache/poison-pill/smtp-venv")
}

/// `scripts/smtp_sink.py` in this repository.
#[must_use]
pub fn script() -> PathBuf {
    // crates/testkit → the repository's root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("pp-testkit lives in crates/testkit");
    root.join("scripts/smtp_sink.py")
}

/// A running (or stopped) SMTP sink; the process is killed when it is dropped
/// and the messages' directory removed.
#[derive(Debug)]
pub struct SmtpSink {
    // Declared before `dir`: the process goes before its directory.
    process: Option<SinkProcess>,
    port: u16,
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct SinkProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stderr_reader: JoinHandle<()>,
}

impl SinkProcess {
    /// Kills the process (SIGKILL) and waits for it and its stderr; returns that stderr.
    async fn kill(mut self) -> String {
        // An error here means it has already exited: fine either way.
        self.child.kill().await.ok();
        tokio::time::timeout(Duration::from_secs(2), &mut self.stderr_reader)
            .await
            .ok();
        self.stderr_reader.abort();
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1, storing into a fresh
    /// temporary directory; returns once it accepts connections. The port is
    /// below the kernel's ephemeral range, so while the sink is stopped no
    /// client connection can take it and `restart` finds it free.
    ///
    /// # Panics
    /// When the sink does not say it listens within 15 s (the panic carries
    /// its stderr: typically aiosmtpd missing, see `scripts/smtp-sink-venv.sh`).
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pp-smtp-sink.")
            .tempdir()
            .expect("a temporary directory for the SMTP sink");
        let (process, port) = spawn(0, dir.path()).await;
        SmtpSink {
            process: Some(process),
            port,
            dir,
        }
    }

    /// The port it listens on (also while stopped: `restart` takes it again).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT` (plain SMTP, no TLS), as lettre's `from_url` and `SMTP_URL` take it.
    #[must_use]
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Where the messages are stored (`NAME.eml` and `NAME.envelope.json`, see the script).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the sink process runs (it is not stopped).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// The sink process's id while it runs (to send it a signal, e.g.
    /// SIGSTOP for a server that accepts connections but never answers).
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(|p| p.child.id())
    }

    /// What the sink has written to stderr so far (its last 64 KiB): a line per message.
    #[must_use]
    pub fn stderr(&self) -> String {
        self.process
            .as_ref()
            .and_then(|p| p.stderr.lock().ok().map(|s| s.clone()))
            .unwrap_or_default()
    }

    /// Kills the sink (SIGKILL, as a crash) and waits until it is gone: the
    /// port then refuses connections and open sessions are cut. Received
    /// messages stay. Does nothing when it is already stopped.
    pub async fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill().await;
        }
    }

    /// Starts the sink again on the same port and directory (stopping it
    /// first if it runs); messages received before are kept.
    ///
    /// # Panics
    /// As [`start`](Self::start), e.g. when another process took the port
    /// meanwhile and kept it for the sink's 10 s of retrying.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (process, port) = spawn(self.port, self.dir.path()).await;
        assert_eq!(port, self.port, "the SMTP sink restarted on another port");
        self.process = Some(process);
    }

    /// How many messages have arrived so far (cheaper than reading them).
    ///
    /// # Panics
    /// When the directory cannot be read.
    #[must_use]
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .expect("read the SMTP sink's directory")
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "eml"))
            })
            .count()
    }

    /// Every message received so far, in arrival order.
    ///
    /// # Panics
    /// When the directory or a message cannot be read.
    #[must_use]
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read the SMTP sink's directory")
            .map(|entry| entry.expect("an entry of the SMTP sink's directory").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        names.sort();
        names.iter().map(|path| ReceivedMail::read(path)).collect()
    }

    /// Waits until at least `count` messages have arrived and returns all of
    /// them (polling every 50 ms).
    ///
    /// # Panics
    /// When fewer than `count` arrived within `timeout`, saying how many did
    /// and what the sink logged.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if tokio::time::Instant::now() >= deadline {
                let got: Vec<String> = messages
                    .iter()
                    .map(|m| format!("{:?} to {:?}", m.subject, m.recipients))
                    .collect();
                panic!(
                    "SMTP sink {}: expected at least {count} message(s) within {timeout:?}, \
                     got {}: {got:?}; the sink is {}; its stderr:\n{}",
                    self.url(),
                    messages.len(),
                    if self.is_running() {
                        "running"
                    } else {
                        "stopped"
                    },
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Starts the script on `port` (0: any) and waits for its `listening on` line.
async fn spawn(port: u16, dir: &Path) -> (SinkProcess, u16) {
    let python = python();
    let script = script();
    let mut child = Command::new(&python)
        .arg(&script)
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the SMTP sink ({} {}): {e}; run scripts/smtp-sink-venv.sh \
                 (make test-rust does) or set SMTP_SINK_PYTHON",
                python.display(),
                script.display()
            )
        });
    let stdout = child.stdout.take().expect("the sink's stdout is piped");
    let stderr = Arc::new(Mutex::new(String::new()));
    let stderr_reader = tokio::spawn(collect(
        child.stderr.take().expect("the sink's stderr is piped"),
        Arc::clone(&stderr),
    ));
    let process = SinkProcess {
        child,
        stderr,
        stderr_reader,
    };

    let mut lines = BufReader::new(stdout).lines();
    let listening = tokio::time::timeout(START_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(port) = line
                .strip_prefix("listening on 127.0.0.1:")
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                return Some(port);
            }
        }
        None // stdout closed: the process ended
    })
    .await;
    match listening {
        Ok(Some(port)) => {
            // Nothing more comes on stdout; keep reading so the pipe never fills.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            (process, port)
        }
        Ok(None) | Err(_) => {
            let how = if listening.is_err() {
                format!("did not say it listens within {START_TIMEOUT:?}")
            } else {
                "exited before listening".to_owned()
            };
            let stderr = process.kill().await;
            panic!(
                "the SMTP sink ({} {} --port {port}) {how}; run scripts/smtp-sink-venv.sh \
                 (make test-rust does) or set SMTP_SINK_PYTHON; its stderr:\n{stderr}",
                python.display(),
                script.display()
            )
        }
    }
}

/// Appends what `from` yields to `into`, keeping the last [`STDERR_KEPT`] bytes.
async fn collect(mut from: impl tokio::io::AsyncRead + Unpin, into: Arc<Mutex<String>>) {
    let mut buf = [0_u8; 4096];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let Ok(mut text) = into.lock() else { break };
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.len() > STDERR_KEPT {
            let mut cut = text.len() - STDERR_KEPT;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text.drain(..cut);
        }
    }
}

/// One message the sink accepted (one SMTP transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// Its `.eml` file.
    pub file: PathBuf,
    /// The DATA exactly as received (CRLF line ends; bytes that are not
    /// UTF-8 replaced by U+FFFD).
    pub raw: String,
    /// The envelope sender (`MAIL FROM`), empty for a bounce (`<>`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub recipients: Vec<String>,
    /// The `Message-ID` header without its angle brackets.
    pub message_id: Option<String>,
    /// The `Subject` header, decoded.
    pub subject: Option<String>,
    /// The first text body, decoded (transfer encoding and charset): the
    /// `text/plain` part of a multipart/alternative mail.
    pub text: Option<String>,
    /// The first HTML body, decoded.
    pub html: Option<String>,
}

impl ReceivedMail {
    fn read(eml: &Path) -> Self {
        let bytes = std::fs::read(eml)
            .unwrap_or_else(|e| panic!("read the received mail {}: {e}", eml.display()));
        let sidecar = eml.with_extension("envelope.json");
        let envelope: serde_json::Value = std::fs::read(&sidecar)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .unwrap_or_else(|| panic!("read the envelope {}", sidecar.display()));
        let parsed = mail_parser::MessageParser::default()
            .parse(&bytes)
            .unwrap_or_else(|| panic!("parse the received mail {}", eml.display()));
        ReceivedMail {
            file: eml.to_owned(),
            raw: String::from_utf8_lossy(&bytes).into_owned(),
            mail_from: envelope["mail_from"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            recipients: envelope["rcpt_tos"]
                .as_array()
                .map(|rcpts| {
                    rcpts
                        .iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            message_id: parsed.message_id().map(str::to_owned),
            subject: parsed.subject().map(str::to_owned),
            text: parsed.body_text(0).map(Cow::into_owned),
            html: parsed.body_html(0).map(Cow::into_owned),
        }
    }

    /// The first header called `name` (any case), decoded, e.g.
    /// `header("From")` → `Poison Pill <no-reply@example.com>`; a header
    /// mail-parser does not decode comes back as its raw value, trimmed.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        let parsed = mail_parser::MessageParser::default().parse(self.raw.as_bytes())?;
        let header = parsed
            .headers()
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))?;
        if let Some(text) = header.value().as_text() {
            return Some(text.to_owned());
        }
        if let Some(address) = header.value().as_address() {
            let addresses: Vec<String> = address
                .iter()
                .map(|a| match (a.name(), a.address()) {
                    (Some(name), Some(addr)) => format!("{name} <{addr}>"),
                    (name, addr) => name.or(addr).unwrap_or_default().to_owned(),
                })
                .collect();
            return Some(addresses.join(", "));
        }
        let raw = self
            .raw
            .get(header.offset_start as usize..header.offset_end as usize)?;
        Some(raw.trim().to_owned())
    }

    /// Every `http://` or `https://` link in the text body, in order (a link
    /// ends at white space, `<`, `>`, `"` or `)`; punctuation that ends a
    /// sentence after it is left out).
    #[must_use]
    pub fn links(&self) -> Vec<String> {
        let text = self.text.as_deref().unwrap_or_default();
        let mut links = Vec::new();
        let mut rest = text;
        while let Some(at) = ["http://", "https://"]
            .iter()
            .filter_map(|scheme| rest.find(scheme))
            .min()
        {
            let link = &rest[at..];
            let end = link
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | ')'))
                .unwrap_or(link.len());
            // A sentence's full stop or comma after a link is not part of it.
            links.push(
                link[..end]
                    .trim_end_matches(['.', ',', ';', ':', '!', '?'])
                    .to_owned(),
            );
            rest = &link[end..];
        }
        links
    }
}
