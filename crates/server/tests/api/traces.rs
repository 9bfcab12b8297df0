//! Trace export: the binary sends its spans over OTLP/HTTP to a collector,
//! here a receiver that decodes them with the protocol's own types.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use pp_testkit::{Backend, TestDatabase};
use prost::Message;
use serde_json::json;

use crate::binary::{Served, create_admin, served_env};
use crate::shutdown::{exit_within, sigterm};
use crate::support::PASSWORD;

/// One span as the collector received it.
#[derive(Clone, Debug)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

fn text_of(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
            (kv.key.clone(), text_of(value))
        })
        .collect()
}

/// An OTLP/HTTP collector on a free port, keeping every span it is sent.
async fn collector() -> (String, Arc<Mutex<Vec<ReceivedSpan>>>) {
    let received = Arc::new(Mutex::new(Vec::<ReceivedSpan>::new()));
    let kept = Arc::clone(&received);
    let server = HttpServer::new(move || {
        let kept = Arc::clone(&kept);
        App::new()
            .app_data(web::PayloadConfig::new(16 << 20))
            .route(
                "/v1/traces",
                web::post().to(move |request: actix_web::HttpRequest, body: web::Bytes| {
                    let kept = Arc::clone(&kept);
                    async move {
                        let protobuf = request
                            .headers()
                            .get("content-type")
                            .is_some_and(|v| v == "application/x-protobuf");
                        if !protobuf {
                            return HttpResponse::UnsupportedMediaType().finish();
                        }
                        let Ok(export) = ExportTraceServiceRequest::decode(body) else {
                            return HttpResponse::BadRequest().finish();
                        };
                        let mut kept = kept.lock().unwrap();
                        for resource in export.resource_spans {
                            let service = resource
                                .resource
                                .as_ref()
                                .map(|r| attributes(&r.attributes))
                                .and_then(|a| a.get("service.name").cloned())
                                .unwrap_or_default();
                            for scope in resource.scope_spans {
                                for span in scope.spans {
                                    kept.push(ReceivedSpan {
                                        service: service.clone(),
                                        name: span.name.clone(),
                                        trace_id: hex(&span.trace_id),
                                        span_id: hex(&span.span_id),
                                        parent_span_id: hex(&span.parent_span_id),
                                        attributes: attributes(&span.attributes),
                                    });
                                }
                            }
                        }
                        HttpResponse::Ok()
                            .content_type("application/x-protobuf")
                            .body(ExportTraceServiceResponse::default().encode_to_vec())
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}"), received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_request_with_a_traceparent_is_exported_as_part_of_that_trace_with_its_children() {
    let (collector_url, received) = collector().await;
    let database = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let redis_prefix = format!("pp-test:{}:", uuid::Uuid::new_v4().simple());
    let env = served_env(
        &database,
        &[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("REDIS_KEY_PREFIX", redis_prefix.as_str()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url.as_str()),
            ("OTEL_SERVICE_NAME", "auctions-under-test"),
            ("SHUTDOWN_TIMEOUT_SECS", "5"),
        ],
    );
    create_admin(dir.path(), &env, "root@example.com");
    let mut served = Served::start(dir.path(), &env).await;
    let log = served.log_reader();
    let url = served.url.clone();
    let server = &mut served.child;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{url}/api/v1/auth/login"))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({"email": "root@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let request_id = login.headers()["x-request-id"].to_str().unwrap().to_owned();
    let token = login.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second call of the same trace, which writes in a transaction.
    let listing_span = "00f067aa0ba902b8";
    let close_at = chrono::Utc::now() + chrono::Duration::hours(1);
    let listed = client
        .post(format!("{url}/api/v1/items"))
        .header("traceparent", format!("00-{trace_id}-{listing_span}-01"))
        .bearer_auth(&token)
        .json(&json!({"title": "A lamp", "base_price": 100, "min_increment": 5, "close_at": close_at.to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 201);
    // A registration: its welcome mail is delivered by the worker, in a
    // span of its own that names the request.
    let register = client
        .post(format!("{url}/api/v1/auth/register"))
        .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let register_id = register.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mail_dir = dir.path().join("mail");
    for _ in 0..100 {
        if std::fs::read_dir(&mail_dir).is_ok_and(|mut d| d.next().is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Stopping sends what is still queued.
    sigterm(server);
    let exit = exit_within(server, Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("still running:\n{}", log()));
    assert!(exit.success(), "{}", log());

    let spans = received.lock().unwrap().clone();
    let in_trace: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let root = in_trace
        .iter()
        .find(|s| s.parent_span_id == caller_span)
        .unwrap_or_else(|| panic!("no span of the caller's trace: {spans:#?}\n{}", log()));
    assert_eq!(root.name, "POST /api/v1/auth/login");
    assert_eq!(root.service, "auctions-under-test");
    assert_eq!(root.attributes["http.route"], "/api/v1/auth/login");
    assert_eq!(root.attributes["http.status_code"], "200");
    assert_eq!(root.attributes["request_id"], request_id);
    let listing = in_trace
        .iter()
        .find(|s| s.parent_span_id == listing_span)
        .expect("the listing's span");
    assert_eq!(listing.name, "POST /api/v1/items");
    assert_eq!(listing.attributes["http.status_code"], "201");
    // Their children, each inside its request's span.
    let descends_from = |span: &ReceivedSpan, request: &ReceivedSpan| {
        let mut parent = span.parent_span_id.clone();
        for _ in 0..10 {
            if parent == request.span_id {
                return true;
            }
            match in_trace.iter().find(|s| s.span_id == parent) {
                Some(up) => parent = up.parent_span_id.clone(),
                None => return false,
            }
        }
        false
    };
    for (child, request) in [
        ("password.verify", root),
        ("redis.command", root),
        ("db.transaction", listing),
    ] {
        assert!(
            in_trace
                .iter()
                .any(|s| s.name == child && descends_from(s, request)),
            "no {child} span under {}: {in_trace:#?}",
            request.name
        );
    }
    // A request without a traceparent starts a trace of its own.
    let registered = spans
        .iter()
        .find(|s| {
            s.attributes.get("request_id") == Some(&register_id) && s.name.starts_with("POST")
        })
        .expect("the registration's span");
    assert_ne!(registered.trace_id, trace_id);
    assert!(registered.parent_span_id.is_empty());
    // Its mail, delivered later by the worker, is part of its trace.
    let delivery = spans
        .iter()
        .find(|s| s.name == "mail_delivery" && s.attributes.get("request_id") == Some(&register_id))
        .unwrap_or_else(|| panic!("no mail delivery span naming the registration: {spans:#?}"));
    assert_eq!(delivery.trace_id, registered.trace_id);
    assert_eq!(delivery.parent_span_id, registered.span_id);
}

#[tokio::test]
async fn a_collector_that_is_down_costs_dropped_spans_not_requests() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let env = served_env(
        &database,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"),
            ("RATE_LIMIT_GLOBAL", "100000/1m"),
            ("SHUTDOWN_TIMEOUT_SECS", "5"),
        ],
    );
    let mut served = Served::start(dir.path(), &env).await;
    let log = served.log_reader();
    let url = served.url.clone();
    let server = &mut served.child;
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let items = client
            .get(format!("{url}/api/v1/items"))
            .send()
            .await
            .unwrap();
        assert_eq!(items.status(), 200);
    }
    // The export every 5 s fails, and says so once; the metric counts the spans.
    let mut dropped = 0.0;
    for _ in 0..80 {
        let metrics = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        dropped = metrics
            .lines()
            .find(|l| l.starts_with("otel_spans_dropped_total{reason=\"export_failed\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if dropped >= 20.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dropped >= 20.0, "dropped {dropped}\n{}", log());
    sigterm(server);
    let exit = exit_within(server, Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("still running:\n{}", log()));
    assert!(exit.success(), "{}", log());
    let warnings = log()
        .lines()
        .filter(|l| l.contains("the trace collector did not take a batch"))
        .count();
    assert!(warnings >= 1, "{}", log());
    assert!(
        warnings <= 2,
        "logged once per outage, not per batch: {}",
        log()
    );
}
