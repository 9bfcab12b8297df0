//! # Poison Pill's mail adapter
//!
//! [`QueuedMailer`] implements the domain's `Mailer` port: `send` only queues
//! (so a flow that mails a link takes the same time whether or not it had
//! anyone to mail), and a background task delivers through a [`Transport`]:
//! lettre's file transport (one `.eml` per message) or SMTP. Delivery is
//! retried a few times; what still fails is logged without its body, which
//! carries a secret link.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pp_domain::auth::ports::Mailer;
use pp_domain::auth::tokens::OutgoingMail;
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
    queue: mpsc::Sender<(OutgoingMail, Span)>,
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
        let (queue, mut inbox) = mpsc::channel::<(OutgoingMail, Span)>(QUEUE_CAPACITY);
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

fn message(from: &Mailbox, mail: &OutgoingMail) -> anyhow::Result<Message> {
    Ok(Message::builder()
        .from(from.clone())
        .to(mail.to.as_str().parse()?)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())?)
}

async fn deliver_with_retries(sender: &Sender, from: &Mailbox, mail: OutgoingMail) {
    let subject = mail.subject.clone();
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
    async fn send(&self, mail: OutgoingMail) -> anyhow::Result<()> {
        self.queue.try_send((mail, Span::current())).map_err(|err| {
            tracing::error!("the mail queue is full or closed; an e-mail was dropped");
            anyhow::anyhow!("cannot queue an e-mail: {err}")
        })
    }
}
