//! The OpenAPI 3.1 document of every endpoint, served at `/api/openapi.json`
//! with an interactive viewer at `/docs` (Swagger UI, vendored: it works offline).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use pp_domain::auth::PasswordPolicy;
use pp_domain::item::{Description, Title};
use pp_domain::{DisplayName, Email, Money};

use utoipa_actix_web::OpenApiFactory;

use crate::{problem, routes};

/// The document's frame: its description, tags and the schemas no handler
/// names. Its paths come from the route table ([`routed`]).
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Poison Pill",
        description = "A sealed-bid silent auction with poisoned (proxy) bids. Every error is RFC 7807 \
                       problem+json with a stable `error_code`. `/api/...` without a version serves the \
                       latest and adds `X-API-Version-Defaulted: true`.",
        version = "1"
    ),
    components(schemas(
        problem::ProblemBody,
        problem::ProblemField,
        routes::live::ClosedBody,
        routes::live::ExtendedBody,
        routes::live::NotificationBody,
        routes::items::SortName,
    )),
    tags(
        (name = "auth", description = "Registration, login, sessions and passwords"),
        (name = "users", description = "Your account; accounts for admins"),
        (name = "audit", description = "The audit trail, for admins"),
        (name = "items", description = "Items up for auction"),
        (name = "bids", description = "Sealed bids, poisoned or plain; revealed after close"),
        (name = "live", description = "Live prices (Server-Sent Events, also at `/events/{item_id}`) and personal notifications (WebSocket)"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// The document served at `/api/openapi.json`, for a server whose new
/// passwords are at least `password_min_chars` long (`PASSWORD_MIN_LENGTH`).
#[must_use]
pub fn document(password_min_chars: usize) -> utoipa::openapi::OpenApi {
    let mut document = without_field_rules();
    let missed = FieldRules { password_min_chars }.apply(&mut document);
    if !missed.is_empty() {
        // A renamed request type or field; the unit tests catch it first.
        tracing::error!(
            ?missed,
            "field rules without their field in the OpenAPI document"
        );
    }
    document
}

/// The frame, the routed operations and what completes them.
fn without_field_rules() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    let (paths, schemas) = routed();
    document.paths.merge(paths);
    document
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    // After the paths: these complete every operation.
    let modifiers: [&dyn Modify; 4] = [&BearerAuth, &DocumentPaths, &EveryAnswer, &EventStreams];
    for modifier in modifiers {
        modifier.modify(&mut document);
    }
    document
}

/// Every routed operation and the schemas they name, read from the route
/// tables: the scopes are configured here only to collect their entries,
/// never served.
pub(crate) fn routed() -> (
    utoipa::openapi::path::Paths,
    Vec<(
        String,
        utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    )>,
) {
    let mut paths = utoipa::openapi::path::Paths::new();
    let mut schemas = Vec::new();
    for (base, table) in routes::TABLES {
        let scope = utoipa_actix_web::scope(base).configure(table);
        paths.merge(scope.paths());
        scope.schemas(&mut schemas);
    }
    (paths, schemas)
}

/// What `str::trim` removes (Unicode's White_Space), as a regex class body.
/// Spelled out: `\s` means three different sets in Rust, Python (whose
/// `re` schemathesis uses) and ECMAScript (Swagger UI's).
const WHITE_SPACE: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Characters no one-line text may hold (what
/// `pp_domain::validation::is_forbidden_in_text` refuses), as a regex class
/// body: control characters, line and paragraph separators, bidirectional
/// embeddings, overrides and isolates.
const FORBIDDEN_IN_LINE: &str = r"\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069";

/// The same for text of several lines: line breaks and tabs are allowed.
const FORBIDDEN_IN_TEXT: &str =
    r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069";

/// Text as the domain takes it: any white space around it (trimmed away),
/// then — `required`, or else perhaps — up to `max` characters that start
/// and end with a visible one and hold none of `forbidden`.
fn text_pattern(forbidden: &str, max: usize, required: bool) -> String {
    let (ws, f) = (WHITE_SPACE, forbidden);
    let core = if max <= 1 {
        format!("[^{ws}{f}]")
    } else {
        format!("[^{ws}{f}](?:[^{f}]{{0,{}}}[^{ws}{f}])?", max - 2)
    };
    let optional = if required { "" } else { "?" };
    format!("^[{ws}]*(?:{core}){optional}[{ws}]*$")
}

/// What the domain checks of each request field, in the document, from the
/// domain's own limits: a request the schema allows is one the server
/// takes, but for rules no schema can tell (the clock, the database, a
/// secret, a common password).
#[derive(Debug)]
struct FieldRules {
    password_min_chars: usize,
}

/// A rule for one property of one schema.
enum Rule {
    /// One line, at least one visible character, at most `max` (after trimming).
    Line { max: usize },
    /// Lines, at most `max` characters.
    Text { max: usize },
    /// Minor units of money.
    Money,
    /// A new password.
    Password,
    /// A three-letter currency code.
    Currency,
    /// An address to register.
    Email,
}

/// Every rule, by schema and property.
const RULES: [(&str, &str, Rule); 15] = [
    (
        "CreateItemRequest",
        "title",
        Rule::Line {
            max: Title::MAX_CHARS,
        },
    ),
    (
        "CreateItemRequest",
        "description",
        Rule::Text {
            max: Description::MAX_CHARS,
        },
    ),
    (
        "EditItemRequest",
        "title",
        Rule::Line {
            max: Title::MAX_CHARS,
        },
    ),
    (
        "EditItemRequest",
        "description",
        Rule::Text {
            max: Description::MAX_CHARS,
        },
    ),
    ("CreateItemRequest", "base_price", Rule::Money),
    ("CreateItemRequest", "min_increment", Rule::Money),
    ("CreateItemRequest", "currency", Rule::Currency),
    ("BidRequest", "amount", Rule::Money),
    ("PoisonBody", "budget", Rule::Money),
    ("PoisonBody", "step", Rule::Money),
    ("RegisterRequest", "email", Rule::Email),
    ("RegisterRequest", "password", Rule::Password),
    (
        "RegisterRequest",
        "display_name",
        Rule::Line {
            max: DisplayName::MAX_CHARS,
        },
    ),
    (
        "UpdateMeRequest",
        "display_name",
        Rule::Line {
            max: DisplayName::MAX_CHARS,
        },
    ),
    ("ChangePasswordRequest", "new_password", Rule::Password),
];

/// Rules on a second schema's property: `ResetRequest`'s password.
const RESET_PASSWORD: (&str, &str) = ("ResetRequest", "new_password");

impl FieldRules {
    /// Puts every rule on its field; returns the rules whose schema or
    /// property the document does not have.
    fn apply(&self, document: &mut utoipa::openapi::OpenApi) -> Vec<(&'static str, &'static str)> {
        use utoipa::openapi::schema::{Schema, SchemaFormat};
        use utoipa::openapi::{KnownFormat, RefOr};
        let mut missed = Vec::new();
        let Some(components) = document.components.as_mut() else {
            return RULES
                .iter()
                .map(|(schema, property, _)| (*schema, *property))
                .collect();
        };
        let rules = RULES
            .iter()
            .map(|(schema, property, rule)| (*schema, *property, rule))
            .chain(std::iter::once((
                RESET_PASSWORD.0,
                RESET_PASSWORD.1,
                &Rule::Password,
            )));
        for (schema, property, rule) in rules {
            let field = match components.schemas.get_mut(schema) {
                Some(RefOr::T(Schema::Object(object))) => match object.properties.get_mut(property)
                {
                    Some(RefOr::T(Schema::Object(field))) => field,
                    _ => {
                        missed.push((schema, property));
                        continue;
                    }
                },
                _ => {
                    missed.push((schema, property));
                    continue;
                }
            };
            match rule {
                // The length is the trimmed text's, so the pattern bounds
                // it: a `maxLength` would count the white space around it.
                Rule::Line { max } => {
                    field.min_length = Some(1);
                    field.pattern = Some(text_pattern(FORBIDDEN_IN_LINE, *max, true));
                }
                Rule::Text { max } => {
                    field.pattern = Some(text_pattern(FORBIDDEN_IN_TEXT, *max, false));
                }
                Rule::Money => {
                    field.minimum = Some(Money::MIN.minor_units().into());
                    field.maximum = Some(Money::MAX.minor_units().into());
                }
                Rule::Password => {
                    field.min_length = Some(self.password_min_chars);
                    field.max_length = Some(PasswordPolicy::MAX_CHARS);
                }
                Rule::Currency => {
                    field.pattern =
                        Some(format!("^[{WHITE_SPACE}]*[A-Za-z]{{3}}[{WHITE_SPACE}]*$"));
                }
                Rule::Email => {
                    field.format = Some(SchemaFormat::KnownFormat(KnownFormat::Email));
                    field.max_length = Some(Email::MAX_CHARS);
                }
            }
        }
        missed
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document's own two paths. Swagger UI's service answers them, so no
/// handler of ours carries a `#[utoipa::path]` for them.
struct DocumentPaths;

impl Modify for DocumentPaths {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder};
        use utoipa::openapi::{ContentBuilder, ResponseBuilder};
        let get = |summary: &str, status: &str, response: ResponseBuilder| {
            OperationBuilder::new()
                .tag("operations")
                .summary(Some(summary))
                .response(status, response.build())
                .build()
        };
        openapi.paths.add_path_operation(
            "/api/openapi.json",
            vec![HttpMethod::Get],
            get(
                "This document",
                "200",
                ResponseBuilder::new()
                    .description("OpenAPI 3.1")
                    .content("application/json", ContentBuilder::new().build()),
            ),
        );
        openapi.paths.add_path_operation(
            "/docs",
            vec![HttpMethod::Get],
            get(
                "The interactive viewer (Swagger UI, served from this binary)",
                "308",
                ResponseBuilder::new().description("To `/docs/`, the viewer's page"),
            ),
        );
    }
}

/// What every operation may answer besides its own outcomes, added in one
/// place so that no handler can forget one: the body's failures (400
/// `malformed_json`, 413, 415, 422) where it reads a JSON body, 401 where it
/// needs a token, 400/422 where it pages, 429 under the per-address limit,
/// 503 wherever it reaches the database; and every error as
/// `application/problem+json`, the type it is served as.
struct EveryAnswer;

/// A problem answer with `description`.
fn problem(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::schema::Ref;
    use utoipa::openapi::{ContentBuilder, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemBody")))
                .build(),
        )
        .build()
        .into()
}

const PROBLEM_JSON: &str = "application/problem+json";

impl Modify for EveryAnswer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let limited =
                path.starts_with("/api/") || path.starts_with("/events/") || path == "/ws";
            // What answers without the database: the document, the policy,
            // a currency's digits.
            let stored = limited
                && path != "/api/openapi.json"
                && path != "/api/v1/auth/policy"
                && path != "/api/v1/currencies/{code}";
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                let reads_json = operation
                    .request_body
                    .as_ref()
                    .is_some_and(|body| match body {
                        utoipa::openapi::RefOr::T(body) => {
                            body.content.contains_key("application/json")
                        }
                        utoipa::openapi::RefOr::Ref(_) => true,
                    });
                let pages = operation.parameters.iter().flatten().any(|parameter| {
                    matches!(parameter, utoipa::openapi::RefOr::T(p) if p.name == "limit")
                });
                let mut common: Vec<(&str, &str)> = Vec::new();
                if reads_json {
                    common.extend([
                        ("400", "`malformed_json`: the body is not well-formed JSON"),
                        ("413", "`payload_too_large`: the body is over 64 KiB"),
                        ("415", "`unsupported_media_type`: the body is not `application/json`"),
                        ("422", "`validation_failed`, naming each field that breaks a rule (also an unknown or missing one)"),
                    ]);
                }
                if operation.security.is_some() {
                    common.push(("401", "`unauthorized` (no token) or `invalid_token` (bad, expired or revoked), before the body is looked at"));
                }
                if pages {
                    common.extend([
                        ("400", "`invalid_cursor`, or `bad_request` for a malformed query string"),
                        ("422", "`validation_failed`: `limit` outside 1..=100, or another parameter out of its range"),
                    ]);
                }
                if limited {
                    common.push((
                        "429",
                        "`rate_limited`, with `Retry-After` and the `RateLimit-*` headers",
                    ));
                }
                if stored {
                    common.push(("503", "`service_unavailable`, with `Retry-After`: the database (or password hashing) is busy or unreachable; try again"));
                }
                let responses = &mut operation.responses.responses;
                for (status, description) in common {
                    match responses.get_mut(status) {
                        None => {
                            responses.insert(status.to_owned(), problem(description));
                        }
                        // The operation's own answer for this status: the
                        // common one is another way to meet it.
                        Some(utoipa::openapi::RefOr::T(own)) => {
                            let code = description.split('`').nth(1).unwrap_or(description);
                            if !own.description.contains(code) {
                                own.description = format!("{}; or {description}", own.description);
                            }
                        }
                        Some(utoipa::openapi::RefOr::Ref(_)) => {}
                    }
                }
                for (status, response) in responses.iter_mut() {
                    let utoipa::openapi::RefOr::T(response) = response else {
                        continue;
                    };
                    if status.as_str() >= "400"
                        && let Some(content) = response.content.shift_remove("application/json")
                    {
                        response.content.insert(PROBLEM_JSON.to_owned(), content);
                    }
                }
            }
        }
    }
}

