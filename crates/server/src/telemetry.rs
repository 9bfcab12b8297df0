//! Log output and trace export.
//!
//! Logs: JSON lines for collectors or pretty for a terminal; the level
//! comes from `RUST_LOG` (default `info`). Traces: with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, every span (one per request, with
//! children for database transactions, Redis calls, password hashing and
//! mail delivery) is exported over OTLP/HTTP in batches, and a W3C
//! `traceparent` on a request makes its span part of the caller's trace.
//!
//! Export never holds up a request: finished spans wait in a bounded queue
//! that a thread of the SDK drains; when the queue is full, or the
//! collector does not take a batch, the spans are dropped and counted in
//! `otel_spans_dropped_total{reason}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, global};
use opentelemetry_http::{Bytes, HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, Span, SpanData, SpanExporter,
    SpanProcessor,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, TraceExport};

/// Finished spans that may wait for export; more are dropped.
const QUEUE_SPANS: usize = 2048;
/// Spans per export request.
const BATCH_SPANS: usize = 512;
/// How often the queue is exported.
const EXPORT_EVERY: Duration = Duration::from_secs(5);
/// How long one export request may take, its answer's body included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the spans still queued at exit may take to leave.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(4);

/// The installed logging and tracing; [`Telemetry::shutdown`] sends what is
/// still queued.
#[derive(Debug, Default)]
#[must_use = "shut it down at exit, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued (waiting at most a few seconds) and
    /// stops the export thread. Blocks: call it outside the runtime, while
    /// the runtime still exists (the export requests run on it).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown_with_timeout(FLUSH_AT_EXIT)
        {
            tracing::warn!(error = %error, "the last spans could not be exported");
        }
    }
}

/// Installs the global subscriber writing to stdout (the server), and the
/// trace export when `export` says where. Later calls (e.g. in tests) only
/// return a `Telemetry` that exports nothing.
///
/// # Errors
/// When the exporter cannot be built.
pub fn init(
    format: LogFormat,
    export: Option<&TraceExport>,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<Telemetry> {
    let provider = export
        .map(|export| tracer_provider(export, runtime.clone()))
        .transpose()?;
    let installed = install(format, false, provider.as_ref());
    if let (true, Some(export)) = (installed, export) {
        global::set_text_map_propagator(TraceContextPropagator::new());
        tracing::info!(
            url = %export.traces_url,
            service = %export.service_name,
            "exporting traces over OTLP/HTTP"
        );
    }
    Ok(Telemetry {
        provider: provider.filter(|_| installed),
    })
}

/// Installs the global subscriber writing to stderr, so a command's own
/// output on stdout stays clean.
pub fn init_for_command() {
    install(LogFormat::Pretty, true, None);
}

/// Whether this call installed the global subscriber.
fn install(format: LogFormat, to_stderr: bool, provider: Option<&SdkTracerProvider>) -> bool {
    // Each output its own filter: `RUST_LOG=warn` quiets the log, not the
    // traces.
    let default_filter = || EnvFilter::new("info,sqlx=warn,sea_orm=warn");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter());
    let writer =
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
            if to_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            }
        });
    let traces = provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("poison-pill"))
            // What the spans' own fields say is enough; these add a dozen
            // attributes to every span.
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_filter(default_filter())
    });
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    let registry = tracing_subscriber::registry().with(traces);
    match format {
        LogFormat::Json => registry
            .with(
                lines
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_filter(filter),
            )
            .try_init()
            .is_ok(),
        LogFormat::Pretty => registry.with(lines.with_filter(filter)).try_init().is_ok(),
    }
}

/// The OTLP/HTTP exporter behind a bounded batch queue, both counting
/// what they drop.
fn tracer_provider(
    export: &TraceExport,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(export.traces_url.clone())
        .with_http_client(OnRuntime {
            client: reqwest::Client::builder()
                .timeout(EXPORT_TIMEOUT)
                .connect_timeout(EXPORT_TIMEOUT)
                .build()?,
            runtime,
        })
        .build()?;
    let queued = Arc::new(AtomicUsize::new(0));
    let batches = BatchSpanProcessor::builder(CountedExport {
        inner: exporter,
        queued: Arc::clone(&queued),
        failing: AtomicBool::new(false),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE_SPANS)
            .with_max_export_batch_size(BATCH_SPANS)
            .with_scheduled_delay(EXPORT_EVERY)
            .build(),
    )
    .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(BoundedQueue {
            inner: batches,
            queued,
        })
        .with_resource(
            Resource::builder()
                .with_service_name(export.service_name.clone())
                .build(),
        )
        .build())
}

