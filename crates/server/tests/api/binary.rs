//! The `poison-pill` binary as an operator runs it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pp_testkit::{Backend, TestDatabase};

pub(crate) fn poison_pill(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_poison-pill"));
    command.args(args);
    with_env(command, dir, env)
}

/// The binary on a terminal of its own (util-linux `script` runs it on a
/// pseudo-terminal and relays stdin to it and its output to stdout).
fn on_a_terminal(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut line = format!("'{}'", env!("CARGO_BIN_EXE_poison-pill"));
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut command = Command::new("script");
    command.args(["--quiet", "--return", "--command", &line, "/dev/null"]);
    with_env(command, dir, env)
}

fn with_env(mut command: Command, dir: &Path, env: &[(&str, &str)]) -> Command {
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied());
    // cargo-llvm-cov collects coverage from child processes through these.
    for (key, value) in std::env::vars() {
        if key.starts_with("LLVM_PROFILE") || key.starts_with("CARGO_LLVM_COV") {
            command.env(key, value);
        }
    }
    command
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    poison_pill(dir, env, args).output().unwrap()
}

/// What `serve` (or a command) needs on `database`, logging JSON lines to
/// stdout and mail to `./mail`, listening on a free port; then `extra`.
pub(crate) fn served_env<'a>(
    database: &'a TestDatabase,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("DATABASE_URL", database.url.as_str()),
        ("JWT_SECRET", crate::support::JWT_SECRET),
        ("BID_SEALING_KEY", crate::support::SEALING_KEY),
        ("MAIL_DIR", "mail"),
        ("BIND_ADDR", "127.0.0.1:0"),
        ("LOG_FORMAT", "json"),
    ];
    env.extend_from_slice(extra);
    env
}

/// Makes an admin account with `admin create-user`, as an operator would.
pub(crate) fn create_admin(dir: &Path, env: &[(&str, &str)], email: &str) {
    let created = create_admin_with(dir, env, email, crate::support::PASSWORD);
    assert!(created.status.success(), "{}", text(&created.stderr));
}

