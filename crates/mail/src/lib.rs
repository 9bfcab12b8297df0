//! # Poison Pill's mail adapter
//!
//! [`MailSender`] implements the outbox's `MailDelivery` port: each call
//! renders one message (its wording is here, its plain-text and HTML layouts
//! in `templates/`) and hands it once to a [`Transport`]: lettre's file
//! transport (one `.eml` per message) or SMTP. It keeps nothing and retries
//! nothing: the outbox (`pp_domain::outbox` and its store) makes mail
//! durable, and its worker retries what failed, by the kind of failure this
//! adapter reports (`DeliveryError::Transient` or `Permanent`).
//!
//! A message's `Message-ID` is `<{outbox id}@{the sender's domain}>`, the
//! same on every attempt, so a receiving server can tell a repeat.
//!
//! Both parts are written so a person can read the message as it is, in an
//! `.eml` file or a mail server's spool: 7-bit (ASCII) or 8-bit UTF-8, never
//! quoted-printable, so a link is never encoded (`=3D`) or split across
//! lines. (8-bit needs a relay that offers 8BITMIME, as nearly all do;
//! lettre refuses to send it to one that does not, a transient failure.)
//! A link carries a secret: neither the link nor a body is ever logged or
//! put in an error; the file transport logs each file's path, at info.
//!
//! Failures: an SMTP reply lettre calls permanent (5xx) and a message that
//! cannot be written (a recipient lettre cannot address) are
//! `DeliveryError::Permanent`; everything else (no connection, a delivery
//! past its 30 s limit, a 4xx reply, a file that cannot be written) is
//! `Transient`.

use std::path::PathBuf;
use std::time::Duration;

use askama::Template;
use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pp_domain::auth::tokens::{LinkMail, OneTimePurpose};
use pp_domain::live::NotificationData;
use pp_domain::notifications::NoticeMail;
use pp_domain::outbox::{ClaimedMail, DeliveryError, MailDelivery, OutboxId, OutgoingMail};
use pp_domain::{Currency, Email, ItemId, Money};
use tracing::Instrument;

/// How long connecting to the SMTP server may take (lettre's timeout).
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one whole delivery may take before it fails (transiently):
/// well within the outbox's lease, so a claim never lapses mid-delivery.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest line a part may have, its CRLF aside (RFC 5321 and 5322).
const MAX_LINE_OCTETS: usize = 998;
/// The most of a mail server's reply kept in an error.
const MAX_ERROR_CHARS: usize = 300;

/// Where mail goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One `.eml` file per message in this directory.
    File(PathBuf),
    /// An SMTP relay, e.g. `smtp://127.0.0.1:2525` or `smtps://user:pass@host`.
    Smtp(String),
}

enum Channel {
    File {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// The outbox's `MailDelivery` port: renders a message and sends it once,
/// through a file or SMTP [`Transport`].
pub struct MailSender {
    channel: Channel,
    from: Mailbox,
    site: Site,
    send_timeout: Duration,
}

/// The web app's address, which links in notices lead to.
#[derive(Clone, Debug)]
struct Site(String);

impl Site {
    fn new(public_url: &str) -> Self {
        Site(public_url.trim_end_matches('/').to_owned())
    }

    fn item(&self, item: ItemId) -> String {
        format!("{}/items/{item}", self.0)
    }

    fn account(&self) -> String {
        format!("{}/account", self.0)
    }
}

impl std::fmt::Debug for MailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match &self.channel {
            Channel::File { dir, .. } => format!("file: {}", dir.display()),
            // The URL may hold the relay's password.
            Channel::Smtp(_) => "smtp".to_owned(),
        };
        f.debug_struct("MailSender")
            .field("transport", &transport)
            .field("from", &self.from.to_string())
            .field("site", &self.site.0)
            .finish()
    }
}