/// The exporter's HTTP client, its requests run on the server's runtime:
/// the SDK exports from a thread of its own, where reqwest finds no reactor.
#[derive(Debug, Clone)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}

/// Counts the spans of every batch the collector did not take, and tells
/// [`BoundedQueue`] which spans left the queue. The SDK's own count of
/// dropped spans is private: it is only logged at shutdown.
#[derive(Debug)]
struct CountedExport<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
    /// Whether the last batch failed: a failure is logged when it begins,
    /// not every few seconds while the collector is down.
    failing: AtomicBool,
}

impl<E: SpanExporter> SpanExporter for CountedExport<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = batch.len();
        self.queued.fetch_sub(spans, Ordering::AcqRel);
        let exported = self.inner.export(batch);
        async move {
            let outcome = exported.await;
            match &outcome {
                Ok(()) => self.failing.store(false, Ordering::Relaxed),
                Err(error) => {
                    metrics::counter!("otel_spans_dropped_total", "reason" => "export_failed")
                        .increment(spans as u64);
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %error, spans, "the trace collector did not take a batch; spans are dropped (counted in otel_spans_dropped_total) until it does");
                    }
                }
            }
            outcome
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Admits a finished span to the batch queue only while it has room,
/// counting the rest: the same bound as the queue's own, whose drops the
/// SDK does not tell.
#[derive(Debug)]
struct BoundedQueue<P> {
    inner: P,
    queued: Arc<AtomicUsize>,
}

impl<P: SpanProcessor> SpanProcessor for BoundedQueue<P> {
    fn on_start(&self, span: &mut Span, context: &Context) {
        self.inner.on_start(span, context);
    }

    fn on_end(&self, span: SpanData) {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= QUEUE_SPANS {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("otel_spans_dropped_total", "reason" => "queue_full").increment(1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// How long reports still queued may take to leave at exit (and a panic's
/// report before the panicking thread goes on).
const REPORTS_FLUSH: Duration = Duration::from_secs(2);

/// Sends error reports to `dsn` from now until the returned guard is
/// dropped (which sends what is still queued): the cause of every 500
/// (`pp_http`'s `ApiError::internal`) and every panic, tagged with the
/// request's id where there is one. Call it first thing in `main`, before
/// any thread that could report starts.
///
/// No personal data leaves: no request (URL, headers, cookies, body), no
/// user or address, no breadcrumbs; in the messages, e-mail addresses and
/// token-like strings are [`redact`]ed.
pub fn report_errors(dsn: sentry::types::Dsn) -> sentry::ClientInitGuard {
    // Non-exhaustive: set field by field.
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn);
    options.release = Some(concat!("poison-pill@", env!("CARGO_PKG_VERSION")).into());
    options.send_default_pii = false;
    options.shutdown_timeout = REPORTS_FLUSH;
    options.before_send = Some(Arc::new(|mut event| {
        scrub(&mut event);
        Some(event)
    }));
    // The defaults but the panic integration, whose hook waits for the
    // report to be sent (up to the flush timeout) on the panicking thread:
    // an actix worker, all of whose connections would wait with it.
    options.default_integrations = false;
    options.integrations = vec![
        Arc::new(sentry::integrations::backtrace::AttachStacktraceIntegration),
        Arc::new(sentry::integrations::contexts::ContextIntegration::default()),
        Arc::new(sentry::integrations::backtrace::ProcessStacktraceIntegration),
    ];
    let guard = sentry::init(options);
    report_panics();
    guard
}

/// Reports every panic (tagged by the hub of the request it happened in),
/// queued for the transport's own thread, then runs the hook installed
/// before (which prints it).
fn report_panics() {
    static HOOKED: std::sync::Once = std::sync::Once::new();
    HOOKED.call_once(|| {
        let panics = sentry::integrations::panic::PanicIntegration::new();
        let next = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            sentry::capture_event(panics.event_from_panic_info(info));
            next(info);
        }));
    });
}

