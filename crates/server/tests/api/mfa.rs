//! The second factor through HTTP: enrolment, logins completed with a code
//! or a recovery code, replay and reuse refused, wrong codes counted toward
//! the lockout, turning it off, a password reset, and admins made to enrol.
//! Codes are computed here from the `otpauth://` URI the server hands out,
//! as an authenticator app would.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use totp_rs::Totp;

use crate::support::{Options, PASSWORD, Session, TestApp, problem, session_of};

/// What an authenticator app holds after scanning the enrolment, and when
/// its first code was read (so steps count from there, whatever the clock
/// did since: a test never straddles two steps by chance).
pub(crate) struct App {
    totp: Totp,
    enrolled_at: u64,
}

impl App {
    /// The code the app shows `offset` steps after the enrolment's.
    pub(crate) fn code(&self, offset: u64) -> String {
        self.totp
            .generate(self.enrolled_at + offset * 30)
            .to_string()
    }
}

/// Turns the second factor on for `session`'s account: the app, and the
/// recovery codes.
pub(crate) async fn enrol(app: &TestApp, session: &Session) -> (App, Vec<String>) {
    let response = app
        .post_as(
            "/api/v1/auth/mfa/totp",
            &session.access,
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let shown: Value = response.json().await.unwrap();
    let uri = shown["otpauth_uri"].as_str().unwrap();
    let totp = Totp::from_url(uri).unwrap();
    assert_eq!(totp.secret().to_base32(), shown["secret"].as_str().unwrap());
    assert_eq!(totp.issuer(), Some("Poison Pill"));
    let enrolled_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let phone = App { totp, enrolled_at };

    let wrong = app
        .post_as(
            "/api/v1/auth/mfa/totp/confirm",
            &session.access,
            Some(&json!({"code": wrong_code(&phone.code(0))})),
        )
        .await;
    problem(wrong, 403, "invalid_code").await;
    let confirmed = app
        .post_as(
            "/api/v1/auth/mfa/totp/confirm",
            &session.access,
            Some(&json!({"code": phone.code(0)})),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let body: Value = confirmed.json().await.unwrap();
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (phone, codes)
}

/// A six-digit code that is not `code`.
fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Logs in with the right password: the challenge of the `mfa_required`
/// answer (no session yet).
async fn challenge(app: &TestApp, email: &str) -> String {
    let response = app.login(email, PASSWORD).await;
    assert!(response.headers().get("set-cookie").is_none());
    let body = problem(response, 401, "mfa_required").await;
    assert_eq!(body["expires_in"], 300);
    body["challenge"].as_str().unwrap().to_owned()
}

async fn complete(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post("/api/v1/auth/mfa", body).await
}

async fn status(app: &TestApp, session: &Session) -> Value {
    let response = app.get_as("/api/v1/auth/mfa/totp", &session.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn audited(app: &TestApp, event: &str) -> Vec<String> {
    app.store
        .audit_records()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event == event)
        .map(|r| r.detail.unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolled_logins_need_a_code_each_accepted_once_and_recovery_codes_once() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann@example.com").await;
    assert_eq!(
        status(&app, &ann).await,
        json!({"enabled": false, "recovery_codes_left": 0})
    );
    let refused = app
        .post_as(
            "/api/v1/auth/mfa/totp",
            &ann.access,
            Some(&json!({"password": "not the password at all"})),
        )
        .await;
    problem(refused, 403, "invalid_credentials").await;
    let (phone, recovery) = enrol(&app, &ann).await;
    assert_eq!(
        status(&app, &ann).await,
        json!({"enabled": true, "recovery_codes_left": 10})
    );
    let again = app
        .post_as(
            "/api/v1/auth/mfa/totp",
            &ann.access,
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    problem(again, 409, "mfa_already_enabled").await;

    // The code that confirmed the enrolment is spent; the next step's
    // (the app's clock may run ahead) completes a login, once.
    let first = challenge(&app, "ann@example.com").await;
    let spent = complete(&app, &json!({"challenge": first, "code": phone.code(0)})).await;
    problem(spent, 401, "invalid_code").await;
    let next = phone.code(1);
    let done = complete(&app, &json!({"challenge": first, "code": next})).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(
        done.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("refresh_token=")
    );
    let session = session_of(done).await;
    assert_eq!(app.me(&session.access).await["email"], "ann@example.com");
    // The challenge is closed, and the code spent for another challenge.
    let closed = complete(&app, &json!({"challenge": first, "code": next})).await;
    problem(closed, 401, "invalid_challenge").await;
    let second = challenge(&app, "ann@example.com").await;
    let replayed = complete(&app, &json!({"challenge": second, "code": next})).await;
    problem(replayed, 401, "invalid_code").await;

    // A recovery code, typed loosely, works once.
    let loose = recovery[3].to_uppercase().replace('-', " ");
    let by_recovery = complete(&app, &json!({"challenge": second, "recovery_code": loose})).await;
    assert_eq!(by_recovery.status(), StatusCode::OK);
    let third = challenge(&app, "ann@example.com").await;
    let reused = complete(
        &app,
        &json!({"challenge": third, "recovery_code": recovery[3]}),
    )
    .await;
    problem(reused, 401, "invalid_code").await;
    assert_eq!(status(&app, &ann).await["recovery_codes_left"], 9);

    // Neither or both codes: a clear 422, nothing counted.
    for body in [
        json!({"challenge": third}),
        json!({"challenge": third, "code": "123456", "recovery_code": recovery[0]}),
    ] {
        problem(complete(&app, &body).await, 422, "validation_failed").await;
    }
    let garbage = complete(&app, &json!({"challenge": "nope", "code": "123456"})).await;
    problem(garbage, 401, "invalid_challenge").await;

    assert_eq!(audited(&app, "second_factor_enabled").await.len(), 1);
    let succeeded = audited(&app, "login_succeeded").await;
    assert!(
        succeeded.contains(&"with an authenticator code".to_owned()),
        "{succeeded:?}"
    );
    assert!(
        succeeded.contains(&"with a recovery code".to_owned()),
        "{succeeded:?}"
    );
    let failed = audited(&app, "login_failed").await;
    assert_eq!(
        failed
            .iter()
            .filter(|d| *d == "wrong second-factor code")
            .count(),
        3,
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_lock_the_account_and_a_right_password_does_not_reset_their_count() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann@example.com").await;
    let (phone, _) = enrol(&app, &ann).await;
    let wrong = wrong_code(&phone.code(1));
    // Five failures lock the account (the default policy); a right password
    // between them must not wipe the count, or codes could be guessed
    // forever by logging in again before each guess.
    for attempt in 1..=5 {
        let challenge = challenge(&app, "ann@example.com").await;
        let answer = complete(&app, &json!({"challenge": challenge, "code": wrong})).await;
        problem(answer, 401, "invalid_code").await;
        assert!(attempt < 5 || !audited(&app, "account_locked").await.is_empty());
    }
    let locked = app.login("ann@example.com", PASSWORD).await;
    let body = problem(locked, 423, "account_locked").await;
    assert!(body["detail"].as_str().unwrap().contains("try again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_keeps_the_factor_but_ends_the_logins_waiting_for_it() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann@example.com").await;
    let (phone, _) = enrol(&app, &ann).await;
    let waiting = challenge(&app, "ann@example.com").await;
    let token = app.reset_link("ann@example.com", 1).await;
    let new_password = "a brand new password for ann";
    let reset = app
        .post(
            "/api/v1/auth/password/reset",
            &json!({"token": token, "new_password": new_password}),
        )
        .await;
    assert!(reset.status().is_success(), "{}", reset.status());
    let late = complete(&app, &json!({"challenge": waiting, "code": phone.code(1)})).await;
    problem(late, 401, "invalid_challenge").await;
    let response = app.login("ann@example.com", new_password).await;
    problem(response, 401, "mfa_required").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_the_factor_off_needs_a_proof_and_logins_are_single_step_again() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann@example.com").await;
    let off = |body: Value| {
        let app = &app;
        let token = ann.access.clone();
        async move {
            app.send(
                Method::DELETE,
                "/api/v1/auth/mfa/totp",
                Some(&token),
                Some(&body),
            )
            .await
        }
    };
    problem(
        off(json!({"password": PASSWORD})).await,
        409,
        "mfa_not_enabled",
    )
    .await;
    let (phone, _) = enrol(&app, &ann).await;
    problem(
        off(json!({"password": PASSWORD, "code": "123456"})).await,
        422,
        "validation_failed",
    )
    .await;
    problem(off(json!({})).await, 422, "validation_failed").await;
    problem(
        off(json!({"password": "not the password at all"})).await,
        403,
        "invalid_credentials",
    )
    .await;
    problem(
        off(json!({"code": wrong_code(&phone.code(1))})).await,
        403,
        "invalid_code",
    )
    .await;
    let done = off(json!({"code": phone.code(1)})).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert_eq!(status(&app, &ann).await["enabled"], false);
    assert_eq!(audited(&app, "second_factor_disabled").await.len(), 1);
    assert_eq!(
        app.login("ann@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_require_admin_2fa_an_admin_must_enrol_before_admin_actions() {
    let app = TestApp::spawn_with(Options::default().with("REQUIRE_ADMIN_2FA", "true")).await;
    let admin = app.admin("root@example.com").await;
    let refused = app.get_as("/api/v1/users", &admin.access).await;
    problem(refused, 403, "mfa_enrolment_required").await;
    // Everything a user may do still works, enrolment included.
    assert_eq!(app.me(&admin.access).await["role"], "admin");
    enrol(&app, &admin).await;
    let allowed = app.get_as("/api/v1/users", &admin.access).await;
    assert_eq!(allowed.status(), StatusCode::OK);
    // A plain user is refused as before.
    let ann = app.user("ann@example.com").await;
    let plain = app.get_as("/api/v1/users", &ann.access).await;
    problem(plain, 403, "forbidden").await;
}
