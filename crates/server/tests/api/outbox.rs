//! The mail outbox as an operator runs it: the real `poison-pill` binary
//! (`serve`, `worker`, `outbox status`, `outbox retry --dead`) as processes,
//! delivering over SMTP to a real SMTP server ([`SmtpSink`]) that the tests
//! stop and start. What arrived, how often and under which `Message-ID` is
//! read at the sink; what is stored, through `outbox status`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pp_testkit::smtp::{ReceivedMail, SmtpSink};
use pp_testkit::{Backend, TestDatabase};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{KillOnDrop, announced_url, poison_pill, text, wait_at_most};
use crate::support::{JWT_SECRET, PASSWORD, SEALING_KEY};

/// The servers' `PUBLIC_URL`: links start with it.
const PUBLIC_URL: &str = "https://auction.test";
/// The domain of the default sender, `no-reply@auction.test`, which ends
/// every `Message-ID`.
const MAIL_DOMAIN: &str = "auction.test";
/// How long a message may take to arrive once the SMTP server is up: the
/// backoff after a few failures is a few seconds; the rest is a loaded
/// machine's slack.
const ARRIVAL: Duration = Duration::from_secs(30);
/// How long to watch for a duplicate after the expected messages arrived:
/// the workers look for due mail every 250 ms.
const QUIET: Duration = Duration::from_millis(1500);

/// One data directory (and database) the binary's processes share, and
/// the environment they all run with.
struct Setup {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Setup {
    /// The embedded default (SQLite in `DATA_DIR`, secrets generated there),
    /// mailing through `sink`.
    fn embedded(sink: &SmtpSink) -> Self {
        Self::new(&[], Some(sink))
    }

    /// PostgreSQL `database`, with the secrets it requires.
    fn postgres(database: &TestDatabase, sink: &SmtpSink) -> Self {
        Self::new(
            &[
                ("DATABASE_URL", database.url.as_str()),
                ("JWT_SECRET", JWT_SECRET),
                ("BID_SEALING_KEY", SEALING_KEY),
            ],
            Some(sink),
        )
    }