impl MailSender {
    /// A sender through `transport`, as `from` (a mailbox such as
    /// `Poison Pill <no-reply@auction.example>`, whose domain also ends
    /// every `Message-ID`), whose notices link to the web app at
    /// `public_url` (`PUBLIC_URL`). Call it inside the Tokio runtime: the SMTP
    /// transport's connection pool starts a task that closes idle
    /// connections. Connecting times out after 10 s, a whole delivery after 30 s.
    ///
    /// # Errors
    /// When `from` is not a mailbox, the directory cannot be created, or the
    /// SMTP URL is malformed.
    pub fn new(transport: &Transport, from: &str, public_url: &str) -> anyhow::Result<Self> {
        let from: Mailbox = from.parse()?;
        let channel = match transport {
            Transport::File(dir) => {
                std::fs::create_dir_all(dir)?;
                Channel::File {
                    transport: AsyncFileTransport::new(dir),
                    dir: dir.clone(),
                }
            }
            Transport::Smtp(url) => Channel::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
        };
        Ok(MailSender {
            channel,
            from,
            site: Site::new(public_url),
            send_timeout: SEND_TIMEOUT,
        })
    }

    /// The same, giving up on an SMTP delivery after `limit` rather than
    /// [`SEND_TIMEOUT`].
    #[must_use]
    pub fn with_send_timeout(self, limit: Duration) -> Self {
        Self {
            send_timeout: limit,
            ..self
        }
    }
}

#[async_trait]
impl MailDelivery for MailSender {
    async fn deliver(&self, claimed: &ClaimedMail) -> Result<(), DeliveryError> {
        // Its lines carry the id of the request that caused the message,
        // and its span joins that request's trace.
        let span = tracing::info_span!(
            "mail_delivery",
            request_id = claimed.request_id.as_deref(),
            outbox_id = %claimed.id,
            attempt = claimed.attempt,
        );
        if let Some(trace_parent) = &claimed.trace_parent {
            let carrier =
                std::collections::HashMap::from([("traceparent".to_owned(), trace_parent.clone())]);
            let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.extract(&carrier)
            });
            // Fails harmlessly where traces are not exported.
            let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
        }
        self.send(claimed.id, &claimed.mail).instrument(span).await
    }
}

impl MailSender {
    async fn send(&self, id: OutboxId, mail: &OutgoingMail) -> Result<(), DeliveryError> {
        let message = compose(&self.from, &self.site, id, mail)?;
        match &self.channel {
            Channel::File { transport, dir } => {
                let file = transport.send(message).await.map_err(|err| {
                    DeliveryError::Transient(bounded(&format!(
                        "cannot write the e-mail file: {err}"
                    )))
                })?;
                // The path only: the file holds the link, a secret.
                tracing::info!(
                    path = %dir.join(format!("{file}.eml")).display(),
                    outbox_id = %id,
                    kind = mail.kind(),
                    "wrote an e-mail"
                );
            }
            Channel::Smtp(transport) => {
                // A server that greets and then stalls would hold the
                // delivery (and the worker's claim) for ever.
                tokio::time::timeout(self.send_timeout, transport.send(message))
                    .await
                    .map_err(|_| {
                        DeliveryError::Transient(format!(
                            "SMTP: no answer within {} ms",
                            self.send_timeout.as_millis()
                        ))
                    })?
                    .map_err(smtp_failure)?;
            }
        }
        Ok(())
    }
}

/// An SMTP failure as the outbox sees it. Permanent: the message itself was
/// refused for good (550–554: no such mailbox, not allowed, too big, a bad
/// address) or can never be sent through this relay (a client-side refusal:
/// it lacks 8BITMIME or SMTPUTF8). Anything else is worth another try: no
/// connection, a timeout, a 4xx, and also other 5xx replies (a refused
/// login or sender is the relay's configuration, which an operator fixes,
/// not the message's fault).
fn smtp_failure(err: lettre::transport::smtp::Error) -> DeliveryError {
    // lettre's text is the kind, the reply code and the server's reply, or
    // the I/O error: never the message. The reply may echo the address.
    let text = bounded(&redacted(&format!("SMTP: {err}")));
    let refused_for_good = err.is_permanent()
        && err
            .status()
            .is_some_and(|code| (550..=554).contains(&u16::from(code)));
    if refused_for_good || err.is_client() {
        DeliveryError::Permanent(text)
    } else {
        DeliveryError::Transient(text)
    }
}

