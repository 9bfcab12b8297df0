//! The SMTP sink is a real SMTP server: lettre talks to it as it would to any
//! other, what it accepted reads back whole, and it can go down and come
//! back on its port with what it had.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::process::Stdio;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pp_testkit::smtp::{self, SmtpSink};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(15);

fn transport(sink: &SmtpSink) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url())
        .unwrap()
        .timeout(Some(Duration::from_secs(5)))
        .build()
}

fn message(id: &str, to: &str, subject: &str, link: &str) -> Message {
    Message::builder()
        .from(
            "Poison Pill <no-reply@auction.example>"
                .parse::<Mailbox>()
                .unwrap(),
        )
        .to(to.parse::<Mailbox>().unwrap())
        .message_id(Some(format!("<{id}>")))
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(
            format!("Bonjour Zoë,\r\n\r\nvérifiez votre adresse : {link}.\r\n"),
            format!("<p>Bonjour Zoë, <a href=\"{link}\">vérifiez</a></p>"),
        ))
        .unwrap()
}

#[tokio::test]
async fn a_message_sent_over_smtp_reads_back_whole() {
    let sink = SmtpSink::start().await;
    assert_eq!(sink.url(), format!("smtp://127.0.0.1:{}", sink.port()));
    assert!(sink.messages().is_empty());

    let link = "https://auction.example/verify-email?token=a1b2c3";
    // A Bcc is in the envelope only (lettre leaves it out of the headers).
    let mail = Message::builder()
        .from(
            "Poison Pill <no-reply@auction.example>"
                .parse::<Mailbox>()
                .unwrap(),
        )
        .to("Zoë <zoe@example.com>".parse::<Mailbox>().unwrap())
        .bcc("audit@example.com".parse::<Mailbox>().unwrap())
        .message_id(Some("<first@auction.example>".into()))
        .subject("Vérifiez votre adresse")
        .multipart(MultiPart::alternative_plain_html(
            format!("Bonjour Zoë,\r\n\r\nvérifiez votre adresse : {link}.\r\n"),
            format!("<p>Bonjour Zoë, <a href=\"{link}\">vérifiez</a></p>"),
        ))
        .unwrap();
    transport(&sink).send(mail).await.unwrap();

    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let mail = &got[0];
    assert_eq!(mail.mail_from, "no-reply@auction.example");
    assert_eq!(mail.recipients, ["zoe@example.com", "audit@example.com"]);
    assert_eq!(mail.message_id.as_deref(), Some("first@auction.example"));
    assert_eq!(mail.subject.as_deref(), Some("Vérifiez votre adresse"));
    let text = mail.text.as_deref().unwrap();
    assert!(text.contains("Bonjour Zoë"), "{text}");
    assert!(
        mail.html
            .as_deref()
            .unwrap()
            .contains(&format!("href=\"{link}\""))
    );
    assert_eq!(mail.links(), [link]);
    assert_eq!(
        mail.header("from").as_deref(),
        Some("Poison Pill <no-reply@auction.example>")
    );
    assert_eq!(mail.header("to").as_deref(), Some("Zoë <zoe@example.com>"));
    assert!(mail.header("X-Absent").is_none());
    assert!(mail.header("Bcc").is_none());
    // The raw DATA as sent: CRLF line ends, headers (encoded) and both parts.
    assert!(
        mail.raw
            .contains("\r\nMessage-ID: <first@auction.example>\r\n"),
        "{}",
        mail.raw
    );
    assert!(mail.raw.contains("Content-Type: multipart/alternative"));
    assert!(mail.file.starts_with(sink.dir()));
}

#[tokio::test]
async fn a_stopped_sink_refuses_and_a_restarted_one_keeps_its_port_and_messages() {
    let mut sink = SmtpSink::start().await;
    let port = sink.port();
    // Not a port the kernel could give a client while the sink is down.
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let ephemeral_low: u16 = ephemeral
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        port < ephemeral_low,
        "{port} is in the ephemeral range {ephemeral}"
    );
    // One transport throughout, as the app keeps one (lettre pools connections).
    let smtp = transport(&sink);
    smtp.send(message(
        "one@auction.example",
        "ann@example.com",
        "one",
        "http://a.example/1",
    ))
    .await
    .unwrap();
    sink.wait_for(1, WAIT).await;

    sink.stop().await;
    assert!(!sink.is_running());
    assert_eq!(sink.pid(), None);
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    let failed = smtp
        .send(message(
            "lost@auction.example",
            "ann@example.com",
            "lost",
            "http://a.example/x",
        ))
        .await;
    assert!(failed.is_err(), "sending to a stopped sink must fail");
    sink.stop().await; // stopping twice is harmless
    assert_eq!(
        sink.messages().len(),
        1,
        "the messages stay while it is down"
    );

    sink.restart().await;
    assert!(sink.is_running());
    assert_eq!(sink.port(), port);
    assert!(sink.pid().is_some());
    smtp.send(message(
        "two@auction.example",
        "bob@example.com",
        "two",
        "http://a.example/2",
    ))
    .await
    .unwrap();
    let got = sink.wait_for(2, WAIT).await;
    let ids: Vec<_> = got
        .iter()
        .map(|m| m.message_id.as_deref().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["one@auction.example", "two@auction.example"],
        "in arrival order"
    );
    assert_eq!(got[1].recipients, ["bob@example.com"]);

    // Restarting a running sink stops it first.
    sink.restart().await;
    assert_eq!(sink.port(), port);
    assert_eq!(sink.messages().len(), 2);
}

#[tokio::test]
async fn every_accepted_message_is_counted_once() {
    let sink = SmtpSink::start().await;
    let smtp = transport(&sink);
    let sends = (0..20).map(|i| {
        let smtp = smtp.clone();
        async move {
            let id = format!("m{i}@auction.example");
            smtp.send(message(
                &id,
                "ann@example.com",
                &format!("n{i}"),
                "http://a.example",
            ))
            .await
            .unwrap();
        }
    });
    futures_join_all(sends).await;
    let got = sink.wait_for(20, WAIT).await;
    let mut ids: Vec<_> = got.iter().filter_map(|m| m.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (20, 20));
}

/// Runs the futures at once on this task's runtime.
async fn futures_join_all(
    futures: impl Iterator<Item = impl Future<Output = ()> + Send + 'static>,
) {
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
#[should_panic(expected = "expected at least 1 message(s) within")]
async fn waiting_for_a_message_that_never_comes_fails_clearly() {
    let sink = SmtpSink::start().await;
    sink.wait_for(1, Duration::from_millis(200)).await;
}

/// The script's own contract: one `listening on` line, exit status 0 on SIGTERM.
#[tokio::test]
async fn the_script_says_where_it_listens_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(smtp::python())
        .arg(smtp::script())
        .args(["--port", "0", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let port: u16 = line
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();

    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        lines.next_line().await.unwrap(),
        None,
        "nothing else on stdout"
    );
}
