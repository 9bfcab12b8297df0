//! # Poison Pill's mail adapter
//!
//! [`QueuedMailer`] implements the domain's `Mailer` port: `send` only queues
//! (so a flow that mails a link takes the same time whether or not it had
//! anyone to mail), and a background task renders the mail (its wording is
//! here, its plain-text and HTML layouts in `templates/`) and delivers it
//! through a [`Transport`]:
//! lettre's file transport (one `.eml` per message) or SMTP. Delivery is
//! retried a few times; what still fails is logged without its body, which
//! carries a secret link.

use std::path::PathBuf;
use std::time::Duration;

use askama::Template;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pp_domain::auth::ports::Mailer;
use pp_domain::auth::tokens::{LinkMail, OneTimePurpose};
use tokio::sync::mpsc;
use tracing::{Instrument, Span};

/// Messages waiting beyond this are refused rather than queued without bound.
const QUEUE_CAPACITY: usize = 1_024;
/// Delivery attempts per message.
const ATTEMPTS: u32 = 3;

/// Where mail goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One `.eml` file per message in this directory.
    File(PathBuf),
    /// An SMTP relay, e.g. `smtp://127.0.0.1:2525` or `smtps://user:pass@host`.
    Smtp(String),
}

enum Sender {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Sender {
    async fn deliver(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Sender::File(transport) => transport.send(message).await.map(drop)?,
            Sender::Smtp(transport) => transport.send(message).await.map(drop)?,
        }
        Ok(())
    }
}

/// The [`Mailer`] port: a bounded queue and a delivery task.
#[derive(Clone, Debug)]
pub struct QueuedMailer {
    /// Each message with the span it was queued in (the request's), so that
    /// what its delivery logs carries that request's id.
    queue: mpsc::Sender<(LinkMail, Span)>,
}

impl QueuedMailer {
    /// Starts the delivery task (inside the Tokio runtime) sending as `from`.
    ///
    /// # Errors
    /// When `from` is not a mailbox, the directory cannot be created, or the
    /// SMTP URL is malformed.
    pub fn start(transport: &Transport, from: &str) -> anyhow::Result<Self> {
        let from: Mailbox = from.parse()?;
        let sender = match transport {
            Transport::File(dir) => {
                std::fs::create_dir_all(dir)?;
                Sender::File(AsyncFileTransport::new(dir))
            }
            Transport::Smtp(url) => Sender::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
        };
        let (queue, mut inbox) = mpsc::channel::<(LinkMail, Span)>(QUEUE_CAPACITY);
        tokio::spawn(async move {
            while let Some((mail, span)) = inbox.recv().await {
                deliver_with_retries(&sender, &from, mail)
                    .instrument(span)
                    .await;
            }
        });
        Ok(QueuedMailer { queue })
    }
}

/// The words of a link mail, by what the link is for.
struct Wording {
    subject: &'static str,
    action: &'static str,
    button: &'static str,
}

fn wording(purpose: OneTimePurpose) -> Wording {
    match purpose {
        OneTimePurpose::VerifyEmail => Wording {
            subject: "Verify your e-mail address",
            action: "confirm your e-mail address",
            button: "Verify my address",
        },
        OneTimePurpose::ResetPassword => Wording {
            subject: "Reset your password",
            action: "choose a new password",
            button: "Choose a new password",
        },
    }
}

/// How long a link works, in words: "1 hour", "24 hours", "30 minutes".
fn lifetime(valid_for: chrono::Duration) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match (valid_for.num_hours(), valid_for.num_minutes()) {
        (hours, minutes) if hours > 0 && minutes == hours * 60 => plural(hours, "hour"),
        (_, minutes) => plural(minutes.max(1), "minute"),
    }
}

/// The plain-text part.
#[derive(Template)]
#[template(path = "link.txt")]
struct LinkText<'a> {
    name: &'a str,
    action: &'a str,
    link: &'a str,
    lifetime: &'a str,
}

/// The HTML part (every value escaped).
#[derive(Template)]
#[template(path = "link.html")]
struct LinkHtml<'a> {
    subject: &'a str,
    name: &'a str,
    action: &'a str,
    button: &'a str,
    link: &'a str,
    lifetime: &'a str,
}

/// `mail` as a message: its subject, and its text as plain text and HTML.
fn message(from: &Mailbox, mail: &LinkMail) -> anyhow::Result<Message> {
    let words = wording(mail.purpose);
    let lifetime = lifetime(mail.valid_for);
    let text = LinkText {
        name: &mail.name,
        action: words.action,
        link: &mail.link,
        lifetime: &lifetime,
    }
    .render()?;
    let html = LinkHtml {
        subject: words.subject,
        name: &mail.name,
        action: words.action,
        button: words.button,
        link: &mail.link,
        lifetime: &lifetime,
    }
    .render()?;
    Ok(Message::builder()
        .from(from.clone())
        .to(mail.to.as_str().parse()?)
        .subject(words.subject)
        .multipart(MultiPart::alternative_plain_html(text, html))?)
}

async fn deliver_with_retries(sender: &Sender, from: &Mailbox, mail: LinkMail) {
    let subject = wording(mail.purpose).subject;
    for attempt in 1..=ATTEMPTS {
        let outcome = match message(from, &mail) {
            Ok(message) => sender.deliver(message).await,
            Err(err) => {
                tracing::error!(error = %err, subject, "cannot build an e-mail");
                return;
            }
        };
        match outcome {
            Ok(()) => return,
            Err(err) if attempt < ATTEMPTS => {
                tracing::warn!(error = %err, attempt, subject, "e-mail delivery failed; retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            Err(err) => tracing::error!(error = %err, subject, "e-mail delivery failed; giving up"),
        }
    }
}

#[async_trait]
impl Mailer for QueuedMailer {
    async fn send(&self, mail: LinkMail) -> anyhow::Result<()> {
        self.queue.try_send((mail, Span::current())).map_err(|err| {
            tracing::error!("the mail queue is full or closed; an e-mail was dropped");
            anyhow::anyhow!("cannot queue an e-mail: {err}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lifetime_reads_in_hours_or_minutes() {
        for (valid_for, words) in [
            (chrono::Duration::hours(24), "24 hours"),
            (chrono::Duration::hours(1), "1 hour"),
            (chrono::Duration::minutes(30), "30 minutes"),
            (chrono::Duration::minutes(90), "90 minutes"),
            (chrono::Duration::seconds(10), "1 minute"),
        ] {
            assert_eq!(lifetime(valid_for), words);
        }
    }
}