/// What `admin create-user` of an admin `email` with `password` on stdin
/// printed and exited with.
fn create_admin_with(dir: &Path, env: &[(&str, &str)], email: &str, password: &str) -> Output {
    use std::io::Write;
    let mut create = poison_pill(
        dir,
        env,
        &[
            "admin",
            "create-user",
            "--email",
            email,
            "--role",
            "admin",
            "--verified",
            "--password-stdin",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    writeln!(create.stdin.take().unwrap(), "{password}").unwrap();
    create.wait_with_output().unwrap()
}

/// A `poison-pill serve` a test started, logging JSON lines to a file.
pub(crate) struct Served {
    pub(crate) child: std::process::Child,
    pub(crate) url: String,
    log: std::path::PathBuf,
}

impl Served {
    /// Starts `serve` in `dir` with exactly `env` and waits until it says
    /// where it listens.
    pub(crate) async fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let log = dir.join("server.log");
        let file = std::fs::File::create(&log).unwrap();
        // Start-up errors go to stderr: into the log too.
        let child = poison_pill(dir, env, &["serve"])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let url = announced_url(&log).await;
        Served { child, url, log }
    }

    /// Kills it (when a test fails before stopping it).
    fn drop_child(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Reads its log so far, whenever called.
    pub(crate) fn log_reader(&self) -> impl Fn() -> String + use<> {
        let log = self.log.clone();
        move || std::fs::read_to_string(&log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.drop_child();
    }
}

/// Logs `email` in (with the tests' password) on `url`; the access token.
pub(crate) async fn login(client: &reqwest::Client, url: &str, email: &str) -> String {
    let login = client
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": crate::support::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "logging {email} in");
    let body: serde_json::Value = login.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A single-use WebSocket ticket for the holder of `token`.
pub(crate) async fn ws_ticket(client: &reqwest::Client, url: &str, token: &str) -> String {
    let ticket: serde_json::Value = client
        .post(format!("{url}/api/v1/ws-ticket"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ticket["ticket"].as_str().unwrap().to_owned()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn migrate_status_up_and_down_report_what_they_did() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", database.url.as_str())];

    let status = run(dir.path(), &env, &["migrate", "status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let lines = text(&status.stdout);
    assert!(
        lines.lines().count() >= 3 && lines.lines().all(|l| l.starts_with("pending")),
        "{lines}"
    );

    let up = run(dir.path(), &env, &["migrate", "up"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let status = text(&run(dir.path(), &env, &["migrate", "status"]).stdout);
    assert!(status.lines().all(|l| l.starts_with("applied")), "{status}");

    let down = run(dir.path(), &env, &["migrate", "down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    let status = text(&run(dir.path(), &env, &["migrate", "status"]).stdout);
    let pending: Vec<_> = status
        .lines()
        .filter(|l| l.starts_with("pending"))
        .collect();
    assert_eq!(pending.len(), 1, "{status}");
}

#[test]
fn a_malformed_setting_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (env, variable) in [
        (vec![("BIND_ADDR", "nowhere")], "BIND_ADDR"),
        (
            vec![("DATABASE_URL", "postgres://127.0.0.1/x")],
            "JWT_SECRET",
        ),
        (vec![("LOG_FORMAT", "xml")], "LOG_FORMAT"),
    ] {
        let output = run(dir.path(), &env, &["serve"]);
        assert_eq!(output.status.code(), Some(78));
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable), "{stderr}");
    }
    let output = run(
        dir.path(),
        &[("DATABASE_URL", "mysql://x")],
        &["migrate", "status"],
    );
    assert_eq!(output.status.code(), Some(78));
    assert!(text(&output.stderr).contains("DATABASE_URL"));
}

#[test]
fn an_unreachable_database_is_reported_not_hung_on() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")];
    let output = run(dir.path(), &env, &["migrate", "up"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("cannot open the database"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn serve_on_a_fresh_directory_runs_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let env = [("BIND_ADDR", "127.0.0.1:0"), ("LOG_FORMAT", "json")];
    let mut child = poison_pill(dir.path(), &env, &[])
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let url = announced_url(&log_path).await;
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("{url}/health")).send().await {
            healthy = response.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = client
        .get(format!("{url}/ready"))
        .send()
        .await
        .map(|r| r.status());
    // `health` (a container's HEALTHCHECK) finds it at its address.
    let bind = url.trim_start_matches("http://").to_owned();
    let health = run(dir.path(), &[("BIND_ADDR", &bind)], &["health"]);
    // SIGTERM: the server drains and exits cleanly.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let exit = child.wait().unwrap();

    assert!(healthy, "the server never answered /health");
    assert_eq!(ready.unwrap(), 200);
    assert!(health.status.success(), "{health:?}");
    assert!(exit.success(), "{exit:?}");
    // Once it is gone, `health` says so.
    let gone = run(dir.path(), &[("BIND_ADDR", &bind)], &["health"]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("cannot reach"));
    let data = dir.path().join("data");
    assert!(data.join("poison-pill.db").exists());
    for secret in ["jwt-secret", "bid-sealing-key"] {
        let mode = std::fs::metadata(data.join(secret))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{secret}");
    }
}

/// What `admin create-user` needs: the database, the secrets, a mail folder.
fn admin_env(database: &TestDatabase) -> [(&'static str, &str); 4] {
    [
        ("DATABASE_URL", database.url.as_str()),
        ("JWT_SECRET", crate::support::JWT_SECRET),
        ("BID_SEALING_KEY", crate::support::SEALING_KEY),
        ("MAIL_DIR", "mail"),
    ]
}

#[tokio::test]
async fn admin_create_user_makes_an_account_that_can_log_in() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let env = admin_env(&database);
    let create = |email: &str, password: &str| create_admin_with(dir.path(), &env, email, password);
    let created = create("Root@Example.com", crate::support::PASSWORD);
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(
        text(&created.stdout).starts_with("created admin root@example.com"),
        "{}",
        text(&created.stdout)
    );

    let weak = create("other@example.com", "short");
    assert_eq!(weak.status.code(), Some(1));
    assert!(
        text(&weak.stderr).contains("password"),
        "{}",
        text(&weak.stderr)
    );
    let taken = create("root@example.com", crate::support::PASSWORD);
    assert!(text(&taken.stderr).contains("exists"));

    // The account logs in through the API as an admin.
    let data_dir = tempfile::tempdir().unwrap();
    let settings =
        poison_pill::config::Settings::from_env(&poison_pill::config::Environment::from_map([
            ("DATABASE_URL", database.url.as_str()),
            ("DATA_DIR", data_dir.path().to_str().unwrap()),
            ("BIND_ADDR", "127.0.0.1:0"),
            ("JWT_SECRET", crate::support::JWT_SECRET),
            ("BID_SEALING_KEY", crate::support::SEALING_KEY),
        ]))
        .unwrap();
    let app = poison_pill::app::Application::build(settings)
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("{url}/api/v1/auth/login"))
        .json(
            &serde_json::json!({"email": "root@example.com", "password": crate::support::PASSWORD}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = client
        .get(format!("{url}/api/v1/users"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
}

/// The address the server in `log` announced it listens on, once it has.
/// The server binds port 0 itself: a port picked by the test and bound
/// later could be taken by then.
pub(crate) async fn announced_url(log: &Path) -> String {
    // Migrations and the dummy hash at start take a while on two cores.
    for _ in 0..600 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let port = text
            .lines()
            .filter(|line| line.contains("listening"))
            .find_map(|line| {
                let (_, after) = line.split_once("\"port\":")?;
                let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u16>().ok()
            });
        if let Some(port) = port {
            return format!("http://127.0.0.1:{port}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the server never said where it listens:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let env = [
        ("BIND_ADDR", "127.0.0.1:0"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
        // Nothing listens there: delivery fails and logs, after the request.
        ("MAIL_TRANSPORT", "smtp"),
        ("SMTP_URL", "smtp://127.0.0.1:1"),
    ];
    let mut server = KillOnDrop(
        poison_pill(dir.path(), &env, &[])
            .stdout(std::fs::File::create(&log_path).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = announced_url(&log_path).await;
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{url}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server never answered");
    let register = client
        .post(format!("{url}/api/v1/auth/register"))
        .header("x-request-id", "log-test-register")
        .json(
            &serde_json::json!({"email": "lou@example.com", "password": crate::support::PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let replaced = client
        .get(format!("{url}/api/v1/users/me"))
        .header("x-request-id", "not a valid id")
        .send()
        .await
        .unwrap();
    let generated = replaced.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // The outbox's first two attempts, about a second apart. While the server runs
    // its last line may be half written: only whole lines count then.
    let read_lines = |strict: bool| -> Vec<serde_json::Value> {
        std::fs::read_to_string(&log_path)
            .unwrap()
            .lines()
            .filter_map(|line| match serde_json::from_str(line) {
                Ok(value) => Some(value),
                Err(err) if strict => panic!("{err}: {line}"),
                Err(_) => None,
            })
            .collect()
    };
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let retried = read_lines(false)
            .iter()
            .filter(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("mail delivery failed"))
            })
            .count();
        if retried >= 2 {
            break;
        }
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(server.0.id().to_string())
        .status()
        .unwrap();
    wait_at_most(&mut server.0, Duration::from_secs(30));
    let lines = read_lines(true);

    let of = |id: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let registered = of("log-test-register");
    assert!(
        registered.iter().any(|m| m == "request served"),
        "{registered:?}"
    );
    assert!(
        registered
            .iter()
            .any(|m| m.contains("mail delivery failed")),
        "the mail sent for the request logs with its id: {registered:?}"
    );
    assert_eq!(of(&generated), ["request served"]);
    assert!(of("not a valid id").is_empty());
    // Nothing requests cause is logged without an id: no access line and
    // no mail line outside a request's span.
    for line in &lines {
        let message = line["message"].as_str().unwrap_or_default();
        // (A migration's name may say "mail" too: not a request's line.)
        let migrating = line["target"]
            .as_str()
            .is_some_and(|target| target.starts_with("sea_orm_migration"));
        let about_mail = message.contains("mail") && !migrating;
        if message == "request served" || about_mail {
            assert!(
                line["span"]["request_id"]
                    .as_str()
                    .is_some_and(|id| !id.is_empty()),
                "{line}"
            );
        }
    }
}

/// The child's exit status; kills it (and fails) after `limit`.
pub(crate) fn wait_at_most(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the command did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when the test ends, even by a failed assertion.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Answers each prompt in turn once it appears; returns the exit code and
/// everything the terminal showed.
fn answer_prompts(mut command: Command, answers: &[(&str, &str)]) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let shown = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 256];
            while let Ok(n @ 1..) = stdout.read(&mut chunk) {
                shown.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = 0;
    for (prompt, answer) in answers {
        let appeared = (0..200).any(|_| {
            let text = text(&shown.lock().unwrap());
            let found = text[seen..].find(prompt).map(|at| seen + at + prompt.len());
            if let Some(end) = found {
                seen = end;
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
            false
        });
        assert!(
            appeared,
            "no {prompt:?} in {:?}",
            text(&shown.lock().unwrap())
        );
        // rpassword writes the prompt, then switches echo off: give it time.
        std::thread::sleep(Duration::from_secs(1));
        writeln!(stdin, "{answer}").unwrap();
    }
    drop(stdin);
    let status = wait_at_most(&mut child, Duration::from_secs(30));
    reader.join().unwrap();
    let shown = text(&shown.lock().unwrap());
    (status.code(), shown)
}

#[tokio::test]
async fn admin_create_user_prompts_twice_without_echo() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let env = admin_env(&database);
    let args = |email| ["admin", "create-user", "--email", email, "--role", "admin"];
    let secret = crate::support::PASSWORD;

    let (code, shown) = answer_prompts(
        on_a_terminal(dir.path(), &env, &args("pat@example.com")),
        &[
            ("Password: ", secret),
            ("Repeat it: ", "something else entirely"),
        ],
    );
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("the passwords differ"), "{shown}");

    let (code, shown) = answer_prompts(
        on_a_terminal(dir.path(), &env, &args("pat@example.com")),
        &[("Password: ", secret), ("Repeat it: ", secret)],
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("created admin pat@example.com"), "{shown}");
    assert!(!shown.contains(secret), "the password was echoed: {shown}");
}

#[test]
fn settings_come_from_the_environment_over_dot_env_over_the_default() {
    // `health` says which address it tried: nothing listens on ports 1–3.
    let tried = |dir: &Path, env: &[(&str, &str)]| {
        let out = run(dir, env, &["health"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        text(&out.stderr)
    };
    let dir = tempfile::tempdir().unwrap();
    let default = run(dir.path(), &[], &["health"]);
    assert!(
        default.status.success() || text(&default.stderr).contains("127.0.0.1:8080"),
        "the default address: {default:?}"
    );
    std::fs::write(dir.path().join(".env"), "BIND_ADDR=127.0.0.1:2\n").unwrap();
    assert!(
        tried(dir.path(), &[]).contains("127.0.0.1:2"),
        "the file over the default"
    );
    let from_env = tried(dir.path(), &[("BIND_ADDR", "127.0.0.1:3")]);
    assert!(
        from_env.contains("127.0.0.1:3"),
        "the environment over the file: {from_env}"
    );
    // A malformed file stops it with a configuration error naming it.
    std::fs::write(dir.path().join(".env"), "BIND_ADDR='unclosed\n").unwrap();
    let malformed = run(dir.path(), &[], &["health"]);
    assert_eq!(malformed.status.code(), Some(78), "{malformed:?}");
    assert!(text(&malformed.stderr).contains(".env"), "{malformed:?}");
}