/// The events of a live stream, each as a client parses it (`event`, `id`,
/// and `data` holding JSON): `snapshot` (the item), `price`, `closed`; and
/// the reconnection hint (`retry`) the stream starts with.
struct EventStreams;

impl Modify for EventStreams {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let event = |name: &str, schema: &str| {
            serde_json::json!({
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string", "enum": [name]},
                    "id": {"type": "string", "pattern": "^[0-9]+$"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": format!("#/components/schemas/{schema}")}
                    },
                    "retry": {"type": ["integer", "string"]}
                }
            })
        };
        let events = serde_json::json!({
            "anyOf": [
                event("snapshot", "ItemBody"),
                event("price", "PriceBody"),
                event("extended", "ExtendedBody"),
                event("closed", "ClosedBody"),
                {
                    "type": "object",
                    "required": ["retry"],
                    "properties": {"retry": {"type": ["integer", "string"]}, "id": {"type": "string"}},
                    "additionalProperties": false
                }
            ]
        });
        let schema =
            match serde_json::from_value::<utoipa::openapi::RefOr<utoipa::openapi::Schema>>(events)
            {
                Ok(schema) => schema,
                Err(error) => {
                    // Only a change to the literal above can get here; the unit
                    // tests catch it first.
                    tracing::error!(%error, "the event-stream schema does not parse");
                    return;
                }
            };
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get].into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response
                        && let Some(utoipa::openapi::RefOr::T(content)) =
                            response.content.get_mut("text/event-stream")
                    {
                        content.schema = Some(schema.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pp_domain::Currency;

    use super::*;

    /// The whole contract as served, reviewed like code: a change to any
    /// path, status, schema or rule shows in `snapshots/` (accept it with
    /// `cargo insta review`, or `INSTA_UPDATE=always` and read the diff).
    #[test]
    fn the_openapi_document_is_the_reviewed_one() {
        insta::assert_json_snapshot!("openapi", document(15));
    }

    #[test]
    fn every_field_rule_finds_its_field() {
        let mut document = without_field_rules();
        let missed = FieldRules {
            password_min_chars: 15,
        }
        .apply(&mut document);
        assert!(missed.is_empty(), "{missed:?}");
    }

    fn matches(pattern: &str, text: &str) -> bool {
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 30)
            .build()
            .unwrap()
            .is_match(text)
    }

    /// Strings where trimming, Unicode white space and control characters
    /// meet: the pattern must take exactly what the domain takes.
    fn corpus(max: usize) -> Vec<String> {
        let mut corpus: Vec<String> = [
            "Lamp",
            " Lamp ",
            "\tLamp\t",
            "Lamp\n",
            "Lamp\u{2028}",
            "Lamp\u{85}",
            "\u{feff}",
            "\u{1c}Lamp",
            "La\u{1c}mp",
            "La\tmp",
            "La\nmp",
            "La mp",
            "La\u{a0}mp",
            "\u{a0}",
            "",
            " ",
            "\u{3000}",
            "La\u{202e}mp",
            "La\u{200f}mp",
            "L\u{0}",
            "\u{7f}",
            "a",
            "日本語のランプ",
            "🎨",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        corpus.push("x".repeat(max));
        corpus.push("x".repeat(max + 1));
        corpus.push(format!("   {}   ", "x".repeat(max)));
        corpus.push(format!("\t{}\u{2028}", "é".repeat(max)));
        corpus.push(format!(" {} ", "y".repeat(max + 1)));
        corpus
    }

    #[test]
    fn the_text_patterns_take_exactly_what_the_domain_takes() {
        let title = text_pattern(FORBIDDEN_IN_LINE, Title::MAX_CHARS, true);
        for text in corpus(Title::MAX_CHARS) {
            assert_eq!(
                matches(&title, &text),
                Title::parse(&text).is_ok(),
                "title {text:?}"
            );
        }
        let name = text_pattern(FORBIDDEN_IN_LINE, DisplayName::MAX_CHARS, true);
        for text in corpus(DisplayName::MAX_CHARS) {
            assert_eq!(
                matches(&name, &text),
                DisplayName::parse(&text).is_ok(),
                "name {text:?}"
            );
        }
        let description = text_pattern(FORBIDDEN_IN_TEXT, Description::MAX_CHARS, false);
        for text in corpus(Description::MAX_CHARS) {
            assert_eq!(
                matches(&description, &text),
                Description::parse(&text).is_ok(),
                "description {:?}",
                text.chars().take(20).collect::<String>()
            );
        }
        let currency = format!("^[{WHITE_SPACE}]*[A-Za-z]{{3}}[{WHITE_SPACE}]*$");
        for text in [
            "usd",
            " EUR\t",
            "\u{1c}usd",
            "\u{feff}usd",
            "us",
            "usdx",
            "u d",
            "\u{a0}jpy\u{3000}",
        ] {
            assert_eq!(
                matches(&currency, text),
                Currency::parse(text).is_ok(),
                "currency {text:?}"
            );
        }
    }

    #[test]
    fn the_white_space_class_is_what_trim_removes() {
        let class = regex::Regex::new(&format!("^[{WHITE_SPACE}]$")).unwrap();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(
                class.is_match(c.encode_utf8(&mut [0; 4])),
                c.is_whitespace(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn live_streams_document_each_event() {
        let document = serde_json::to_value(document(15)).unwrap();
        let schema = &document["paths"]["/events/{id}"]["get"]["responses"]["200"]["content"]["text/event-stream"]
            ["schema"];
        let events: Vec<&serde_json::Value> = schema["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|branch| &branch["properties"]["event"]["enum"][0])
            .collect();
        let [snapshot, price, extended, closed] =
            ["snapshot", "price", "extended", "closed"].map(serde_json::Value::from);
        assert_eq!(
            events,
            [
                &snapshot,
                &price,
                &extended,
                &closed,
                &serde_json::Value::Null
            ]
        );
        assert_eq!(schema["anyOf"][4]["additionalProperties"], false);
    }
}