/// `text` with every word that holds an e-mail address replaced: a
/// server's reply often names the recipient, and errors are stored and
/// logged in plain text.
fn redacted(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "<address>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` on one line of at most [`MAX_ERROR_CHARS`] characters (a mail
/// server's reply may be long or span lines).
fn bounded(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match line.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

/// The `Message-ID` of outbox message `id` sent as `from`.
fn message_id(from: &Mailbox, id: OutboxId) -> String {
    format!("<{id}@{}>", from.email.domain())
}

/// `mail` as message `id` from `from`; a message that cannot be written
/// never will be, so that failure is permanent.
fn compose(
    from: &Mailbox,
    site: &Site,
    id: OutboxId,
    mail: &OutgoingMail,
) -> Result<Message, DeliveryError> {
    match mail {
        OutgoingMail::Link(link) => link_message(from, id, link),
        OutgoingMail::Notice(notice) => notice_message(from, site, id, notice),
    }
}

fn cannot_write(what: &str) -> DeliveryError {
    DeliveryError::Permanent(format!("cannot write the e-mail: {what}"))
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
    // To the nearest minute (a fresh link has a few milliseconds less
    // than its full lifetime); from two hours on, whole hours, rounded
    // down (a delayed mail never promises more than is left).
    let minutes = (valid_for.num_seconds() + 30) / 60;
    match minutes {
        m if m >= 120 => plural(m / 60, "hour"),
        60 => plural(1, "hour"),
        m => plural(m.max(1), "minute"),
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

/// A link mail: its subject, and its text as plain text and HTML.
fn link_message(from: &Mailbox, id: OutboxId, mail: &LinkMail) -> Result<Message, DeliveryError> {
    let words = wording(mail.purpose);
    let lifetime = lifetime(mail.expires_at - chrono::Utc::now());
    let text = LinkText {
        name: &mail.name,
        action: words.action,
        link: &mail.link,
        lifetime: &lifetime,
    }
    .render()
    .map_err(|_| cannot_write("the plain text does not render"))?;
    let html = LinkHtml {
        subject: words.subject,
        name: &mail.name,
        action: words.action,
        button: words.button,
        link: &mail.link,
        lifetime: &lifetime,
    }
    .render()
    .map_err(|_| cannot_write("the HTML does not render"))?;
    message(from, id, &mail.to, words.subject, &text, &html)
}

/// Message `id` from `from` to `to`, its text as plain text and HTML.
fn message(
    from: &Mailbox,
    id: OutboxId,
    to: &Email,
    subject: &str,
    text: &str,
    html: &str,
) -> Result<Message, DeliveryError> {
    let to: Mailbox = to
        .as_str()
        .parse()
        .map_err(|_| cannot_write("the recipient is not a mailbox"))?;
    Message::builder()
        .message_id(Some(message_id(from, id)))
        .from(from.clone())
        .to(to)
        .subject(subject)
        .multipart(
            MultiPart::alternative()
                .singlepart(readable_part(ContentType::TEXT_PLAIN, text))
                .singlepart(readable_part(ContentType::TEXT_HTML, html)),
        )
        .map_err(|err| cannot_write(&err.to_string()))
}

/// The plain-text part of a notice.
#[derive(Template)]
#[template(path = "notice.txt")]
struct NoticeText<'a> {
    name: &'a str,
    news: &'a str,
    item_link: &'a str,
    account_link: &'a str,
}

/// The HTML part of a notice (every value escaped).
#[derive(Template)]
#[template(path = "notice.html")]
struct NoticeHtml<'a> {
    subject: &'a str,
    name: &'a str,
    news: &'a str,
    item_link: &'a str,
    account_link: &'a str,
}

/// A notice's subject and its news, in one sentence or two.
fn notice_wording(notice: &NoticeMail) -> (String, String) {
    let title = &notice.item_title;
    let money = |money: Money| amount(money, &notice.currency);
    match notice.notice {
        NotificationData::Outbid { current_price, .. } => (
            format!("You were outbid on \u{201c}{title}\u{201d}"),
            format!(
                "Your bid on \u{201c}{title}\u{201d} is outbid: the price is now {}.",
                money(current_price)
            ),
        ),
        NotificationData::Exhausted {
            effective,
            current_price,
            ..
        } => (
            format!("Your poisoned bid on \u{201c}{title}\u{201d} ran out"),
            format!(
                "Your poisoned bid on \u{201c}{title}\u{201d} is outbid, its whole budget of {} spent: the price is now {}.",
                money(effective),
                money(current_price)
            ),
        ),
        NotificationData::Won { final_price, .. } => (
            format!("You won \u{201c}{title}\u{201d}"),
            format!(
                "The auction of \u{201c}{title}\u{201d} closed with your bid leading: you won it for {}.",
                money(final_price)
            ),
        ),
        // Never mailed (`NoticeMail::of`); said plainly should one be.
        NotificationData::AutoRaised { effective, .. } => (
            format!("Your poisoned bid on \u{201c}{title}\u{201d} was raised"),
            format!(
                "Your poisoned bid on \u{201c}{title}\u{201d} now stands at {}.",
                money(effective)
            ),
        ),
        NotificationData::Lost { final_price, .. } => (
            format!("The auction of \u{201c}{title}\u{201d} closed"),
            format!(
                "The auction of \u{201c}{title}\u{201d} closed with another bid leading, at {}.",
                money(final_price)
            ),
        ),
    }
}

/// `money` in `currency` as people read it: "1,234.50 USD", with the
/// currency's own number of decimals (none for JPY, three for KWD).
fn amount(money: Money, currency: &Currency) -> String {
    let decimals = currency.decimals();
    let scale = 10_i64.pow(decimals);
    let minor = money.minor_units();
    let (major, fraction) = (minor / scale, minor % scale);
    let digits = major.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let code = currency.as_str().to_ascii_uppercase();
    if decimals == 0 {
        format!("{grouped} {code}")
    } else {
        format!(
            "{grouped}.{fraction:0width$} {code}",
            width = decimals as usize
        )
    }
}

/// A notice: what happened to a bid, with a link to the item's page.
fn notice_message(
    from: &Mailbox,
    site: &Site,
    id: OutboxId,
    notice: &NoticeMail,
) -> Result<Message, DeliveryError> {
    let (subject, news) = notice_wording(notice);
    let item_link = site.item(notice.notice.item());
    let account_link = site.account();
    let text = NoticeText {
        name: &notice.name,
        news: &news,
        item_link: &item_link,
        account_link: &account_link,
    }
    .render()
    .map_err(|_| cannot_write("the plain text does not render"))?;
    let html = NoticeHtml {
        subject: &subject,
        name: &notice.name,
        news: &news,
        item_link: &item_link,
        account_link: &account_link,
    }
    .render()
    .map_err(|_| cannot_write("the HTML does not render"))?;
    message(from, id, &notice.to, &subject, &text, &html)
}

/// A part whose body is written as it reads: 7-bit when ASCII, else 8-bit
/// UTF-8, with CRLF line ends; never quoted-printable, which encodes `=` as
/// `=3D` and splits long lines with soft breaks (`SinglePart::plain` and
/// `html` let lettre choose, and it chooses quoted-printable or base64 for
/// any line of 76 characters or more, as a line with a link usually is).
/// lettre will not take 7 or 8 bit for such a line either (its
/// `Body::new_with_encoding` refuses, its part builder panics), though SMTP
/// allows 998 octets: so the body is checked here against SMTP's own limits
/// and handed over as it is. Only a body those limits forbid (a line over
/// 998 octets, a NUL, a stray CR: the templates write none) is base64.
fn readable_part(content_type: ContentType, text: &str) -> SinglePart {
    let body = match readable_body(text) {
        Some(body) => body,
        None => {
            tracing::warn!(
                content_type = ?content_type,
                "an e-mail part has a line over 998 octets, a NUL or a stray CR; sending it base64-encoded"
            );
            Body::new_with_encoding(crlf(text).into_bytes(), ContentTransferEncoding::Base64)
                .unwrap_or_else(Body::new)
        }
    };
    SinglePart::builder().header(content_type).body(body)
}

/// `text` as a 7- or 8-bit body, if it fits SMTP's limits.
fn readable_body(text: &str) -> Option<Body> {
    let text = crlf(text);
    let fits = !text.contains('\0')
        && text
            .split("\r\n")
            .all(|line| line.len() <= MAX_LINE_OCTETS && !line.contains(['\r', '\n']));
    let encoding = if text.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    fits.then(|| Body::dangerous_pre_encoded(text.into_bytes(), encoding))
}

/// `text` with every line ended by CRLF, as a message's body is.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

    use super::*;

    #[test]
    fn a_lifetime_reads_in_hours_or_minutes() {
        for (valid_for, words) in [
            (chrono::Duration::hours(24), "24 hours"),
            (chrono::Duration::hours(1), "1 hour"),
            (chrono::Duration::minutes(30), "30 minutes"),
            (chrono::Duration::minutes(90), "90 minutes"),
            (chrono::Duration::seconds(10), "1 minute"),
            (
                chrono::Duration::hours(24) - chrono::Duration::milliseconds(3),
                "24 hours",
            ),
            (chrono::Duration::minutes(60 * 23 + 50), "23 hours"),
            (
                chrono::Duration::minutes(59) + chrono::Duration::seconds(50),
                "1 hour",
            ),
        ] {
            assert_eq!(lifetime(valid_for), words);
        }
    }

    /// A link as long as the real ones: a public URL and a 43-character token.
    const LINK: &str =
        "https://auction.example/reset-password?token=2JroQv8x_k3Lw9mZpT4bYc7HnR1sVdE6fGaUiO0jKlX";

    fn link_mail(purpose: OneTimePurpose, name: &str) -> OutgoingMail {
        OutgoingMail::Link(LinkMail {
            to: Email::parse("ann@example.com").unwrap(),
            name: name.into(),
            purpose,
            link: LINK.into(),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(24),
        })
    }

    fn formatted(from: &str, id: OutboxId, mail: &OutgoingMail) -> String {
        let message = compose(
            &from.parse().unwrap(),
            &Site::new("https://auction.example/"),
            id,
            mail,
        )
        .unwrap();
        String::from_utf8(message.formatted()).unwrap()
    }

    #[test]
    fn the_message_id_derives_from_the_outbox_id_and_the_senders_domain() {
        let id = OutboxId::generate();
        let mail = link_mail(OneTimePurpose::VerifyEmail, "Ann");
        let from = "Poison Pill <no-reply@auction.example>";
        let first = formatted(from, id, &mail);
        let expected = format!("Message-ID: <{}@auction.example>\r\n", id.as_uuid());
        assert!(first.contains(&expected), "{first}");
        assert_eq!(first.matches("Message-ID:").count(), 1);
        // A retry builds the message afresh, with the same id.
        assert!(formatted(from, id, &mail).contains(&expected));
        let other = formatted(from, OutboxId::generate(), &mail);
        assert!(!other.contains(&expected));
    }

    #[test]
    fn a_link_stays_whole_and_unencoded_in_both_parts() {
        for purpose in [OneTimePurpose::VerifyEmail, OneTimePurpose::ResetPassword] {
            let raw = formatted(
                "no-reply@auction.example",
                OutboxId::generate(),
                &link_mail(purpose, "Ann"),
            );
            assert!(!raw.contains("=3D"), "{raw}");
            assert!(!raw.contains("=\r\n"), "no soft line breaks: {raw}");
            assert!(!raw.contains("quoted-printable"), "{raw}");
            assert!(!raw.contains("base64"), "{raw}");
            assert_eq!(
                raw.matches("Content-Transfer-Encoding: 7bit").count(),
                2,
                "{raw}"
            );
            // Once on a line of its own in the text, twice in the HTML.
            assert!(raw.contains(&format!("\r\n{LINK}\r\n")), "{raw}");
            assert!(raw.contains(&format!("<a href=\"{LINK}\"")), "{raw}");
            assert_eq!(raw.matches(LINK).count(), 3, "{raw}");
            assert!(raw.contains(&format!("Subject: {}", wording(purpose).subject)));
            assert!(raw.contains("for 24 hours."));
            assert!(raw.split("\r\n").all(|line| line.len() <= MAX_LINE_OCTETS));
        }
    }

    #[test]
    fn a_name_beyond_ascii_is_sent_as_8bit_utf8() {
        let raw = formatted(
            "Poison Pill – Enchères <no-reply@auction.example>",
            OutboxId::generate(),
            &link_mail(OneTimePurpose::VerifyEmail, "Zoë Ångström 🦀 <b>"),
        );
        assert_eq!(
            raw.matches("Content-Transfer-Encoding: 8bit").count(),
            2,
            "{raw}"
        );
        assert_eq!(raw.matches("charset=utf-8").count(), 2, "{raw}");
        assert!(raw.contains("Hello Zoë Ångström 🦀 <b>,\r\n"), "{raw}");
        assert!(raw.contains("Hello Zoë Ångström 🦀 &#60;b&#62;,"), "{raw}");
        assert!(raw.contains(&format!("\r\n{LINK}\r\n")), "{raw}");
        assert!(!raw.contains("=3D"), "{raw}");
        // The sender's name is a header: an RFC 2047 encoded word (base64
        // of "Poison Pill – Enchères" in UTF-8), the headers all ASCII.
        let from = raw.lines().find(|line| line.starts_with("From: ")).unwrap();
        assert_eq!(
            from,
            "From: =?utf-8?b?UG9pc29uIFBpbGwg4oCTIEVuY2jDqHJlcw==?= <no-reply@auction.example>"
        );
        let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(headers.is_ascii(), "{headers}");
    }

    #[test]
    fn a_body_past_smtps_line_limit_falls_back_to_base64() {
        let ok = "a".repeat(MAX_LINE_OCTETS);
        assert_eq!(
            readable_body(&format!("{ok}\nb")).map(|b| b.encoding()),
            Some(ContentTransferEncoding::SevenBit)
        );
        assert!(readable_body(&format!("{ok}a")).is_none());
        assert!(readable_body("a\rb").is_none());
        assert!(readable_body("a\0b").is_none());
        let part = readable_part(ContentType::TEXT_PLAIN, &format!("{ok}a"));
        let raw = String::from_utf8(part.formatted()).unwrap();
        assert!(raw.contains("Content-Transfer-Encoding: base64"), "{raw}");
    }

    #[test]
    fn errors_say_nothing_of_the_message_and_stay_short() {
        let long = format!("550 {}\r\nmore", "x".repeat(1000));
        let text = bounded(&long);
        assert_eq!(text.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(!text.contains(['\r', '\n']));
        assert_eq!(bounded("short"), "short");
    }

    fn notice(title: &str, currency: &str, news: NotificationData) -> OutgoingMail {
        OutgoingMail::Notice(NoticeMail {
            to: Email::parse("bea@example.com").unwrap(),
            name: "Bea".into(),
            item_title: title.into(),
            currency: Currency::parse(currency).unwrap(),
            notice: news,
        })
    }

    fn money(minor: i64) -> pp_domain::Money {
        pp_domain::Money::new(minor).unwrap()
    }

    #[test]
    fn amounts_read_in_major_units_with_the_currencys_decimals() {
        let of = |minor, code| amount(money(minor), &Currency::parse(code).unwrap());
        assert_eq!(of(123_450, "usd"), "1,234.50 USD");
        assert_eq!(of(5, "eur"), "0.05 EUR");
        assert_eq!(of(1_000_000_000_000, "usd"), "10,000,000,000.00 USD");
        assert_eq!(of(1_500, "jpy"), "1,500 JPY");
        assert_eq!(of(1_234, "kwd"), "1.234 KWD");
        assert_eq!(
            of(100, "zzz"),
            "1.00 ZZZ",
            "two decimals for an unlisted code"
        );
        assert_eq!(of(999, "usd"), "9.99 USD");
        assert_eq!(of(100_000, "usd"), "1,000.00 USD");
    }

    #[test]
    fn each_notice_says_what_happened_with_links_to_the_item_and_the_account() {
        let item = ItemId::generate();
        let item_link = format!("https://auction.example/items/{item}");
        for (news, subject, says) in [
            (
                NotificationData::Outbid {
                    item,
                    current_price: money(15_000),
                    minimum_next_bid: 15_500,
                },
                "Subject: You were outbid on",
                "is outbid: the price is now 150.00 USD.",
            ),
            (
                NotificationData::Exhausted {
                    item,
                    effective: money(14_000),
                    current_price: money(14_500),
                    minimum_next_bid: 15_000,
                },
                "Subject: Your poisoned bid on",
                "is outbid, its whole budget of 140.00 USD spent: the price is now 145.00 USD.",
            ),
            (
                NotificationData::Won {
                    item,
                    final_price: money(12_345_678),
                },
                "Subject: You won",
                "you won it for 123,456.78 USD.",
            ),
            (
                NotificationData::AutoRaised {
                    item,
                    effective: money(200),
                    remaining_budget: 10,
                },
                "Subject: Your poisoned bid on",
                "now stands at 2.00 USD.",
            ),
            (
                NotificationData::Lost {
                    item,
                    final_price: money(300),
                },
                "Subject: The auction of",
                "closed with another bid leading, at 3.00 USD.",
            ),
        ] {
            let raw = formatted(
                "no-reply@auction.example",
                OutboxId::generate(),
                &notice("Vase", "usd", news),
            );
            assert!(raw.contains(subject), "{raw}");
            assert!(raw.contains(says), "{says} in {raw}");
            assert!(raw.contains("Hello Bea,"), "{raw}");
            assert!(raw.contains("To: bea@example.com"), "{raw}");
            assert!(raw.contains(&format!("\r\n{item_link}\r\n")), "{raw}");
            assert!(raw.contains(&format!("<a href=\"{item_link}\"")), "{raw}");
            assert!(
                raw.contains("\r\nhttps://auction.example/account\r\n"),
                "{raw}"
            );
            assert!(!raw.contains("=3D") && !raw.contains("base64"), "{raw}");
        }
    }

    #[test]
    fn a_notice_title_is_escaped_in_html_and_whole_in_the_subject() {
        let raw = formatted(
            "no-reply@auction.example",
            OutboxId::generate(),
            &notice(
                "Zoë's <b>vase</b>",
                "eur",
                NotificationData::Won {
                    item: ItemId::generate(),
                    final_price: money(1_000),
                },
            ),
        );
        assert!(
            raw.contains("\u{201c}Zoë's <b>vase</b>\u{201d} closed"),
            "{raw}"
        );
        assert!(raw.contains("&#60;b&#62;vase&#60;/b&#62;"), "{raw}");
        assert!(
            !raw.contains(
                "<b>vase</b>\u{201d} closed with your bid leading: you won it for 10.00 EUR.</p>"
            ),
            "{raw}"
        );
        let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(headers.is_ascii(), "an encoded subject: {headers}");
        assert_eq!(
            raw.matches("Content-Transfer-Encoding: 8bit").count(),
            2,
            "{raw}"
        );
    }
}
