//! # pp-chaos
//!
//! Runs Poison Pill as production does (three `serve` instances with
//! `RUN_WORKERS=false` and one `worker`, on a PostgreSQL cluster and a
//! Redis of the harness's own, mail to a real SMTP sink), drives real
//! clients against it round-robin while faults strike on a seeded
//! schedule, and then checks the clients' history against what was stored,
//! in the manner of Jepsen's checkers.
//!
//! `CHAOS_SEED` replays a run (the seed is printed first);
//! `CHAOS_PROFILE=long` runs longer with more clients; `POISON_PILL_BIN`
//! names the binary under test. `make chaos` builds and runs it.

mod checker;
mod history;
mod instances;
mod load;
mod proxy;
mod services;
mod stored;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::checker::Timeline;
use crate::history::{FaultWindow, History};
use crate::instances::Instance;
use crate::load::{Balancer, Bidder, answer_of, millis};

/// How big and how long a run is.
#[derive(Clone, Copy, Debug)]
struct Profile {
    load_for: Duration,
    bidders: usize,
    hot_items: usize,
    cold_items: usize,
    subscribers_per_hot_item: usize,
    /// Cold items followed live, one subscriber each: quiet streams that
    /// must survive on keep-alives alone.
    followed_cold_items: usize,
    /// The pause between two faults, drawn from this range (ms).
    fault_every: (u64, u64),
}

const SHORT: Profile = Profile {
    load_for: Duration::from_secs(120),
    bidders: 40,
    hot_items: 3,
    cold_items: 40,
    subscribers_per_hot_item: 3,
    followed_cold_items: 6,
    fault_every: (6_000, 12_000),
};

const LONG: Profile = Profile {
    load_for: Duration::from_secs(900),
    bidders: 120,
    hot_items: 5,
    cold_items: 200,
    subscribers_per_hot_item: 6,
    followed_cold_items: 30,
    fault_every: (5_000, 15_000),
};

