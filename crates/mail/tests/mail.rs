//! Delivery through the file transport and through real SMTP conversations,
//! and how each failure is reported to the outbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pp_domain::Email;
use pp_domain::auth::tokens::{LinkMail, OneTimePurpose};
use pp_domain::outbox::{ClaimedMail, DeliveryError, MailDelivery, OutboxId, OutgoingMail};
use pp_mail::{MailSender, Transport};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SITE: &str = "https://auction.example";
const TOKEN: &str = "2JroQv8x_k3Lw9mZpT4bYc7HnR1sVdE6fGaUiO0jKlX";

/// `mail` as a worker claims it: message `id`, first attempt.
fn claimed(id: OutboxId, mail: OutgoingMail) -> ClaimedMail {
    ClaimedMail {
        id,
        attempt: 1,
        mail,
        request_id: Some("req-mail".into()),
        trace_parent: None,
    }
}

fn link(purpose: OneTimePurpose) -> String {
    let path = match purpose {
        OneTimePurpose::VerifyEmail => "verify-email",
        OneTimePurpose::ResetPassword => "reset-password",
    };
    format!("https://auction.example/{path}?token={TOKEN}")
}

fn mail(to: &str, name: &str, purpose: OneTimePurpose) -> OutgoingMail {
    OutgoingMail::Link(LinkMail {
        to: Email::parse(to).unwrap(),
        name: name.into(),
        purpose,
        link: link(purpose),
        expires_at: chrono::Utc::now() + chrono::Duration::hours(24),
    })
}

/// What the code under test logs, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's logs until the guard drops.
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn the_file_transport_writes_a_readable_eml_per_message_and_logs_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let sender = MailSender::new(
        &Transport::File(mail_dir.clone()),
        "Poison Pill <no-reply@auction.example>",
        SITE,
    )
    .unwrap();
    let logs = Logs::default();
    let _guard = logs.capture();
    let (verify, reset) = (OutboxId::generate(), OutboxId::generate());
    sender
        .deliver(&claimed(
            verify,
            mail("ann@example.com", "Ann", OneTimePurpose::VerifyEmail),
        ))
        .await
        .unwrap();
    sender
        .deliver(&claimed(
            reset,
            mail("bob@example.com", "Bøb", OneTimePurpose::ResetPassword),
        ))
        .await
        .unwrap();

    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2);
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "eml"))
    );
    for (id, to, purpose) in [
        (verify, "ann@example.com", OneTimePurpose::VerifyEmail),
        (reset, "bob@example.com", OneTimePurpose::ResetPassword),
    ] {
        let file = files
            .iter()
            .find(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .contains(&format!("To: {to}"))
            })
            .unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains("From: \"Poison Pill\" <no-reply@auction.example>")
                || text.contains("From: Poison Pill <no-reply@auction.example>"),
            "{text}"
        );
        assert!(text.contains(&format!("Message-ID: <{id}@auction.example>")));
        // The link as a person copies it: whole, on a line of its own.
        let link = link(purpose);
        assert!(text.lines().any(|line| line.trim_end() == link), "{text}");
        assert!(!text.contains("=3D") && !text.contains("=\r\n"), "{text}");
        // The log names the file, and never the link.
        assert!(
            logs.text().contains(&file.display().to_string()),
            "{}",
            logs.text()
        );
    }
    let logs = logs.text();
    assert_eq!(logs.matches("wrote an e-mail").count(), 2, "{logs}");
    assert!(logs.contains(" INFO "), "{logs}");
    assert!(!logs.contains(TOKEN) && !logs.contains("token="), "{logs}");
}

