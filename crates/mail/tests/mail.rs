//! Delivery through the file transport and through a real SMTP conversation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::time::Duration;

use pp_domain::Email;
use pp_domain::auth::ports::Mailer;
use pp_domain::auth::tokens::{LinkMail, OneTimePurpose};
use pp_mail::{QueuedMailer, Transport};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn mail(to: &str) -> LinkMail {
    LinkMail {
        to: Email::parse(to).unwrap(),
        name: "Ann <b>&</b>".into(),
        purpose: OneTimePurpose::VerifyEmail,
        link: "https://auction.example/verify-email?token=abc".into(),
        valid_for: chrono::Duration::hours(24),
    }
}

async fn eventually<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(found) = probe() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened");
}

#[tokio::test]
async fn the_file_transport_writes_one_eml_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = QueuedMailer::start(
        &Transport::File(dir.path().join("mail")),
        "Poison Pill <no-reply@auction.example>",
    )
    .unwrap();
    mailer.send(mail("ann@example.com")).await.unwrap();
    mailer.send(mail("bob@example.com")).await.unwrap();
    let files = eventually(|| {
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
            .ok()?
            .filter_map(Result::ok)
            .collect();
        (files.len() == 2).then_some(files)
    })
    .await;
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f.path()).unwrap())
        .collect();
    assert!(
        files
            .iter()
            .all(|f| f.path().extension().is_some_and(|e| e == "eml"))
    );
    assert!(texts.iter().any(|t| t.contains("To: ann@example.com")));
    assert!(texts.iter().all(
        |t| t.contains("From: \"Poison Pill\" <no-reply@auction.example>")
            || t.contains("From: Poison Pill <no-reply@auction.example>")
    ));
    // Quoted-printable: `=` is `=3D`.
    assert!(texts.iter().all(|t| t.contains("verify-email?token=3Dabc")));
}

/// A minimal SMTP server that records each message's data.
async fn smtp_sink() -> (u16, tokio::sync::mpsc::Receiver<String>) {
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
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            tx.send(data.take().unwrap_or_default()).await.unwrap();
                            write.write_all(b"250 OK queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 OK\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn smtp_delivers_through_a_real_conversation() {
    let (port, mut received) = smtp_sink().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let mailer = QueuedMailer::start(&Transport::Smtp(url), "no-reply@auction.example").unwrap();
    mailer.send(mail("ann@example.com")).await.unwrap();
    let data = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(data.contains("To: ann@example.com"), "{data}");
    assert!(data.contains("Subject: Verify your e-mail address"));
    // Plain text and HTML, each with the link; the HTML escapes the name.
    let decoded = data.replace("=\n", "").replace("=3D", "=");
    assert!(decoded.contains("multipart/alternative"), "{data}");
    assert!(decoded.contains("text/plain") && decoded.contains("text/html"));
    assert_eq!(
        decoded
            .matches("https://auction.example/verify-email?token=abc")
            .count(),
        3,
        "once in the text, twice in the HTML: {decoded}"
    );
    assert!(
        decoded.contains("Hello Ann <b>&</b>,"),
        "the text as written"
    );
    assert!(
        decoded.contains("Hello Ann &#60;b&#62;&#38;&#60;/b&#62;,"),
        "{decoded}"
    );
    assert!(decoded.contains("for 24 hours"));
}

#[test]
fn a_bad_sender_or_url_is_refused_at_start() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    assert!(QueuedMailer::start(&Transport::File("/tmp".into()), "not a mailbox").is_err());
    assert!(QueuedMailer::start(&Transport::Smtp("ftp://x".into()), "a@b.example").is_err());
}