const PASSWORD: &str = "violet kettle drums at dawn";
const ADMIN: &str = "admin@chaos.test";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("chaos: the harness failed: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[allow(clippy::print_stdout)]
async fn run() -> anyhow::Result<bool> {
    let seed: u64 = match std::env::var("CHAOS_SEED") {
        Ok(seed) => seed.trim().parse().context("CHAOS_SEED: a whole number")?,
        Err(_) => rand::random(),
    };
    let long = std::env::var("CHAOS_PROFILE").is_ok_and(|p| p == "long");
    let profile = if long { LONG } else { SHORT };
    println!(
        "chaos: seed {seed} (replay with CHAOS_SEED={seed}), profile {}",
        if long { "long" } else { "short" }
    );
    let binary = PathBuf::from(
        std::env::var("POISON_PILL_BIN")
            .context("POISON_PILL_BIN: the poison-pill binary to test")?,
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let work = tempfile::Builder::new().prefix("pp-chaos").tempdir()?;
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    println!("chaos: logs in {}", logs.display());
    let postgres = services::Postgres::start().await?;
    postgres.create_database("chaos").await?;
    let mut redis = services::Redis::start().await?;
    let proxy = proxy::StallingProxy::start(redis.port).await?;
    let sink = pp_testkit::smtp::SmtpSink::start().await;

    let env: Vec<(String, String)> = [
        ("DATABASE_URL", postgres.url("chaos")),
        ("REDIS_URL", format!("redis://127.0.0.1:{}", proxy.port)),
        ("REDIS_KEY_PREFIX", "chaos:".to_owned()),
        (
            "JWT_SECRET",
            "chaos-jwt-secret-that-is-long-enough-0123456789".to_owned(),
        ),
        (
            "BID_SEALING_KEY",
            "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=".to_owned(),
        ),
        ("MAIL_TRANSPORT", "smtp".to_owned()),
        ("SMTP_URL", sink.url()),
        ("PUBLIC_URL", "http://chaos.test".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("REQUIRE_EMAIL_VERIFICATION", "false".to_owned()),
        ("RATE_LIMIT_GLOBAL", "10000000/10s".to_owned()),
        ("RATE_LIMIT_AUTH", "10000000/60s".to_owned()),
        ("RATE_LIMIT_WRITE", "10000000/60s".to_owned()),
        ("LIVE_STREAMS_PER_IP", "100000".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS", "5".to_owned()),
        ("DATA_DIR", work.path().join("data").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    create_admin(&binary, &env).await?;
    let mut apis = Vec::new();
    for n in 1..=3 {
        let mut env = env.clone();
        env.push(("RUN_WORKERS".to_owned(), "false".to_owned()));
        apis.push(Instance::new(
            &format!("api-{n}"),
            binary.clone(),
            &["serve"],
            env,
            logs.clone(),
        )?);
    }
    let mut worker = Instance::new(
        "worker",
        binary.clone(),
        &["worker"],
        env.clone(),
        logs.clone(),
    )?;
    for api in &mut apis {
        api.start().await?;
    }
    worker.start().await?;
    let balancer = Arc::new(Balancer::new(apis.iter().map(Instance::url).collect()));

    // The items, closing a little after the load ends.
    let admin = login(&balancer, ADMIN).await?;
    let closes_at = chrono::Utc::now()
        + chrono::Duration::from_std(profile.load_for + Duration::from_secs(20))?;
    let mut items = Vec::new();
    for n in 0..profile.hot_items + profile.cold_items {
        items.push(list_item(&balancer, &admin, n, closes_at).await?);
    }
    let items = Arc::new(items);
    let mut bidders = Vec::new();
    for n in 0..profile.bidders {
        bidders.push(register(&balancer, &format!("bidder-{n}@chaos.test")).await?);
    }
    let emails: Vec<String> = (0..profile.bidders)
        .map(|n| format!("bidder-{n}@chaos.test"))
        .collect();
    verify_addresses(&balancer, &sink, &emails).await?;
    let accounts: Vec<(uuid::Uuid, String)> = bidders
        .iter()
        .map(|b| b.id)
        .zip(emails.iter().cloned())
        .collect();
    println!(
        "chaos: {} items ({} hot), {} bidders, {} s of load under faults",
        items.len(),
        profile.hot_items,
        bidders.len(),
        profile.load_for.as_secs()
    );

    let history = Arc::new(History::default());
    let started = Instant::now();
    let until = started + profile.load_for;
    let mut clients = Vec::new();
    for (n, bidder) in bidders.into_iter().enumerate() {
        clients.push(tokio::spawn(load::bid(
            bidder,
            Arc::clone(&items),
            profile.hot_items,
            Arc::clone(&balancer),
            Arc::clone(&history),
            seed ^ (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            until,
        )));
    }
    clients.push(tokio::spawn(load::sessions(
        emails,
        Arc::clone(&balancer),
        Arc::clone(&history),
        seed.rotate_left(7),
        until,
    )));
    clients.push(tokio::spawn(load::register(
        Arc::clone(&balancer),
        Arc::clone(&history),
        seed,
        until,
    )));
    let mut subscribers = Vec::new();
    let follow_until = until + Duration::from_secs(120);
    let followed = items
        .iter()
        .take(profile.hot_items)
        .flat_map(|item| std::iter::repeat_n(*item, profile.subscribers_per_hot_item))
        .chain(
            items
                .iter()
                .skip(profile.hot_items)
                .take(profile.followed_cold_items)
                .copied(),
        );
    for item in followed {
        subscribers.push(tokio::spawn(load::subscribe(
            item,
            Arc::clone(&balancer),
            Arc::clone(&history),
            follow_until,
        )));
    }

    // Faults, on the seeded schedule, while the load runs.
    while Instant::now() + Duration::from_secs(10) < until {
        tokio::time::sleep(millis(
            &mut rng,
            profile.fault_every.0,
            profile.fault_every.1,
        ))
        .await;
        let from = Instant::now();
        let (kind, target) = match rng.random_range(0..7_u8) {
            0 => {
                let api = &mut apis[rng.random_range(0..3)];
                api.kill().await?;
                tokio::time::sleep(millis(&mut rng, 500, 3_000)).await;
                api.start().await?;
                ("kill -9 instance", api.name.clone())
            }
            1 => {
                let api = &mut apis[rng.random_range(0..3)];
                let exit = api.terminate(Duration::from_secs(15)).await?;
                if exit != Some(0) {
                    bail!("{} exited with {exit:?} after SIGTERM", api.name);
                }
                api.start().await?;
                ("SIGTERM instance", api.name.clone())
            }
            2 => {
                let api = &apis[rng.random_range(0..3)];
                api.pause()?;
                tokio::time::sleep(millis(&mut rng, 1_000, 4_000)).await;
                api.resume()?;
                ("SIGSTOP instance", api.name.clone())
            }
            3 => {
                postgres.restart_fast().await?;
                ("PostgreSQL fast restart", "postgres".to_owned())
            }
            4 => {
                redis.kill_and_restart(millis(&mut rng, 200, 2_000)).await?;
                ("Redis killed, restarted empty", "redis".to_owned())
            }
            5 => {
                proxy.stall(true);
                tokio::time::sleep(millis(&mut rng, 1_000, 4_000)).await;
                proxy.stall(false);
                ("Redis stalled", "redis".to_owned())
            }
            _ => {
                worker.kill().await?;
                tokio::time::sleep(millis(&mut rng, 500, 2_000)).await;
                worker.start().await?;
                ("kill -9 worker", "worker".to_owned())
            }
        };
        history.fault(FaultWindow {
            kind,
            target,
            from,
            to: Instant::now(),
        });
    }
    for client in clients {
        client.await?;
    }
    // The worker killed as the items close, then back.
    let closing_in = (closes_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(closing_in + Duration::from_millis(100)).await;
    let from = Instant::now();
    worker.kill().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    worker.start().await?;
    history.fault(FaultWindow {
        kind: "kill -9 worker at closing time",
        target: "worker".to_owned(),
        from,
        to: Instant::now(),
    });

    let closed = stored::read_closed_items(&balancer, &items).await?;
    for subscriber in subscribers {
        subscriber.await?;
    }

    // Mail owed arrives: each registration's, and each winner's notice.
    // The outbox may still be draining a backlog of bid news after a long
    // run, so the wait lasts while mail keeps arriving and gives up after
    // a minute with none: late is told from lost.
    let registrations = history
        .registrations
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    let titles: HashMap<uuid::Uuid, String> = items
        .iter()
        .enumerate()
        .map(|(n, item)| (*item, format!("Lot {n}")))
        .collect();
    let addresses: HashMap<uuid::Uuid, String> = accounts.iter().cloned().collect();
    let owed: Vec<(&str, Option<String>)> = registrations
        .iter()
        .filter(|r| r.answer == history::Answer::Status(201, None))
        .map(|r| (r.email.as_str(), None))
        .chain(closed.iter().filter_map(|item| {
            let address = addresses.get(&item.winner?)?;
            Some((
                address.as_str(),
                Some(checker::winner_subject(titles.get(&item.id)?)),
            ))
        }))
        .collect();
    let mails = wait_for_owed_mail(&sink, &owed).await;
    let attempts = history.bids.lock().map(|b| b.clone()).unwrap_or_default();
    let subscriptions = history
        .subscriptions
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    let faults = history.faults.lock().map(|f| f.clone()).unwrap_or_default();
    let acknowledged = attempts
        .iter()
        .filter(|a| matches!(a.answer, history::Answer::Status(201, _)))
        .count();
    let unanswered = attempts
        .iter()
        .filter(|a| matches!(a.answer, history::Answer::None(_)))
        .count();
    println!(
        "\nchaos: {} bid requests: {acknowledged} acknowledged, {unanswered} unanswered (either outcome allowed)",
        attempts.len()
    );
    println!(
        "chaos: {} registrations, {} answered 201; {} mails received",
        registrations.len(),
        registrations
            .iter()
            .filter(|r| r.answer == history::Answer::Status(201, None))
            .count(),
        mails.len()
    );
    println!(
        "\n{:<32} {:>8} {:>8} {:>6} {:>5} {:>5} {:>6} {:>7} {:>9}",
        "fault", "injected", "requests", "acked", "lost", "dup", "stale", "avail", "recovery"
    );
    let rows = checker::table(&attempts, &closed, &subscriptions, &faults);
    for (kind, row) in &rows {
        println!(
            "{kind:<32} {:>8} {:>8} {:>6} {:>5} {:>5} {:>6} {:>6.1}% {:>8.1}s",
            row.injected,
            row.requests,
            row.acknowledged,
            row.lost,
            row.duplicated,
            row.stale_events,
            row.availability(),
            row.recovery.as_secs_f64()
        );
        for (wrong, count) in &row.wrong {
            println!("    {count:>5} × {wrong}");
        }
    }
    for fault in &faults {
        log_line(&format!(
            "fault {} on {} for {:.1} s",
            fault.kind,
            fault.target,
            (fault.to - fault.from).as_secs_f64()
        ));
    }
    let timeline = Timeline {
        started,
        faults: &faults,
    };
    let notices = stored::read_notices(&balancer, &accounts).await?;
    let races = history
        .refresh_races
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    println!(
        "chaos: {} refresh tokens rotated twice at once: {} once, {} not at all",
        races.len(),
        races
            .iter()
            .filter(|r| r.answers.iter().filter(|a| a.is_success()).count() == 1)
            .count(),
        races
            .iter()
            .filter(|r| !r.answers.iter().any(history::Answer::is_success))
            .count()
    );
    let verdicts = [
        checker::acknowledged_bids_are_stored(&attempts, &closed, timeline),
        checker::replays_reproduce_outcomes(&closed),
        checker::streams_have_no_gap_or_repeat(&subscriptions, &closed, timeline),
        checker::items_close_once(&closed, &notices, &mails, &titles, &addresses),
        checker::refresh_families_stay_chains(
            &races,
            &stored::forked_families(&postgres.url("chaos")).await?,
            timeline,
        ),
        checker::registrations_are_mailed(&registrations, &mails),
        checker::revoked_tokens_stay_refused(
            &history
                .revoked
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default(),
            &history
                .accepted_after_revocation
                .lock()
                .map(|a| a.clone())
                .unwrap_or_default(),
            &balancer,
        )
        .await,
    ];
    println!();
    for verdict in &verdicts {
        println!(
            "{} {}",
            if verdict.passed() { "PASS" } else { "FAIL" },
            verdict.name
        );
        for failure in verdict.failures.iter().take(10) {
            println!("    {failure}");
        }
    }
    let failed = verdicts.iter().filter(|v| !v.passed()).count();
    println!(
        "\n{} passed, {failed} failed (seed {seed}{})",
        verdicts.len() - failed,
        if failed > 0 {
            format!("; replay with CHAOS_SEED={seed}")
        } else {
            String::new()
        }
    );
    for api in &mut apis {
        let _ = api.terminate(Duration::from_secs(15)).await;
    }
    let _ = worker.terminate(Duration::from_secs(15)).await;
    drop(sink);
    if failed > 0 || std::env::var_os("CHAOS_KEEP_LOGS").is_some() {
        // Keep the logs of a failing run (or when asked).
        println!("chaos: logs kept in {}", work.keep().display());
    }
    Ok(failed == 0)
}

/// A line of the harness's own, on stderr (stdout holds the report).
#[allow(clippy::print_stderr)]
fn log_line(line: &str) {
    eprintln!("chaos: {line}");
}

/// `poison-pill admin create-user` of the admin, as an operator would.
async fn create_admin(binary: &PathBuf, env: &[(String, String)]) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new(binary)
        .args([
            "admin",
            "create-user",
            "--email",
            ADMIN,
            "--role",
            "admin",
            "--verified",
            "--password-stdin",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(format!("{PASSWORD}\n").as_bytes()).await?;
    }
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "admin create-user: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Sends a setup request until it is answered (an instance may be down).
pub(crate) async fn setup_request(
    balancer: &Balancer,
    request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<(u16, Value)> {
    let client = load::client(Duration::from_secs(10));
    for _ in 0..20 {
        let (_, url) = balancer.next();
        if let (history::Answer::Status(status, _), Some(body)) =
            answer_of(request(&client, url)).await
        {
            return Ok((status, body));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("a setup request was never answered")
}

pub(crate) async fn login(balancer: &Balancer, email: &str) -> anyhow::Result<String> {
    let (status, body) = setup_request(balancer, |client, url| {
        client
            .post(format!("{url}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
    })
    .await?;
    if status != 200 {
        bail!("login of {email}: {status} {body}");
    }
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access token")
}

async fn register(balancer: &Balancer, email: &str) -> anyhow::Result<Bidder> {
    let (status, body) = setup_request(balancer, |client, url| {
        client
            .post(format!("{url}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD}))
    })
    .await?;
    if status != 201 {
        bail!("registration of {email}: {status} {body}");
    }
    let id = body["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .context("no user id")?;
    Ok(Bidder {
        id,
        token: login(balancer, email).await?,
    })
}

/// How long the sink may go without a new message before owed mail that
/// has not arrived counts as lost.
const MAIL_SILENCE: Duration = Duration::from_secs(60);

/// The sink's messages once every `owed` one (recipient, and subject when
/// given) has arrived, or once none has arrived for [`MAIL_SILENCE`].
#[allow(clippy::print_stdout)]
async fn wait_for_owed_mail(
    sink: &pp_testkit::smtp::SmtpSink,
    owed: &[(&str, Option<String>)],
) -> Vec<pp_testkit::smtp::ReceivedMail> {
    let mut seen = usize::MAX;
    let mut last_arrival = Instant::now();
    let mut mails = Vec::new();
    loop {
        let count = sink.count();
        if count != seen {
            seen = count;
            last_arrival = Instant::now();
            mails = sink.messages();
            let arrived = owed.iter().all(|(to, subject)| {
                mails.iter().any(|mail| {
                    mail.recipients.iter().any(|r| r.eq_ignore_ascii_case(to))
                        && subject
                            .as_deref()
                            .is_none_or(|s| mail.subject.as_deref() == Some(s))
                })
            });
            if arrived {
                return mails;
            }
        }
        if last_arrival.elapsed() > MAIL_SILENCE {
            println!("chaos: no mail for {MAIL_SILENCE:?}; {seen} received");
            return mails;
        }
        // Reading tens of thousands of messages takes a while: not too often.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Follows the link of each address's verification mail, as its owner
/// would: notices (a won auction) are mailed to proven addresses only.
async fn verify_addresses(
    balancer: &Balancer,
    sink: &pp_testkit::smtp::SmtpSink,
    emails: &[String],
) -> anyhow::Result<()> {
    let mails = sink.wait_for(emails.len(), Duration::from_secs(60)).await;
    for email in emails {
        let token = mails
            .iter()
            .filter(|mail| {
                mail.recipients
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(email))
            })
            .flat_map(|mail| mail.links())
            .find_map(|link| {
                link.split_once("/verify-email?token=")
                    .map(|(_, token)| token.to_owned())
            })
            .with_context(|| format!("no verification link mailed to {email}"))?;
        let (status, body) = setup_request(balancer, |client, url| {
            client
                .post(format!("{url}/api/v1/auth/verify-email"))
                .json(&json!({ "token": token }))
        })
        .await?;
        if status != 200 {
            bail!("verifying {email}: {status} {body}");
        }
    }
    Ok(())
}

async fn list_item(
    balancer: &Balancer,
    admin: &str,
    n: usize,
    closes_at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<uuid::Uuid> {
    let (status, body) = setup_request(balancer, |client, url| {
        client
            .post(format!("{url}/api/v1/items"))
            .bearer_auth(admin)
            .json(&json!({
                "title": format!("Lot {n}"),
                "base_price": 100,
                "min_increment": 10,
                "close_at": closes_at.to_rfc3339(),
            }))
    })
    .await?;
    if status != 201 {
        bail!("listing an item: {status} {body}");
    }
    body["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .context("no item id")
}