#[tokio::test]
async fn a_file_that_cannot_be_written_is_a_transient_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let sender = MailSender::new(
        &Transport::File(mail_dir.clone()),
        "a@auction.example",
        SITE,
    )
    .unwrap();
    std::fs::remove_dir(&mail_dir).unwrap();
    std::fs::write(&mail_dir, "not a directory").unwrap();
    let err = sender
        .deliver(&claimed(
            OutboxId::generate(),
            mail("ann@example.com", "Ann", OneTimePurpose::VerifyEmail),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
}

#[tokio::test]
async fn a_message_that_cannot_be_written_is_a_permanent_failure() {
    // The domain takes a quoted local part; lettre cannot address it.
    let dir = tempfile::tempdir().unwrap();
    let sender = MailSender::new(
        &Transport::File(dir.path().into()),
        "a@auction.example",
        SITE,
    )
    .unwrap();
    let err = sender
        .deliver(&claimed(
            OutboxId::generate(),
            mail(
                "\"ann smith\"@example.com",
                "Ann",
                OneTimePurpose::VerifyEmail,
            ),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// What a test SMTP server says to `RCPT TO`.
#[derive(Clone, Copy)]
enum Rcpt {
    Accept,
    Refuse(&'static str),
}

/// A minimal SMTP server (it offers 8BITMIME) that answers `RCPT TO` as
/// told and records each accepted message's `MAIL FROM` line and data.
async fn smtp_sink(rcpt: Rcpt) -> (u16, tokio::sync::mpsc::Receiver<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut mail_from = String::new();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            let body = data.take().unwrap_or_default();
                            tx.send((mail_from.clone(), body)).await.unwrap();
                            write.write_all(b"250 OK queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split([' ', ':'])
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: String = match verb.as_str() {
                        "EHLO" => "250-sink\r\n250 8BITMIME\r\n".into(),
                        "HELO" => "250 sink\r\n".into(),
                        "MAIL" => {
                            mail_from.clone_from(&line);
                            "250 OK\r\n".into()
                        }
                        "RCPT" => match rcpt {
                            Rcpt::Accept => "250 OK\r\n".into(),
                            Rcpt::Refuse(reply) => format!("{reply}\r\n"),
                        },
                        "DATA" => {
                            data = Some(String::new());
                            "354 go ahead\r\n".into()
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => "250 OK\r\n".into(),
                    };
                    write.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (port, rx)
}

fn smtp(port: u16) -> MailSender {
    let url = format!("smtp://127.0.0.1:{port}");
    MailSender::new(&Transport::Smtp(url), "no-reply@auction.example", SITE).unwrap()
}

#[tokio::test]
async fn smtp_delivers_through_a_real_conversation() {
    let (port, mut received) = smtp_sink(Rcpt::Accept).await;
    let id = OutboxId::generate();
    smtp(port)
        .deliver(&claimed(
            id,
            mail(
                "ann@example.com",
                "Ann <b>&</b>",
                OneTimePurpose::VerifyEmail,
            ),
        ))
        .await
        .unwrap();
    let (_, data) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(data.contains("To: ann@example.com"), "{data}");
    assert!(data.contains("Subject: Verify your e-mail address"));
    assert!(data.contains(&format!("Message-ID: <{id}@auction.example>")));
    // Plain text and HTML, each with the link, as written (no decoding).
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("text/plain") && data.contains("text/html"));
    assert!(data.contains("Content-Transfer-Encoding: 7bit"), "{data}");
    let link = link(OneTimePurpose::VerifyEmail);
    assert_eq!(
        data.matches(&link).count(),
        3,
        "once in the text, twice in the HTML: {data}"
    );
    assert!(data.lines().any(|line| line == link), "{data}");
    assert!(data.contains("Hello Ann <b>&</b>,"), "the text as written");
    assert!(
        data.contains("Hello Ann &#60;b&#62;&#38;&#60;/b&#62;,"),
        "{data}"
    );
    assert!(data.contains("for 24 hours."));
}

#[tokio::test]
async fn smtp_sends_a_name_beyond_ascii_as_8bitmime() {
    let (port, mut received) = smtp_sink(Rcpt::Accept).await;
    smtp(port)
        .deliver(&claimed(
            OutboxId::generate(),
            mail("zoe@example.com", "Zoë 🦀", OneTimePurpose::ResetPassword),
        ))
        .await
        .unwrap();
    let (mail_from, data) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(mail_from.contains("BODY=8BITMIME"), "{mail_from}");
    assert!(data.contains("Content-Transfer-Encoding: 8bit"), "{data}");
    assert!(data.contains("Hello Zoë 🦀,"), "{data}");
    let link = link(OneTimePurpose::ResetPassword);
    assert!(data.lines().any(|line| line == link), "{data}");
}

/// What a server answering `reply` to the recipient makes of Ann's mail.
async fn refused_with(reply: &'static str) -> DeliveryError {
    let (port, _received) = smtp_sink(Rcpt::Refuse(reply)).await;
    smtp(port)
        .deliver(&claimed(
            OutboxId::generate(),
            mail("ann@example.com", "Ann", OneTimePurpose::VerifyEmail),
        ))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_refusal_for_good_is_permanent() {
    let err = refused_with("550 5.1.1 no such mailbox").await;
    let DeliveryError::Permanent(text) = &err else {
        panic!("{err:?}");
    };
    assert!(text.contains("550"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn a_refused_login_or_sender_is_the_relays_fault_and_transient_and_addresses_are_redacted() {
    let err = refused_with("530 5.7.0 <ann@example.com> must authenticate first").await;
    let DeliveryError::Transient(text) = &err else {
        panic!("{err:?}");
    };
    assert!(text.contains("530"), "{text}");
    assert!(!text.contains("ann@example.com"), "{text}");
}

#[tokio::test]
async fn a_server_that_greets_and_then_stalls_is_given_up_on_in_time() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket
                .write_all(b"220 stalling.example ESMTP\r\n")
                .await
                .unwrap();
            held.push(socket);
        }
    });
    let started = std::time::Instant::now();
    let err = smtp(port)
        .with_send_timeout(Duration::from_millis(500))
        .deliver(&claimed(
            OutboxId::generate(),
            mail("ann@example.com", "Ann", OneTimePurpose::VerifyEmail),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Transient(text) if text.contains("no answer")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_try_later_is_transient() {
    let err = refused_with("451 4.7.1 greylisted, try later").await;
    let DeliveryError::Transient(text) = &err else {
        panic!("{err:?}");
    };
    assert!(text.contains("451"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn a_server_that_is_down_is_transient() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = smtp(port)
        .deliver(&claimed(
            OutboxId::generate(),
            mail("ann@example.com", "Ann", OneTimePurpose::VerifyEmail),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
}

#[test]
fn a_bad_sender_or_url_is_refused_at_start() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    assert!(MailSender::new(&Transport::File("/tmp".into()), "not a mailbox", SITE).is_err());
    assert!(MailSender::new(&Transport::Smtp("ftp://x".into()), "a@b.example", SITE).is_err());
}