    fn new(extra: &[(&str, &str)], sink: Option<&SmtpSink>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = [
            ("DATA_DIR", dir.path().join("data").display().to_string()),
            ("BIND_ADDR", "127.0.0.1:0".to_owned()),
            ("PUBLIC_URL", PUBLIC_URL.to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            ("RATE_LIMIT_GLOBAL", "100000/10s".to_owned()),
            ("RATE_LIMIT_AUTH", "100000/60s".to_owned()),
            ("RATE_LIMIT_WRITE", "100000/60s".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(sink) = sink {
            env.push(("MAIL_TRANSPORT".to_owned(), "smtp".to_owned()));
            env.push(("SMTP_URL".to_owned(), sink.url()));
        }
        let mut setup = Setup { dir, env };
        setup.set(extra);
        setup
    }

    /// Sets (or replaces) variables for every process started from now on.
    fn set(&mut self, vars: &[(&str, &str)]) {
        for (key, value) in vars {
            self.env.retain(|(k, _)| k != key);
            self.env.push(((*key).to_owned(), (*value).to_owned()));
        }
    }

    /// The binary with `args`, this setup's environment plus `extra`.
    fn command(&self, extra: &[(&str, &str)], args: &[&str]) -> Command {
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.extend_from_slice(extra);
        poison_pill(self.dir.path(), &env, args)
    }

    /// Starts a long-running process (`serve`, `worker`) logging to
    /// `NAME.log` (stdout: JSON lines) and `NAME.err`.
    fn spawn(&self, name: &str, extra: &[(&str, &str)], args: &[&str]) -> Process {
        let log = self.dir.path().join(format!("{name}.log"));
        let err = self.dir.path().join(format!("{name}.err"));
        let child = self
            .command(extra, args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Process {
            child: KillOnDrop(child),
            log,
            err,
        }
    }

    /// Starts `serve` and waits until it answers `/health`.
    async fn serve(&self, name: &str, extra: &[(&str, &str)]) -> Server {
        let process = self.spawn(name, extra, &["serve"]);
        let url = announced_url(&process.log).await;
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(format!("{url}/health")).send().await
                && response.status() == StatusCode::OK
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never answered /health:\n{}",
                process.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Server {
            process,
            url,
            client,
        }
    }

    /// Starts `worker` and waits until it says it runs.
    async fn worker(&self, name: &str, extra: &[(&str, &str)]) -> Process {
        let process = self.spawn(name, extra, &["worker"]);
        process
            .wait_for_line(|line| {
                line["message"] == "worker running: closing auctions, delivering mail, purging"
            })
            .await;
        process
    }

    /// Runs `poison-pill outbox ARGS…` to its end; its stdout.
    async fn outbox(&self, args: &[&str]) -> String {
        let mut all = vec!["outbox"];
        all.extend_from_slice(args);
        let mut command = tokio::process::Command::from(self.command(&[], &all));
        command.kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap_or_else(|_| panic!("`poison-pill {}` did not end within 60 s", all.join(" ")))
            .unwrap();
        assert!(
            output.status.success(),
            "`poison-pill {}`: {:?}\n{}",
            all.join(" "),
            output.status,
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// `poison-pill outbox status`, read.
    async fn status(&self) -> Status {
        Status::parse(&self.outbox(&["status"]).await)
    }

    /// Polls `outbox status` until `done` holds; fails after `within`.
    async fn status_until(&self, within: Duration, done: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the outbox never got there within {within:?}; it is at {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What `outbox status` printed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    pending: u64,
    sent: u64,
    dead: u64,
    printed: String,
}

impl Status {
    fn parse(printed: &str) -> Self {
        let count = |state: &str| -> u64 {
            printed
                .lines()
                .find_map(|line| {
                    let mut words = line.split_whitespace();
                    (words.next() == Some(state)).then(|| words.next())?
                })
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no `{state} N` line in `outbox status`:\n{printed}"))
        };
        Status {
            pending: count("pending"),
            sent: count("sent"),
            dead: count("dead"),
            printed: printed.to_owned(),
        }
    }

    /// (pending, sent, dead).
    fn counts(&self) -> (u64, u64, u64) {
        (self.pending, self.sent, self.dead)
    }
}

/// A running `poison-pill` process, killed when dropped.
struct Process {
    child: KillOnDrop,
    log: PathBuf,
    err: PathBuf,
}

impl Process {
    /// Its whole JSON log lines so far (a half-written last line is left out).
    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Its log and stderr, for failure messages.
    fn output(&self) -> String {
        format!(
            "--- log\n{}--- stderr\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// Waits (up to 30 s) for a log line that `matches`.
    async fn wait_for_line(&self, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.lines().into_iter().find(&matches) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "the expected line never came:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its failed deliveries so far, as (outbox id, message) in order.
    fn failed_deliveries(&self) -> Vec<(String, String)> {
        self.lines()
            .iter()
            .filter(|line| {
                line["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("mail delivery failed"))
            })
            .map(|line| {
                (
                    line["span"]["outbox_id"]
                        .as_str()
                        .unwrap_or_else(|| panic!("a failure logged without its outbox id: {line}"))
                        .to_owned(),
                    line["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Waits (up to 30 s) until it has logged at least `n` failed deliveries.
    async fn wait_for_failures(&self, n: usize) -> Vec<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let failures = self.failed_deliveries();
            if failures.len() >= n {
                return failures;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} failed deliveries logged:\n{}",
                failures.len(),
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, as a crash: nothing is finished or given back.
    fn kill(&mut self) {
        self.child.0.kill().unwrap();
        self.child.0.wait().unwrap();
    }

    /// SIGTERM, as an orchestrator stops a process; its exit status.
    fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.0.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        wait_at_most(&mut self.child.0, within)
    }
}

/// A running `serve`.
struct Server {
    process: Process,
    url: String,
    client: reqwest::Client,
}

impl Server {
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Registers `email`; the answer must be 201.
    async fn register(&self, email: &str) {
        let response = self
            .post(
                "/api/v1/auth/register",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        let status = response.status();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
}

/// The outbox id a `Message-ID` carries, checking its form: `<uuid@domain>`,
/// the UUID a time-ordered (v7) one, as the outbox's ids are.
fn outbox_id_of(mail: &ReceivedMail, domain: &str) -> String {
    let id = mail
        .message_id
        .as_deref()
        .unwrap_or_else(|| panic!("a mail without a Message-ID:\n{}", mail.raw));
    let header = mail
        .raw
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .unwrap();
    assert_eq!(
        header.split_once(':').unwrap().1.trim(),
        format!("<{id}>"),
        "{header}"
    );
    let (local, at) = id
        .split_once('@')
        .unwrap_or_else(|| panic!("Message-ID {id} has no @"));
    assert_eq!(at, domain, "Message-ID {id}");
    let uuid = uuid::Uuid::parse_str(local)
        .unwrap_or_else(|e| panic!("Message-ID {id}: not a UUID before the @: {e}"));
    assert_eq!(uuid.get_version_num(), 7, "Message-ID {id}");
    assert_eq!(
        uuid.to_string(),
        local,
        "Message-ID {id}: the UUID's usual form"
    );
    local.to_owned()
}

/// The single verification link a mail carries, whole: in the text part as
/// it is, and verbatim in the raw message (not encoded, not split across
/// lines). Returns its token.
fn verification_token(mail: &ReceivedMail) -> String {
    let links = mail.links();
    let prefix = format!("{PUBLIC_URL}/verify-email?token=");
    let link = links
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no verification link in {links:?}:\n{}", mail.raw));
    let token = &link[prefix.len()..];
    assert!(
        token.len() >= 20
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "the link's token is not whole: {link}"
    );
    assert!(
        mail.raw.contains(link.as_str()),
        "the link is not verbatim in the message as sent:\n{}",
        mail.raw
    );
    token.to_owned()
}

/// Waits `QUIET` and returns every message then, to see no duplicate came.
async fn after_a_quiet_while(sink: &SmtpSink) -> Vec<ReceivedMail> {
    tokio::time::sleep(QUIET).await;
    sink.messages()
}

#[tokio::test]
async fn a_registration_survives_a_kill_before_its_mail_goes_out() {
    let mut sink = SmtpSink::start().await;
    sink.stop().await;
    let setup = Setup::embedded(&sink);

    let mut first = setup.serve("first", &[]).await;
    first.register("kim@example.com").await;
    // Right after the 201, before any delivery could succeed (the SMTP
    // server is down): a crash.
    first.process.kill();
    assert!(sink.messages().is_empty());
    // The attempts it made, if it made any (the SMTP server was down).
    let tried = first.process.failed_deliveries();
    let stored = setup.status().await;
    assert_eq!(stored.counts(), (1, 0, 0), "{}", stored.printed);

    sink.restart().await;
    let second = setup.serve("second", &[]).await;
    // A kill between a claim and its settling leaves the message to its
    // lease (60 s, `OUTBOX_LEASE`): allow for that unlikely case.
    sink.wait_for(1, Duration::from_secs(60) + ARRIVAL).await;
    let mails = after_a_quiet_while(&sink).await;
    assert_eq!(mails.len(), 1, "delivered more than once: {mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.recipients, ["kim@example.com"]);
    assert_eq!(mail.subject.as_deref(), Some("Verify your e-mail address"));
    let id = outbox_id_of(mail, MAIL_DOMAIN);
    if let Some((tried_id, _)) = tried.first() {
        assert_eq!(&id, tried_id, "one Message-ID across attempts and restarts");
    }

    let token = verification_token(mail);
    let verified = second
        .post("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let sent = setup.status_until(ARRIVAL, |s| s.sent == 1).await;
    assert_eq!(sent.counts(), (0, 1, 0), "{}", sent.printed);
}

#[tokio::test]
async fn mail_is_delayed_while_smtp_is_down_then_delivered() {
    let mut sink = SmtpSink::start().await;
    sink.stop().await;
    let setup = Setup::embedded(&sink);
    let server = setup.serve("server", &[]).await;
    server.register("lee@example.com").await;

    // Three attempts (about 0 s, 1 s, 3 s: the backoff doubles from 1 s),
    // each failing, each retried.
    let failures = server.process.wait_for_failures(3).await;
    assert!(
        failures
            .iter()
            .all(|(id, m)| *id == failures[0].0 && m.contains("retrying later")),
        "{failures:?}"
    );
    let waiting = setup.status().await;
    assert_eq!(waiting.counts(), (1, 0, 0), "{}", waiting.printed);
    assert!(sink.messages().is_empty());

    sink.restart().await;
    sink.wait_for(1, ARRIVAL).await;
    let sent = setup.status_until(ARRIVAL, |s| s.sent == 1).await;
    assert_eq!(sent.counts(), (0, 1, 0), "{}", sent.printed);
    let mails = after_a_quiet_while(&sink).await;
    assert_eq!(mails.len(), 1, "delivered more than once: {mails:?}");
    assert_eq!(mails[0].recipients, ["lee@example.com"]);
    // The message that failed is the one that arrived: one Message-ID
    // across its attempts.
    assert_eq!(outbox_id_of(&mails[0], MAIL_DOMAIN), failures[0].0);
    verification_token(&mails[0]);
}

#[tokio::test]
async fn after_its_attempts_a_message_is_dead_and_retry_dead_sends_it() {
    let mut sink = SmtpSink::start().await;
    sink.stop().await;
    let mut setup = Setup::embedded(&sink);
    setup.set(&[("MAIL_MAX_ATTEMPTS", "2")]);
    let server = setup.serve("server", &[]).await;
    server.register("max@example.com").await;

    let dead = setup.status_until(ARRIVAL, |s| s.dead == 1).await;
    assert_eq!(dead.counts(), (0, 0, 1), "{}", dead.printed);
    // (Each failure is logged just after it is settled.)
    let failures = server.process.wait_for_failures(2).await;
    assert_eq!(failures.len(), 2, "two attempts, then dead: {failures:?}");
    assert!(failures[0].1.contains("retrying later"), "{failures:?}");
    assert!(failures[1].1.contains("failed for good"), "{failures:?}");
    assert_eq!(failures[0].0, failures[1].0);

    // Up again, the mail server gets nothing on its own: the message is dead.
    sink.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(sink.messages().is_empty(), "{:?}", sink.messages());
    assert_eq!(setup.status().await.counts(), (0, 0, 1));

    let retried = setup.outbox(&["retry", "--dead"]).await;
    assert!(
        retried.trim().starts_with("1 message") && retried.contains("due now"),
        "{retried}"
    );
    sink.wait_for(1, ARRIVAL).await;
    let sent = setup.status_until(ARRIVAL, |s| s.sent == 1).await;
    assert_eq!(sent.counts(), (0, 1, 0), "{}", sent.printed);
    let mails = after_a_quiet_while(&sink).await;
    assert_eq!(mails.len(), 1, "delivered more than once: {mails:?}");
    assert_eq!(mails[0].recipients, ["max@example.com"]);
    // The Message-ID it would have had: the one of its failed attempts.
    assert_eq!(outbox_id_of(&mails[0], MAIL_DOMAIN), failures[0].0);
    verification_token(&mails[0]);
    assert_eq!(server.process.failed_deliveries().len(), 2);
}

#[tokio::test]
async fn two_workers_on_postgresql_never_deliver_one_message_twice() {
    const ACCOUNTS: usize = 20;
    let database = TestDatabase::create(Backend::Postgres).await;
    let sink = SmtpSink::start().await;
    let setup = Setup::postgres(&database, &sink);
    let server = setup.serve("server", &[("RUN_WORKERS", "false")]).await;
    let emails: Vec<String> = (0..ACCOUNTS)
        .map(|n| format!("bidder{n:02}@example.com"))
        .collect();
    let (early, late) = emails.split_at(ACCOUNTS / 2);

    // A backlog, written while no worker runs (`serve` takes requests only).
    futures::future::join_all(early.iter().map(|email| server.register(email))).await;
    let backlog = setup.status().await;
    assert_eq!(
        backlog.counts(),
        (early.len() as u64, 0, 0),
        "{}",
        backlog.printed
    );
    assert!(
        sink.messages().is_empty(),
        "serve with RUN_WORKERS=false sent mail"
    );

    // Two workers, each signing as its own domain so the sink tells them
    // apart (the Message-ID's part before the @ is the outbox row's id).
    let (mut a, mut b) = tokio::join!(
        setup.worker(
            "worker-a",
            &[("MAIL_FROM", "Poison Pill <no-reply@a.auction.test>")]
        ),
        setup.worker(
            "worker-b",
            &[("MAIL_FROM", "Poison Pill <no-reply@b.auction.test>")]
        ),
    );
    // More while they run: registrations and reset requests, at once.
    let forgot = |email: &String| {
        let email = email.clone();
        let server = &server;
        async move {
            let response = server
                .post("/api/v1/auth/password/forgot", &json!({"email": email}))
                .await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
        }
    };
    futures::future::join(
        futures::future::join_all(late.iter().map(|email| server.register(email))),
        futures::future::join_all(early.iter().map(forgot)),
    )
    .await;
    futures::future::join_all(late.iter().map(forgot)).await;

    let expected = 2 * ACCOUNTS;
    sink.wait_for(expected, Duration::from_secs(60)).await;
    let sent = setup
        .status_until(ARRIVAL, |s| s.sent == expected as u64)
        .await;
    assert_eq!(sent.counts(), (0, expected as u64, 0), "{}", sent.printed);
    let mails = after_a_quiet_while(&sink).await;

    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut by_worker: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_recipient: BTreeMap<(String, String), usize> = BTreeMap::new();
    for mail in &mails {
        let domain = mail
            .message_id
            .as_deref()
            .and_then(|id| id.split_once('@'))
            .map(|(_, domain)| domain.to_owned())
            .unwrap_or_default();
        assert!(
            ["a.auction.test", "b.auction.test"].contains(&domain.as_str()),
            "{:?}",
            mail.message_id
        );
        *by_id.entry(outbox_id_of(mail, &domain)).or_default() += 1;
        *by_worker.entry(domain).or_default() += 1;
        assert_eq!(mail.recipients.len(), 1, "{:?}", mail.recipients);
        let subject = mail.subject.clone().unwrap_or_default();
        *by_recipient
            .entry((mail.recipients[0].clone(), subject))
            .or_default() += 1;
    }
    let repeated: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "delivered more than once: {repeated:?}"
    );
    assert_eq!(mails.len(), expected, "{by_recipient:?}");
    for email in &emails {
        for subject in ["Verify your e-mail address", "Reset your password"] {
            assert_eq!(
                by_recipient.get(&(email.clone(), subject.to_owned())),
                Some(&1),
                "{email}: {subject}: {by_recipient:?}"
            );
        }
    }
    // Which worker sent how many: both usually take part, but nothing
    // guarantees it (one may happen to look first every time).
    eprintln!("deliveries by worker: {by_worker:?}");

    for worker in [&mut a, &mut b] {
        let exit = worker.terminate(Duration::from_secs(30));
        assert!(exit.success(), "{exit:?}\n{}", worker.output());
    }
}

#[tokio::test]
async fn a_worker_serves_its_probes_and_metrics_and_stops_cleanly_on_sigterm() {
    let setup = Setup::new(&[], None);
    let mut worker = setup.worker("worker", &[]).await;
    // Its probes and metrics, on BIND_ADDR; no API.
    let running = worker
        .wait_for_line(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("worker running"))
        })
        .await;
    let url = format!("http://127.0.0.1:{}", running["port"]);
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move { client.get(format!("{url}{path}")).send().await.unwrap() }
    };
    assert_eq!(status("/health").await.status(), StatusCode::OK);
    assert_eq!(status("/ready").await.status(), StatusCode::OK);
    assert_eq!(
        status("/api/v1/items").await.status(),
        StatusCode::NOT_FOUND
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = status("/metrics").await.text().await.unwrap();
        if metrics.contains("outbox_messages{state=\"pending\"}")
            && metrics.contains("outbox_oldest_pending_seconds")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no outbox gauge: {metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let exit = worker.terminate(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}\n{}", worker.output());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        worker
            .lines()
            .iter()
            .any(|line| line["message"] == "worker stopping"),
        "{}",
        worker.output()
    );
}

/// Sends `signal` (`STOP`, `CONT`, …) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Messages a worker holds right now (claimed, not settled).
async fn claimed(database: &TestDatabase) -> i64 {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(&database.url).await.unwrap();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM outbox WHERE claim_id IS NOT NULL AND state = 'pending'",
        ))
        .await
        .unwrap()
        .unwrap();
    let n = row.try_get::<i64>("", "n").unwrap();
    conn.close().await.ok();
    n
}

#[tokio::test]
async fn a_worker_stopped_mid_delivery_sends_its_message_once() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let mut sink = SmtpSink::start().await;
    let setup = Setup::postgres(&database, &sink);
    let server = setup.serve("server", &[("RUN_WORKERS", "false")]).await;
    let mut first = setup
        .worker(
            "first",
            &[("MAIL_FROM", "Poison Pill <no-reply@first.auction.test>")],
        )
        .await;

    // The mail server accepts connections (the kernel does) and does not
    // answer yet: the worker's delivery is under way.
    let sink_pid = sink.pid().unwrap();
    signal(sink_pid, "STOP");
    server.register("pat@example.com").await;
    let deadline = Instant::now() + ARRIVAL;
    while claimed(&database).await == 0 {
        assert!(Instant::now() < deadline, "{}", first.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Stopped mid-delivery (and the mail server answering again), the
    // worker ends cleanly and promptly, holding nothing.
    let started = Instant::now();
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(first.child.0.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    signal(sink_pid, "CONT");
    let exit = wait_at_most(&mut first.child.0, Duration::from_secs(40));
    assert!(exit.success(), "{exit:?}\n{}", first.output());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?} to stop\n{}",
        started.elapsed(),
        first.output()
    );
    assert_eq!(claimed(&database).await, 0, "{}", first.output());

    // The stopping worker finished the delivery under way (and a worker
    // started next has nothing to send again).
    let _second = setup
        .worker(
            "second",
            &[("MAIL_FROM", "Poison Pill <no-reply@second.auction.test>")],
        )
        .await;
    sink.wait_for(1, ARRIVAL).await;
    let sent = setup.status_until(ARRIVAL, |s| s.sent == 1).await;
    assert_eq!(sent.counts(), (0, 1, 0), "{}", sent.printed);
    let mails = after_a_quiet_while(&sink).await;
    assert_eq!(mails.len(), 1, "delivered more than once: {mails:?}");
    assert_eq!(mails[0].recipients, ["pat@example.com"]);
    outbox_id_of(&mails[0], "first.auction.test");
    verification_token(&mails[0]);
    sink.stop().await;
}

#[tokio::test]
async fn serve_stopped_mid_delivery_gives_back_the_mail_it_holds_within_its_timeout() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let mut sink = SmtpSink::start().await;
    let setup = Setup::postgres(&database, &sink);
    // One process serving and delivering, as the embedded default runs.
    let mut server = setup
        .serve("server", &[("SHUTDOWN_TIMEOUT_SECS", "3")])
        .await;
    // The mail server takes the connection and never answers: the delivery
    // cannot finish before the stop's timeout.
    let sink_pid = sink.pid().unwrap();
    signal(sink_pid, "STOP");
    server.register("quinn@example.com").await;
    let deadline = Instant::now() + ARRIVAL;
    while claimed(&database).await == 0 {
        assert!(Instant::now() < deadline, "{}", server.process.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let started = Instant::now();
    signal(server.process.child.0.id(), "TERM");
    let exit = wait_at_most(&mut server.process.child.0, Duration::from_secs(20));
    let took = started.elapsed();
    signal(sink_pid, "CONT");
    assert!(exit.success(), "{exit:?}\n{}", server.process.output());
    assert!(
        took < Duration::from_millis(4500),
        "took {took:?} to stop\n{}",
        server.process.output()
    );
    // Cut off, the delivery's message was given back, due again at once.
    assert_eq!(claimed(&database).await, 0, "{}", server.process.output());
    let printed = setup.outbox(&["status"]).await;
    assert!(printed.contains("pending"), "{printed}");
    sink.stop().await;
}