/// Takes out of a report what could identify a person.
fn scrub(event: &mut sentry::protocol::Event<'static>) {
    event.request = None;
    event.user = None;
    event.breadcrumbs.values.clear();
    event.extra.clear();
    if let Some(message) = &mut event.message {
        *message = redact(message);
    }
    if let Some(logentry) = &mut event.logentry {
        logentry.message = redact(&logentry.message);
        logentry.params.clear();
    }
    for exception in &mut event.exception.values {
        if let Some(value) = &mut exception.value {
            *value = redact(value);
        }
    }
}

/// `text` with every e-mail address and every token-like string (a JWT,
/// or a run of 40 or more URL-safe base64 characters: refresh tokens,
/// tickets, secrets) replaced by `[redacted]`. Ids (UUIDs) stay: they name
/// rows, not people.
#[must_use]
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let secret = word.contains('@') || word.starts_with("eyJ") || word.len() >= 40;
        out.push_str(if secret { "[redacted]" } else { word.as_str() });
        word.clear();
    };
    for c in text.chars() {
        // An address or a token: letters, digits and what either is made of.
        if c.is_alphanumeric() || matches!(c, '@' | '.' | '_' | '-' | '+' | '%' | '=' | '/') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Adds the current span's W3C `traceparent` to the headers of an outgoing
/// HTTP request, so the service called joins the trace. Without trace
/// export it adds nothing.
pub fn inject_trace_context(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
    });
}

#[cfg(test)]
mod tests {
    use opentelemetry::propagation::TextMapPropagator as _;

    use super::*;

    #[test]
    fn addresses_and_tokens_are_redacted_and_ids_kept() {
        assert_eq!(
            redact("duplicate key (email)=(ann.lee+x@example.com) already exists"),
            "duplicate key (email)=([redacted]) already exists"
        );
        assert_eq!(
            redact("bearer eyJhbGciOiJIUzI1NiJ9.e30.abc rejected"),
            "bearer [redacted] rejected"
        );
        let refresh = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8";
        assert_eq!(redact(&format!("token {refresh}")), "token [redacted]");
        let item = "item 0193a8f2-7c1e-7a55-9c61-3f1b2a9d4e10 cannot be read: timeout";
        assert_eq!(redact(item), item);
        assert_eq!(redact(""), "");
    }

    #[test]
    fn a_report_keeps_no_request_user_or_breadcrumb() {
        let mut event = sentry::protocol::Event {
            request: Some(sentry::protocol::Request::default()),
            user: Some(sentry::protocol::User::default()),
            message: Some("login of bob@example.com failed".into()),
            ..sentry::protocol::Event::default()
        };
        event
            .breadcrumbs
            .values
            .push(sentry::protocol::Breadcrumb::default());
        event.exception.values.push(sentry::protocol::Exception {
            ty: "Error".into(),
            value: Some("no account bob@example.com".into()),
            ..sentry::protocol::Exception::default()
        });
        scrub(&mut event);
        assert!(event.request.is_none() && event.user.is_none());
        assert!(event.breadcrumbs.values.is_empty());
        assert_eq!(event.message.as_deref(), Some("login of [redacted] failed"));
        assert_eq!(
            event.exception.values[0].value.as_deref(),
            Some("no account [redacted]")
        );
    }

    #[test]
    fn an_outgoing_request_carries_the_trace_of_the_span_it_is_made_in() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        global::set_text_map_propagator(TraceContextPropagator::new());
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        tracing::subscriber::with_default(subscriber, || {
            let mut carrier = std::collections::HashMap::new();
            carrier.insert("traceparent".to_owned(), incoming.to_owned());
            let parent = TraceContextPropagator::new().extract(&carrier);
            let span = tracing::info_span!("handling");
            span.set_parent(parent).unwrap();
            let _entered = span.enter();
            let mut headers = http::HeaderMap::new();
            inject_trace_context(&mut headers);
            let sent = headers["traceparent"].to_str().unwrap();
            let parts: Vec<&str> = sent.split('-').collect();
            assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "{sent}");
            assert_ne!(
                parts[2], "00f067aa0ba902b7",
                "its own span, not the caller's"
            );
            assert_eq!(parts[3], "01", "sampled");
        });
    }
}
