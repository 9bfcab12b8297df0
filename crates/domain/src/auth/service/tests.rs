//! The account flows against mockall mocks of every port.

use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use mockall::predicate::{always, eq};
use zeroize::Zeroizing;

use super::*;
use crate::auth::identities::{
    LinkOutcome, MockIdentityStore, NewAccountOutcome, OidcError, ProviderName, UnlinkError,
    UnlinkOutcome, VerifiedIdentity,
};
use crate::auth::lockout::{FailedAttempt, LoginFailures};
use crate::auth::ports::{
    IssueCap, MockAccessTokens, MockAuditLog, MockOneTimeTokenStore, MockPasswordHasher,
    MockPasswordStrength, MockRevocationList, MockSecretTokens, MockSessionStore, NewLink,
};
use crate::auth::second_factor::{MockOneTimeCodes, MockSecondFactorStore};
use crate::auth::tokens::TokenDigest;
use crate::ports::MockUserStore;
use crate::user::{Credentials, PasswordHash};

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn user(verified: bool, active: bool) -> User {
    User {
        id: UserId::generate(),
        email: Email::parse("ann@example.com").unwrap(),
        display_name: "Ann".into(),
        role: Role::User,
        email_verified: verified,
        is_active: active,
        notify_email: true,
        totp_enabled: false,
        created_at: t0(),
    }
}

fn credentials(user: &User, failures: LoginFailures) -> Credentials {
    Credentials {
        user: user.clone(),
        password_hash: PasswordHash::new("$argon2id$stored".into()),
        password_set: true,
        failures,
    }
}

fn secret(byte: u8) -> SecretToken {
    SecretToken {
        plain: Zeroizing::new(format!("token-{byte}")),
        digest: TokenDigest([byte; 32]),
    }
}

fn policy() -> AuthPolicy {
    AuthPolicy {
        passwords: PasswordPolicy::default(),
        lockout: LockoutPolicy::default(),
        lifetimes: TokenLifetimes::default(),
        require_verified_email: true,
        public_url: "https://auction.example".into(),
        mails_per_account_per_hour: 3,
        require_admin_second_factor: false,
    }
}

fn pw(raw: &str) -> Password {
    Password::presented(raw)
}

const STRONG: &str = "correct horse battery staple";

/// What a test can read back after the service ran.
type Recorded<T> = Arc<Mutex<Vec<T>>>;

/// Every port as a mock, with permissive defaults for the incidental ones
/// (clock, token generation, signing, audit, mail); each test sets the rest.
struct Mocks {
    users: MockUserStore,
    sessions: MockSessionStore,
    one_time: MockOneTimeTokenStore,
    audit: MockAuditLog,
    hasher: MockPasswordHasher,
    strength: MockPasswordStrength,
    access: MockAccessTokens,
    secrets: MockSecretTokens,
    revocations: MockRevocationList,
    identities: MockIdentityStore,
    second_factors: MockSecondFactorStore,
    codes: MockOneTimeCodes,
    audited: Recorded<AuditEvent>,
    mailed: Recorded<LinkMail>,
}

/// The mail a stored link carries.
fn link_mail(link: &NewLink) -> LinkMail {
    link.mail.mail.clone().as_link_mut().cloned().unwrap()
}

impl Mocks {
    fn new() -> Self {
        let audited = Arc::new(Mutex::new(Vec::new()));
        let mailed = Arc::new(Mutex::new(Vec::new()));
        let mut audit = MockAuditLog::new();
        let log = Arc::clone(&audited);
        audit.expect_record().returning(move |entry| {
            log.lock().unwrap().push(entry.event);
            Ok(())
        });
        let mut secrets = MockSecretTokens::new();
        let counter = Arc::new(Mutex::new(0u8));
        secrets.expect_generate().returning(move || {
            let mut n = counter.lock().unwrap();
            *n += 1;
            secret(*n)
        });
        secrets
            .expect_digest()
            .returning(|plain| TokenDigest([plain.len() as u8; 32]));
        let mut access = MockAccessTokens::new();
        access
            .expect_issue()
            .returning(|claims| Ok(format!("jwt-for-{}", claims.session)));
        let mut strength = MockPasswordStrength::new();
        strength
            .expect_too_common()
            .returning(|pw, _| pw.contains("password"));
        Mocks {
            users: MockUserStore::new(),
            sessions: MockSessionStore::new(),
            one_time: MockOneTimeTokenStore::new(),
            audit,
            hasher: MockPasswordHasher::new(),
            strength,
            access,
            secrets,
            revocations: MockRevocationList::new(),
            identities: MockIdentityStore::new(),
            second_factors: MockSecondFactorStore::new(),
            codes: MockOneTimeCodes::new(),
            audited,
            mailed,
        }
    }

    fn service(
        self,
        policy: AuthPolicy,
    ) -> (AuthService, Recorded<AuditEvent>, Recorded<LinkMail>) {
        let mut clock = crate::ports::MockClock::new();
        clock.expect_now().return_const(t0());
        let ports = AuthPorts {
            users: Arc::new(self.users),
            sessions: Arc::new(self.sessions),
            one_time: Arc::new(self.one_time),
            audit: Arc::new(self.audit),
            hasher: Arc::new(self.hasher),
            strength: Arc::new(self.strength),
            access: Arc::new(self.access),
            secrets: Arc::new(self.secrets),
            revocations: Arc::new(self.revocations),
            identities: Arc::new(self.identities),
            second_factors: Arc::new(self.second_factors),
            codes: Arc::new(self.codes),
            clock: Arc::new(clock),
        };
        (AuthService::new(ports, policy), self.audited, self.mailed)
    }
}

fn run<F: std::future::Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

fn ctx() -> RequestContext {
    RequestContext::default()
}

// ---------------------------------------------------------------- register

#[test]
fn registration_reports_every_broken_rule_without_hashing() {
    let mut m = Mocks::new();
    m.hasher.expect_hash().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.register(
        Registration {
            email: "not-an-address".into(),
            password: pw("short"),
            display_name: Some(" ".into()),
        },
        &ctx(),
    ));
    let Err(RegisterError::Invalid(errors)) = result else {
        panic!("{result:?}")
    };
    let fields: Vec<_> = errors.fields().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["email", "display_name", "password"]);
}

#[test]
fn a_common_password_is_refused_at_registration() {
    let mut m = Mocks::new();
    m.hasher.expect_hash().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.register(
        Registration {
            email: "ann@example.com".into(),
            password: pw("passwordpassword"),
            display_name: None,
        },
        &ctx(),
    ));
    assert!(matches!(result, Err(RegisterError::Invalid(e)) if e.fields()[0].field == "password"));
}

#[test]
fn registration_stores_the_hash_and_mails_a_verification_link() {
    let mut m = Mocks::new();
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$new".into())));
    let mailed = Arc::clone(&m.mailed);
    m.users
        .expect_insert_user()
        .returning(move |new, verification| {
            let link = verification.expect("a verification link, stored with the account");
            assert_eq!(link.token.user, new.id);
            assert_eq!(link.token.purpose, OneTimePurpose::VerifyEmail);
            assert_eq!(link.token.expires_at, t0() + Duration::hours(24));
            assert_eq!(link.mail.created_at, t0());
            mailed.lock().unwrap().push(link_mail(&link));
            assert_eq!(new.password_hash.as_str(), "$argon2id$new");
            assert_eq!((new.role, new.email_verified), (Role::User, false));
            assert_eq!(new.display_name, "ann");
            Ok(User {
                id: new.id,
                email: new.email,
                display_name: new.display_name,
                role: new.role,
                email_verified: false,
                is_active: true,
                notify_email: true,
                totp_enabled: false,
                created_at: new.created_at,
            })
        });
    m.one_time.expect_issue_one_time_token().never();
    let (svc, _, mailed) = m.service(policy());
    let registered = run(svc.register(
        Registration {
            email: " Ann@Example.com ".into(),
            password: pw(STRONG),
            display_name: None,
        },
        &ctx(),
    ))
    .unwrap();
    assert_eq!(registered.email.as_str(), "ann@example.com");
    let mail = mailed.lock().unwrap()[0].clone();
    assert_eq!(mail.to.as_str(), "ann@example.com");
    assert_eq!(mail.name, "ann");
    assert_eq!(mail.purpose, OneTimePurpose::VerifyEmail);
    assert_eq!(
        mail.link,
        "https://auction.example/verify-email?token=token-1"
    );
    assert_eq!(mail.expires_at, t0() + Duration::hours(24));
    assert!(
        !format!("{mail:?}").contains("token-1"),
        "the link never prints"
    );
}

#[test]
fn a_taken_address_is_reported() {
    let mut m = Mocks::new();
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("h".into())));
    m.users
        .expect_insert_user()
        .returning(|_, _| Err(CreateUserError::EmailTaken));
    let (svc, _, _) = m.service(policy());
    let result = run(svc.register(
        Registration {
            email: "ann@example.com".into(),
            password: pw(STRONG),
            display_name: Some("Ann".into()),
        },
        &ctx(),
    ));
    assert!(matches!(result, Err(RegisterError::EmailTaken)));
}

#[test]
fn a_store_failure_at_registration_is_passed_on() {
    let mut m = Mocks::new();
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("h".into())));
    m.users
        .expect_insert_user()
        .returning(|_, _| Err(CreateUserError::Store(StoreError::Busy)));
    m.one_time.expect_issue_one_time_token().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.register(
        Registration {
            email: "ann@example.com".into(),
            password: pw(STRONG),
            display_name: None,
        },
        &ctx(),
    ));
    assert!(
        matches!(result, Err(RegisterError::Store(StoreError::Busy))),
        "{result:?}"
    );
}

// ---------------------------------------------------------------- login

#[test]
fn an_unknown_address_costs_a_dummy_verification_and_says_invalid_credentials() {
    let mut m = Mocks::new();
    m.users
        .expect_credentials_by_email()
        .returning(|_| Ok(None));
    m.hasher
        .expect_verify()
        .with(always(), eq(None))
        .times(1)
        .returning(|_, _| Ok(Verification::Invalid));
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.login("nobody@example.com", &pw("whatever"), &ctx()));
    assert!(matches!(result, Err(LoginError::InvalidCredentials)));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);
}

#[test]
fn a_malformed_address_is_treated_as_unknown() {
    let mut m = Mocks::new();
    m.users.expect_credentials_by_email().never();
    m.hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Ok(Verification::Invalid));
    let (svc, _, _) = m.service(policy());
    let result = run(svc.login("no at sign", &pw("whatever"), &ctx()));
    assert!(matches!(result, Err(LoginError::InvalidCredentials)));
}

/// `record_wrong_password` on `id` counting `failures`, setting `locks_for`.
fn counts_failure(
    users: &mut MockUserStore,
    id: UserId,
    failures: u32,
    locks_for: Option<Duration>,
) {
    users
        .expect_record_wrong_password()
        .with(eq(id), eq(t0()), eq(LockoutPolicy::default()))
        .times(1)
        .returning(move |_, _, _| {
            Ok(FailedAttempt::Counted {
                failures,
                locks_for,
            })
        });
}

#[test]
fn the_fifth_wrong_password_locks_the_account_for_a_minute() {
    let ann = user(true, true);
    let id = ann.id;
    let mut m = Mocks::new();
    m.users.expect_credentials_by_email().returning(move |_| {
        Ok(Some(credentials(
            &ann,
            LoginFailures {
                consecutive: 4,
                locked_until: None,
            },
        )))
    });
    m.hasher
        .expect_verify()
        .returning(|_, _| Ok(Verification::Invalid));
    counts_failure(&mut m.users, id, 5, Some(Duration::minutes(1)));
    m.users.expect_clear_login_failures().never();
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.login("ann@example.com", &pw("wrong"), &ctx()));
    assert!(matches!(result, Err(LoginError::InvalidCredentials)));
    assert_eq!(
        *audited.lock().unwrap(),
        [AuditEvent::LoginFailed, AuditEvent::AccountLocked]
    );
}

#[test]
fn a_wrong_password_below_the_threshold_is_counted_without_locking() {
    let ann = user(true, true);
    let id = ann.id;
    let mut m = Mocks::new();
    m.users.expect_credentials_by_email().returning(move |_| {
        Ok(Some(credentials(
            &ann,
            LoginFailures {
                consecutive: 1,
                locked_until: None,
            },
        )))
    });
    m.hasher
        .expect_verify()
        .returning(|_, _| Ok(Verification::Invalid));
    counts_failure(&mut m.users, id, 2, None);
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.login("ann@example.com", &pw("wrong"), &ctx()));
    assert!(matches!(result, Err(LoginError::InvalidCredentials)));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);
}

#[test]
fn a_locked_account_is_refused_without_checking_the_password() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    let until = t0() + Duration::seconds(90);
    m.users.expect_credentials_by_email().returning(move |_| {
        Ok(Some(credentials(
            &ann,
            LoginFailures {
                consecutive: 5,
                locked_until: Some(until),
            },
        )))
    });
    m.hasher.expect_verify().never();
    m.users.expect_record_wrong_password().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.login("ann@example.com", &pw(STRONG), &ctx()));
    assert!(
        matches!(result, Err(LoginError::Locked { retry_after }) if retry_after == Duration::seconds(90))
    );
}

/// `user`'s credentials, with `failures`, whenever they are read by id.
fn stored_by_id(users: &mut MockUserStore, user: &User, failures: LoginFailures) {
    let stored = user.clone();
    users
        .expect_credentials_by_id()
        .returning(move |_| Ok(Some(credentials(&stored, failures))));
}

/// Credentials of `ann` as stored: first unlocked, then as `later` once
/// the password was checked (what concurrent attempts left).
fn credentials_then(m: &mut Mocks, ann: &User, later: LoginFailures) {
    let stored = ann.clone();
    m.users
        .expect_credentials_by_email()
        .returning(move |_| Ok(Some(credentials(&stored, LoginFailures::default()))));
    stored_by_id(&mut m.users, ann, later);
}

#[test]
fn a_right_password_after_concurrent_failures_locked_the_account_meets_the_lock() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    let locked = LoginFailures {
        consecutive: 5,
        locked_until: Some(t0() + Duration::seconds(60)),
    };
    credentials_then(&mut m, &ann, locked);
    m.hasher.expect_verify().returning(|_, _| {
        Ok(Verification::Valid {
            needs_rehash: false,
        })
    });
    m.users.expect_clear_login_failures().never();
    m.sessions.expect_start_session().never();
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.login("ann@example.com", &pw(STRONG), &ctx()));
    assert!(
        matches!(result, Err(LoginError::Locked { retry_after }) if retry_after == Duration::seconds(60))
    );
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);
}

#[test]
fn a_wrong_password_after_concurrent_failures_locked_the_account_meets_the_lock() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    credentials_then(&mut m, &ann, LoginFailures::default());
    m.hasher
        .expect_verify()
        .returning(|_, _| Ok(Verification::Invalid));
    m.users.expect_record_wrong_password().returning(|_, _, _| {
        Ok(FailedAttempt::AlreadyLocked {
            retry_after: Duration::seconds(60),
        })
    });
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.login("ann@example.com", &pw("wrong"), &ctx()));
    assert!(
        matches!(result, Err(LoginError::Locked { retry_after }) if retry_after == Duration::seconds(60))
    );
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);
}

fn login_with(
    ann: User,
    failures: LoginFailures,
    verification: Verification,
    policy: AuthPolicy,
) -> (Result<TokenPair, LoginError>, Vec<AuditEvent>) {
    let mut m = Mocks::new();
    let stored = ann.clone();
    m.users
        .expect_credentials_by_email()
        .returning(move |_| Ok(Some(credentials(&stored, failures))));
    m.hasher
        .expect_verify()
        .returning(move |_, _| Ok(verification));
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$stronger".into())));
    let rehash = matches!(verification, Verification::Valid { needs_rehash: true });
    m.users
        .expect_upgrade_password_hash()
        .withf(|_, from, to, _| {
            from.as_str() == "$argon2id$stored" && to.as_str() == "$argon2id$stronger"
        })
        .times(usize::from(rehash))
        .returning(|_, _, _, _| Ok(true));
    stored_by_id(&mut m.users, &ann, failures);
    // A right password clears the failures before it.
    let right = matches!(verification, Verification::Valid { .. });
    m.users
        .expect_clear_login_failures()
        .with(eq(ann.id))
        .times(usize::from(right && failures != LoginFailures::default()))
        .returning(|_| Ok(()));
    // The session is bound to the hash the password matched, or to its
    // upgrade.
    let verified = if rehash {
        "$argon2id$stronger"
    } else {
        "$argon2id$stored"
    };
    m.sessions
        .expect_start_session()
        .withf(move |first, hash| {
            first.user == ann.id
                && first.expires_at == t0() + Duration::days(7)
                && hash.as_str() == verified
        })
        .returning(|_, _| Ok(SessionStart::Started));
    let (svc, audited, _) = m.service(policy);
    let result = run(svc.login("ann@example.com", &pw(STRONG), &ctx()));
    let events = audited.lock().unwrap().clone();
    (result, events)
}

#[test]
fn a_correct_login_starts_a_session_and_resets_the_failures() {
    let failures = LoginFailures {
        consecutive: 3,
        locked_until: Some(t0() - Duration::minutes(1)),
    };
    let (result, events) = login_with(
        user(true, true),
        failures,
        Verification::Valid {
            needs_rehash: false,
        },
        policy(),
    );
    let pair = result.unwrap();
    assert!(pair.access_token.starts_with("jwt-for-"));
    assert_eq!(pair.refresh_token.as_str(), "token-1");
    assert_eq!(
        (pair.access_expires_in, pair.refresh_expires_in),
        (Duration::minutes(15), Duration::days(7))
    );
    assert_eq!(events, [AuditEvent::LoginSucceeded]);
}

#[test]
fn a_weak_stored_hash_is_upgraded_at_login() {
    let (result, _) = login_with(
        user(true, true),
        LoginFailures::default(),
        Verification::Valid { needs_rehash: true },
        policy(),
    );
    assert!(result.is_ok());
}

/// A login whose password was replaced (or whose account was deactivated)
/// while the password was being checked: the store refuses to start the
/// session, or to upgrade the old hash.
fn login_overtaken(needs_rehash: bool) -> (Result<TokenPair, LoginError>, Vec<AuditEvent>) {
    let ann = user(true, true);
    let mut m = Mocks::new();
    credentials_then(&mut m, &ann, LoginFailures::default());
    m.hasher
        .expect_verify()
        .returning(move |_, _| Ok(Verification::Valid { needs_rehash }));
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$stronger".into())));
    // The stored hash is no longer the one checked: nothing is upgraded.
    m.users
        .expect_upgrade_password_hash()
        .times(usize::from(needs_rehash))
        .returning(|_, _, _, _| Ok(false));
    m.sessions
        .expect_start_session()
        .withf(|_, verified| verified.as_str() == "$argon2id$stored")
        .times(1)
        .returning(|_, _| Ok(SessionStart::Stale));
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.login("ann@example.com", &pw(STRONG), &ctx()));
    let events = audited.lock().unwrap().clone();
    (result, events)
}

#[test]
fn a_login_overtaken_by_a_password_reset_gets_no_session() {
    for needs_rehash in [false, true] {
        let (result, events) = login_overtaken(needs_rehash);
        assert!(
            matches!(result, Err(LoginError::InvalidCredentials)),
            "{result:?}"
        );
        assert_eq!(events, [AuditEvent::LoginFailed]);
    }
}

#[test]
fn an_unverified_or_deactivated_account_cannot_log_in_even_with_the_right_password() {
    let valid = Verification::Valid {
        needs_rehash: false,
    };
    let (unverified, _) = login_with(user(false, true), LoginFailures::default(), valid, policy());
    assert!(matches!(unverified, Err(LoginError::EmailNotVerified)));
    let (disabled, _) = login_with(user(true, false), LoginFailures::default(), valid, policy());
    assert!(matches!(disabled, Err(LoginError::AccountDisabled)));
    let relaxed = AuthPolicy {
        require_verified_email: false,
        ..policy()
    };
    let (allowed, _) = login_with(user(false, true), LoginFailures::default(), valid, relaxed);
    assert!(allowed.is_ok());
}

// ---------------------------------------------------------------- refresh

#[test]
fn a_current_refresh_token_rotates_into_a_new_pair_in_the_same_session() {
    let ann = user(true, true);
    let session = SessionId::generate();
    let mut m = Mocks::new();
    let id = ann.id;
    m.sessions
        .expect_rotate_refresh_token()
        .with(
            eq(TokenDigest([3; 32])),
            eq(TokenDigest([1; 32])),
            eq(t0()),
            eq(t0() + Duration::days(7)),
        )
        .returning(move |_, _, _, _| Ok(Rotation::Rotated { session, user: id }));
    m.users
        .expect_user_by_id()
        .returning(move |_| Ok(Some(ann.clone())));
    let (svc, _, _) = m.service(policy());
    let pair = run(svc.refresh("abc", &ctx())).unwrap();
    assert_eq!(pair.access_token, format!("jwt-for-{session}"));
    assert_eq!(pair.refresh_token.as_str(), "token-1");
}

#[test]
fn a_reused_refresh_token_revokes_its_whole_session_and_is_audited() {
    let session = SessionId::generate();
    let mut m = Mocks::new();
    let id = UserId::generate();
    m.sessions
        .expect_rotate_refresh_token()
        .returning(move |_, _, _, _| Ok(Rotation::Reused { session, user: id }));
    m.sessions
        .expect_revoke_session()
        .with(eq(session), eq(t0()))
        .times(1)
        .returning(|_, _| Ok(()));
    let (svc, audited, _) = m.service(policy());
    assert!(matches!(
        run(svc.refresh("abc", &ctx())),
        Err(RefreshError::Reused)
    ));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::TokenReused]);
}

#[test]
fn an_unknown_refresh_token_or_a_deactivated_user_gets_nothing() {
    let mut m = Mocks::new();
    m.sessions
        .expect_rotate_refresh_token()
        .returning(|_, _, _, _| Ok(Rotation::Invalid));
    let (svc, _, _) = m.service(policy());
    assert!(matches!(
        run(svc.refresh("abc", &ctx())),
        Err(RefreshError::Invalid)
    ));

    let mut m = Mocks::new();
    let session = SessionId::generate();
    let gone = user(true, false);
    let id = gone.id;
    m.sessions
        .expect_rotate_refresh_token()
        .returning(move |_, _, _, _| Ok(Rotation::Rotated { session, user: id }));
    m.users
        .expect_user_by_id()
        .returning(move |_| Ok(Some(gone.clone())));
    m.sessions
        .expect_revoke_session()
        .times(1)
        .returning(|_, _| Ok(()));
    let (svc, _, _) = m.service(policy());
    assert!(matches!(
        run(svc.refresh("abc", &ctx())),
        Err(RefreshError::Invalid)
    ));
}

// ---------------------------------------------------------------- authenticate / logout

fn claims_for(user: &User, session: SessionId) -> AccessClaims {
    AccessClaims {
        user: user.id,
        role: user.role,
        token: TokenId::generate(),
        session,
        issued_at: t0(),
        expires_at: t0() + Duration::minutes(15),
    }
}

#[test]
fn a_live_token_authenticates_with_the_stored_user() {
    let ann = user(true, true);
    let session = SessionId::generate();
    let claims = claims_for(&ann, session);
    let mut m = Mocks::new();
    m.access.expect_verify().returning(move |_, _| Ok(claims));
    m.revocations.expect_is_revoked().returning(|_| Ok(false));
    let stored = ann.clone();
    m.sessions
        .expect_active_session_user()
        .with(eq(session))
        .returning(move |_| Ok(Some(stored.clone())));
    let (svc, _, _) = m.service(policy());
    let principal = run(svc.authenticate("jwt")).unwrap();
    assert!(!principal.is_admin());
    assert_eq!(
        (principal.user, principal.session, principal.token),
        (ann, session, claims.token)
    );
}

#[test]
fn a_blacklisted_token_is_refused_even_while_its_session_is_live() {
    let ann = user(true, true);
    let claims = claims_for(&ann, SessionId::generate());
    let mut m = Mocks::new();
    m.access.expect_verify().returning(move |_, _| Ok(claims));
    m.revocations.expect_is_revoked().returning(|_| Ok(true));
    let live = ann.clone();
    m.sessions
        .expect_active_session_user()
        .returning(move |_| Ok(Some(live.clone())));
    let (svc, _, _) = m.service(policy());
    assert!(matches!(
        run(svc.authenticate("jwt")),
        Err(AuthError::Rejected(TokenRejected::Revoked))
    ));
}

#[test]
fn with_the_blacklist_unreachable_a_revoked_session_still_refuses_the_token() {
    let ann = user(true, true);
    let claims = claims_for(&ann, SessionId::generate());
    let mut m = Mocks::new();
    m.access.expect_verify().returning(move |_, _| Ok(claims));
    m.revocations
        .expect_is_revoked()
        .returning(|_| Err(anyhow::anyhow!("redis down")));
    m.sessions
        .expect_active_session_user()
        .returning(|_| Ok(None));
    let (svc, _, _) = m.service(policy());
    assert!(matches!(
        run(svc.authenticate("jwt")),
        Err(AuthError::Rejected(TokenRejected::Revoked))
    ));
}

#[test]
fn a_session_of_another_user_does_not_authenticate() {
    let ann = user(true, true);
    let claims = claims_for(&ann, SessionId::generate());
    let mut m = Mocks::new();
    m.access.expect_verify().returning(move |_, _| Ok(claims));
    m.revocations.expect_is_revoked().returning(|_| Ok(false));
    m.sessions
        .expect_active_session_user()
        .returning(|_| Ok(Some(user(true, true))));
    let (svc, _, _) = m.service(policy());
    assert!(matches!(
        run(svc.authenticate("jwt")),
        Err(AuthError::Rejected(TokenRejected::Revoked))
    ));
}

#[test]
fn an_invalid_signature_is_passed_on() {
    let mut m = Mocks::new();
    m.access
        .expect_verify()
        .returning(|_, _| Err(TokenRejected::BadSignature));
    m.revocations.expect_is_revoked().never();
    let (svc, _, _) = m.service(policy());
    assert!(matches!(
        run(svc.authenticate("jwt")),
        Err(AuthError::Rejected(TokenRejected::BadSignature))
    ));
}

fn principal(user: User) -> Principal {
    Principal {
        user,
        session: SessionId::generate(),
        token: TokenId::generate(),
        expires_at: t0() + Duration::minutes(10),
    }
}

#[test]
fn a_stored_change_stands_when_its_audit_entry_cannot_be_written() {
    let p = principal(user(true, true));
    let mut m = Mocks::new();
    m.audit = MockAuditLog::new();
    m.audit
        .expect_record()
        .times(1)
        .returning(|_| Err(StoreError::Busy));
    m.sessions
        .expect_revoke_session()
        .times(1)
        .returning(|_, _| Ok(()));
    m.revocations.expect_revoke().returning(|_, _| Ok(()));
    let (svc, _, _) = m.service(policy());
    assert!(
        run(svc.logout(&p, &ctx())).is_ok(),
        "the session is revoked: the logout succeeded"
    );
}

#[test]
fn logout_revokes_the_session_and_blacklists_the_token_even_if_the_blacklist_fails() {
    let p = principal(user(true, true));
    let mut m = Mocks::new();
    m.sessions
        .expect_revoke_session()
        .with(eq(p.session), eq(t0()))
        .times(1)
        .returning(|_, _| Ok(()));
    m.revocations
        .expect_revoke()
        .with(eq(p.token), eq(p.expires_at))
        .times(1)
        .returning(|_, _| Err(anyhow::anyhow!("redis down")));
    let (svc, _, _) = m.service(policy());
    run(svc.logout(&p, &ctx())).unwrap();
}

#[test]
fn logout_all_revokes_every_session_of_the_user() {
    let p = principal(user(true, true));
    let mut m = Mocks::new();
    m.sessions
        .expect_revoke_user_sessions()
        .with(eq(p.user.id), eq(None), eq(t0()))
        .times(1)
        .returning(|_, _, _| Ok(()));
    m.revocations.expect_revoke().returning(|_, _| Ok(()));
    let (svc, audited, _) = m.service(policy());
    run(svc.logout_all(&p, &ctx())).unwrap();
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoggedOutEverywhere]);
}

// ---------------------------------------------------------------- verification and reset

#[test]
fn verify_email_uses_the_token_once() {
    let ann = user(true, true);
    let id = ann.id;
    let mut m = Mocks::new();
    m.one_time
        .expect_consume_one_time_token()
        .with(always(), eq(OneTimePurpose::VerifyEmail), eq(t0()))
        .returning(move |_, _, _| Ok(Some(id)));
    m.users
        .expect_mark_email_verified()
        .with(eq(id), eq(t0()))
        .returning(move |_, _| Ok(Some(ann.clone())));
    let (svc, _, _) = m.service(policy());
    assert!(run(svc.verify_email("tok", &ctx())).unwrap().email_verified);

    let mut m = Mocks::new();
    m.one_time
        .expect_consume_one_time_token()
        .returning(|_, _, _| Ok(None));
    let (svc, _, _) = m.service(policy());
    assert!(matches!(
        run(svc.verify_email("used", &ctx())),
        Err(OneTimeError::InvalidToken)
    ));
}

#[test]
fn forgot_and_resend_only_mail_accounts_that_can_use_the_link() {
    let verified = user(true, true);
    let unverified = user(false, true);
    let mut m = Mocks::new();
    let (a, b) = (verified.clone(), unverified.clone());
    m.users.expect_user_by_email().returning(move |email| {
        Ok(match email.as_str() {
            "ann@example.com" => Some(a.clone()),
            "new@example.com" => Some(User {
                email: Email::parse("new@example.com").unwrap(),
                ..b.clone()
            }),
            _ => None,
        })
    });
    let mailed = Arc::clone(&m.mailed);
    m.one_time
        .expect_issue_one_time_token()
        .times(2)
        .returning(move |link, cap| {
            assert_eq!(
                cap,
                IssueCap {
                    at_most: 3,
                    since: t0() - Duration::hours(1),
                }
            );
            mailed.lock().unwrap().push(link_mail(&link));
            Ok(true)
        });
    let (svc, _, mailed) = m.service(policy());
    run(svc.forgot_password("ann@example.com", &ctx())).unwrap();
    run(svc.forgot_password("nobody@example.com", &ctx())).unwrap();
    run(svc.forgot_password("not an address", &ctx())).unwrap();
    run(svc.resend_verification("ann@example.com", &ctx())).unwrap(); // already verified: nothing
    run(svc.resend_verification("new@example.com", &ctx())).unwrap();
    run(svc.resend_verification("bad", &ctx())).unwrap();
    let mails = mailed.lock().unwrap();
    assert_eq!(mails.len(), 2);
    assert!(
        mails[0]
            .link
            .starts_with("https://auction.example/reset-password?token=")
    );
    assert_eq!(mails[0].expires_at, t0() + Duration::hours(1));
    assert!(
        mails[1]
            .link
            .starts_with("https://auction.example/verify-email?token=")
    );
}

#[test]
fn past_the_hourly_cap_the_answer_is_the_same() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    m.users
        .expect_user_by_email()
        .returning(move |_| Ok(Some(ann.clone())));
    let mut answers = vec![false, true];
    m.one_time
        .expect_issue_one_time_token()
        .times(2)
        .returning(move |_, _| Ok(answers.pop().unwrap()));
    let (svc, _, _) = m.service(policy());
    run(svc.forgot_password("ann@example.com", &ctx())).unwrap();
    run(svc.forgot_password("ann@example.com", &ctx())).unwrap();
}

#[test]
fn a_refused_new_password_does_not_use_up_the_reset_link() {
    let ann = user(true, true);
    let id = ann.id;
    let mut m = Mocks::new();
    m.one_time
        .expect_peek_one_time_token()
        .returning(move |_, _, _| Ok(Some(id)));
    m.users
        .expect_user_by_id()
        .returning(move |_| Ok(Some(ann.clone())));
    m.one_time.expect_consume_one_time_token().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.reset_password("tok", &pw("short"), &ctx()));
    assert!(
        matches!(result, Err(OneTimeError::Invalid(e)) if e.fields()[0].field == "new_password")
    );
}

#[test]
fn a_reset_replaces_the_password_ending_every_session_and_link() {
    let ann = user(true, true);
    let id = ann.id;
    let mut m = Mocks::new();
    m.one_time
        .expect_peek_one_time_token()
        .returning(move |_, _, _| Ok(Some(id)));
    m.users
        .expect_user_by_id()
        .returning(move |_| Ok(Some(ann.clone())));
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$reset".into())));
    // The link is spent by the replacement itself, not before it.
    m.one_time.expect_consume_one_time_token().never();
    m.users
        .expect_replace_password()
        .with(eq(PasswordReplacement {
            user: id,
            hash: PasswordHash::new("$argon2id$reset".into()),
            at: t0(),
            keep_session: None,
            link: Some(TokenDigest(["tok".len() as u8; 32])),
        }))
        .times(1)
        .returning(|_| Ok(()));
    let (svc, audited, _) = m.service(policy());
    run(svc.reset_password("tok", &pw(STRONG), &ctx())).unwrap();
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::PasswordReset]);
}

#[test]
fn a_reset_link_lost_to_a_concurrent_reset_is_invalid() {
    let ann = user(true, true);
    let id = ann.id;
    let mut m = Mocks::new();
    m.one_time
        .expect_peek_one_time_token()
        .returning(move |_, _, _| Ok(Some(id)));
    m.users
        .expect_user_by_id()
        .returning(move |_| Ok(Some(ann.clone())));
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("h".into())));
    m.users
        .expect_replace_password()
        .times(1)
        .returning(|_| Err(ReplacePasswordError::LinkSpent));
    let (svc, audited, _) = m.service(policy());
    assert!(matches!(
        run(svc.reset_password("tok", &pw(STRONG), &ctx())),
        Err(OneTimeError::InvalidToken)
    ));
    assert!(audited.lock().unwrap().is_empty());
}

#[test]
fn a_store_failure_while_resetting_is_passed_on_and_nothing_is_audited() {
    let ann = user(true, true);
    let id = ann.id;
    let mut m = Mocks::new();
    m.one_time
        .expect_peek_one_time_token()
        .returning(move |_, _, _| Ok(Some(id)));
    finds(&mut m.users, &ann);
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("h".into())));
    m.users
        .expect_replace_password()
        .times(1)
        .returning(|_| Err(ReplacePasswordError::Store(StoreError::Busy)));
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.reset_password("tok", &pw(STRONG), &ctx()));
    assert!(
        matches!(result, Err(OneTimeError::Store(StoreError::Busy))),
        "{result:?}"
    );
    assert!(audited.lock().unwrap().is_empty());
}

#[test]
fn an_unknown_reset_token_is_invalid() {
    let mut m = Mocks::new();
    m.one_time
        .expect_peek_one_time_token()
        .returning(|_, _, _| Ok(None));
    let (svc, _, _) = m.service(policy());
    assert!(matches!(
        run(svc.reset_password("tok", &pw(STRONG), &ctx())),
        Err(OneTimeError::InvalidToken)
    ));
}

// ---------------------------------------------------------------- change password

#[test]
fn a_wrong_current_password_changes_nothing_but_counts_towards_the_lock() {
    let p = principal(user(true, true));
    let id = p.user.id;
    let mut m = Mocks::new();
    stored_by_id(
        &mut m.users,
        &p.user,
        LoginFailures {
            consecutive: 4,
            locked_until: None,
        },
    );
    m.hasher
        .expect_verify()
        .returning(|_, _| Ok(Verification::Invalid));
    m.hasher.expect_hash().never();
    counts_failure(&mut m.users, id, 5, Some(Duration::minutes(1)));
    m.users.expect_clear_login_failures().never();
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.change_password(&p, &pw("wrong"), &pw(STRONG), &ctx()));
    assert!(matches!(result, Err(ChangePasswordError::WrongPassword)));
    assert_eq!(
        *audited.lock().unwrap(),
        [AuditEvent::LoginFailed, AuditEvent::AccountLocked]
    );
}

#[test]
fn a_locked_account_cannot_change_its_password_without_checking_it() {
    let p = principal(user(true, true));
    let mut m = Mocks::new();
    stored_by_id(
        &mut m.users,
        &p.user,
        LoginFailures {
            consecutive: 5,
            locked_until: Some(t0() + Duration::seconds(90)),
        },
    );
    m.hasher.expect_verify().never();
    m.users.expect_record_wrong_password().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.change_password(&p, &pw("the old one"), &pw(STRONG), &ctx()));
    assert!(matches!(
        result,
        Err(ChangePasswordError::Locked { retry_after }) if retry_after == Duration::seconds(90)
    ));
}

#[test]
fn a_password_change_keeps_this_session_with_new_tokens_and_ends_the_others_and_links() {
    let p = principal(user(true, true));
    let (id, session) = (p.user.id, p.session);
    let mut m = Mocks::new();
    stored_by_id(&mut m.users, &p.user, LoginFailures::default());
    m.hasher.expect_verify().returning(|_, _| {
        Ok(Verification::Valid {
            needs_rehash: false,
        })
    });
    m.users.expect_clear_login_failures().never();
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$changed".into())));
    m.users
        .expect_replace_password()
        .with(eq(PasswordReplacement {
            user: id,
            hash: PasswordHash::new("$argon2id$changed".into()),
            at: t0(),
            keep_session: Some(session),
            link: None,
        }))
        .times(1)
        .returning(|_| Ok(()));
    m.sessions
        .expect_replace_refresh_tokens()
        .withf(move |next, _| next.session == session && next.user == id)
        .times(1)
        .returning(|_, _| Ok(()));
    let (svc, audited, _) = m.service(policy());
    let pair = run(svc.change_password(&p, &pw("the old one"), &pw(STRONG), &ctx())).unwrap();
    assert_eq!(pair.access_token, format!("jwt-for-{session}"));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::PasswordChanged]);
}

/// A password change with the right current password whose replacement
/// the store answers with `failure`.
fn change_meeting(
    failure: ReplacePasswordError,
) -> (Result<TokenPair, ChangePasswordError>, Vec<AuditEvent>) {
    let p = principal(user(true, true));
    let mut m = Mocks::new();
    stored_by_id(&mut m.users, &p.user, LoginFailures::default());
    m.hasher.expect_verify().returning(|_, _| {
        Ok(Verification::Valid {
            needs_rehash: false,
        })
    });
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$changed".into())));
    m.users
        .expect_replace_password()
        .times(1)
        .return_once(move |_| Err(failure));
    m.sessions.expect_replace_refresh_tokens().never();
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.change_password(&p, &pw("the old one"), &pw(STRONG), &ctx()));
    let events = audited.lock().unwrap().clone();
    (result, events)
}

#[test]
fn a_password_change_the_store_fails_to_write_is_passed_on_unaudited() {
    let (result, events) = change_meeting(ReplacePasswordError::Store(StoreError::Busy));
    assert!(
        matches!(result, Err(ChangePasswordError::Store(StoreError::Busy))),
        "{result:?}"
    );
    assert!(events.is_empty());
}

#[test]
fn a_store_claiming_a_change_spent_a_reset_link_fails_the_integrity_check() {
    // A change presents no link, so no store may answer that it spent one.
    let (result, events) = change_meeting(ReplacePasswordError::LinkSpent);
    assert!(
        matches!(
            &result,
            Err(ChangePasswordError::Store(StoreError::Integrity(why)))
                if why == "a change spent a reset link it was not given"
        ),
        "{result:?}"
    );
    assert!(events.is_empty());
}

#[test]
fn a_new_password_built_from_the_address_is_refused() {
    let p = principal(user(true, true));
    let mut m = Mocks::new();
    stored_by_id(&mut m.users, &p.user, LoginFailures::default());
    m.hasher.expect_verify().returning(|_, _| {
        Ok(Verification::Valid {
            needs_rehash: false,
        })
    });
    let mut strength = MockPasswordStrength::new();
    strength
        .expect_too_common()
        .withf(|_, inputs| inputs.contains(&"ann@example.com") && inputs.contains(&"Ann"))
        .returning(|_, _| true);
    m.strength = strength;
    let (svc, _, _) = m.service(policy());
    let result = run(svc.change_password(&p, &pw("old"), &pw("ann@example.com-2026!"), &ctx()));
    assert!(matches!(result, Err(ChangePasswordError::Invalid(_))));
}

#[test]
fn a_new_password_that_breaks_a_rule_is_refused_before_the_current_one_is_checked() {
    // No store or hasher expectations: looking the account up, checking the
    // current password or counting a guess would fail the test.
    let p = principal(user(true, true));
    let (svc, _, _) = Mocks::new().service(policy());
    let result = run(svc.change_password(&p, &pw("wrong"), &pw("short"), &ctx()));
    assert!(matches!(result, Err(ChangePasswordError::Invalid(_))));
}

// ---------------------------------------------------------------- profile and administration

fn admin() -> Principal {
    principal(User {
        role: Role::Admin,
        ..user(true, true)
    })
}

/// Expects the sessions of `user` to be revoked, all of them, once.
fn revokes_every_session_once(sessions: &mut MockSessionStore, user: UserId) {
    sessions
        .expect_revoke_user_sessions()
        .with(eq(user), eq(None), eq(t0()))
        .times(1)
        .returning(|_, _, _| Ok(()));
}

/// `user_by_id` finds `stored`, however often it is asked.
fn finds(users: &mut MockUserStore, stored: &User) {
    let stored = stored.clone();
    users
        .expect_user_by_id()
        .returning(move |_| Ok(Some(stored.clone())));
}

#[test]
fn deactivating_a_user_revokes_their_sessions_and_every_change_is_audited() {
    let admin = admin();
    assert!(admin.is_admin());
    let target = user(true, true);
    let id = target.id;
    let mut m = Mocks::new();
    finds(&mut m.users, &target);
    let after = User {
        role: Role::Admin,
        is_active: false,
        ..target
    };
    m.users
        .expect_update_user()
        .withf(|_, changes, _| {
            changes.role == Some(Role::Admin) && changes.is_active == Some(false)
        })
        .returning(move |_, _, _| Ok(Some(after.clone())));
    revokes_every_session_once(&mut m.sessions, id);
    let (svc, audited, _) = m.service(policy());
    let updated =
        run(svc.administer_user(&admin, id, Some(Role::Admin), Some(false), &ctx())).unwrap();
    assert!(!updated.is_active);
    assert_eq!(
        *audited.lock().unwrap(),
        [AuditEvent::RoleChanged, AuditEvent::ActivationChanged]
    );
}

#[test]
fn deactivating_an_account_read_as_inactive_still_revokes_its_sessions() {
    // Another admin may have reactivated it after it was read: sessions
    // started since must end, though nothing changed to audit.
    let admin = admin();
    let inactive = user(true, false);
    let id = inactive.id;
    let mut m = Mocks::new();
    finds(&mut m.users, &inactive);
    m.users
        .expect_update_user()
        .returning(move |_, _, _| Ok(Some(inactive.clone())));
    revokes_every_session_once(&mut m.sessions, id);
    let (svc, audited, _) = m.service(policy());
    run(svc.administer_user(&admin, id, None, Some(false), &ctx())).unwrap();
    assert!(audited.lock().unwrap().is_empty());
}

#[test]
fn reactivating_an_account_is_audited_as_activated_and_revokes_no_session() {
    let admin = admin();
    let inactive = user(true, false);
    let id = inactive.id;
    let mut m = Mocks::new();
    finds(&mut m.users, &inactive);
    let active = User {
        is_active: true,
        ..inactive
    };
    m.users
        .expect_update_user()
        .withf(|_, changes, _| changes.is_active == Some(true) && changes.role.is_none())
        .returning(move |_, _, _| Ok(Some(active.clone())));
    m.sessions.expect_revoke_user_sessions().never();
    let mut audit = MockAuditLog::new();
    let actor = admin.user.id;
    audit
        .expect_record()
        .withf(move |entry| {
            entry.event == AuditEvent::ActivationChanged
                && entry.user == Some(id)
                && entry.actor == Some(actor)
                && entry.detail.as_deref() == Some("activated")
        })
        .times(1)
        .returning(|_| Ok(()));
    m.audit = audit;
    let (svc, _, _) = m.service(policy());
    let updated = run(svc.administer_user(&admin, id, None, Some(true), &ctx())).unwrap();
    assert!(updated.is_active);
}

#[test]
fn administering_an_unknown_user_is_not_found() {
    let admin = admin();
    let mut m = Mocks::new();
    m.users.expect_user_by_id().returning(|_| Ok(None));
    let (svc, _, _) = m.service(policy());
    let result = run(svc.administer_user(&admin, UserId::generate(), None, Some(true), &ctx()));
    assert!(matches!(result, Err(AdminError::NotFound)));
    let mut m = Mocks::new();
    m.users.expect_user_by_id().returning(|_| Ok(None));
    let (svc, _, _) = m.service(policy());
    assert!(matches!(
        run(svc.user(UserId::generate())),
        Err(AdminError::NotFound)
    ));
}

#[test]
fn the_user_list_pages_with_a_cursor_at_the_last_item() {
    let users: Vec<User> = (0..3).map(|_| user(true, true)).collect();
    let mut m = Mocks::new();
    let all = users.clone();
    m.users
        .expect_list_users()
        .with(eq(None), eq(None), eq(3))
        .returning(move |_, _, _| Ok(all.clone()));
    let (svc, _, _) = m.service(policy());
    let (page, next) = run(svc.list_users(Some("  "), None, 2)).unwrap();
    assert_eq!(page, users[..2]);
    assert_eq!(
        next,
        Some(UserCursor {
            created_at: users[1].created_at,
            id: users[1].id
        })
    );

    let mut m = Mocks::new();
    let two = users[..2].to_vec();
    m.users
        .expect_list_users()
        .with(eq(Some("ann@".to_owned())), eq(None), eq(3))
        .returning(move |_, _, _| Ok(two.clone()));
    let (svc, _, _) = m.service(policy());
    assert_eq!(
        run(svc.list_users(Some(" Ann@ "), None, 2)).unwrap().1,
        None
    );
}

#[test]
fn a_profile_update_changes_only_the_display_name_and_notices() {
    let p = principal(user(true, true));
    let mut m = Mocks::new();
    let renamed = User {
        display_name: "Annie".into(),
        notify_email: false,
        totp_enabled: false,
        ..p.user.clone()
    };
    m.users
        .expect_update_user()
        .withf(|_, changes, _| {
            changes.role.is_none()
                && changes.is_active.is_none()
                && changes.display_name.is_some()
                && changes.notify_email == Some(false)
        })
        .returning(move |_, _, _| Ok(Some(renamed.clone())));
    let (svc, _, _) = m.service(policy());
    let updated =
        run(svc.update_profile(&p, Some(DisplayName::parse("Annie").unwrap()), Some(false)))
            .unwrap();
    assert_eq!(updated.display_name, "Annie");
    assert!(!updated.notify_email);
}

#[test]
fn a_profile_update_without_changes_writes_nothing() {
    let p = principal(user(true, true));
    let mut m = Mocks::new();
    let stored = p.user.clone();
    m.users.expect_update_user().never();
    m.users
        .expect_user_by_id()
        .returning(move |_| Ok(Some(stored.clone())));
    let (svc, _, _) = m.service(policy());
    assert_eq!(run(svc.update_profile(&p, None, None)).unwrap(), p.user);
}

#[test]
fn the_audit_trail_comes_in_pages_with_a_cursor_after_the_last_entry() {
    let mut m = Mocks::new();
    let record = |n: i64| AuditRecord {
        id: uuid::Uuid::now_v7(),
        at: t0() - Duration::seconds(n),
        event: "login_failed".into(),
        user: None,
        actor: None,
        request_id: None,
        ip: None,
        detail: None,
    };
    let stored = vec![record(1), record(2), record(3)];
    let handed = stored.clone();
    let filter = AuditFilter {
        user: None,
        event: Some(AuditEvent::LoginFailed),
    };
    m.audit
        .expect_audit_trail()
        .withf(move |f, after, limit| *f == filter && after.is_none() && *limit == 3)
        .times(1)
        .returning(move |_, _, _| Ok(handed.clone()));
    m.audit
        .expect_audit_trail()
        .withf(|_, _, limit| *limit == 4)
        .times(1)
        .returning(|_, _, _| Ok(Vec::new()));
    let (svc, _, _) = m.service(policy());
    let (page, next) = run(svc.audit_trail(filter, None, 2)).unwrap();
    assert_eq!(page, stored[..2]);
    assert_eq!(
        next,
        Some(AuditCursor {
            at: stored[1].at,
            id: stored[1].id
        })
    );
    let (last, none) = run(svc.audit_trail(AuditFilter::default(), next, 3)).unwrap();
    assert!(last.is_empty() && none.is_none());
}

#[test]
fn the_command_line_creates_verified_admins() {
    let mut m = Mocks::new();
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("h".into())));
    m.users.expect_insert_user().returning(|new, verification| {
        assert_eq!(verification, None, "nothing to verify, nothing mailed");
        Ok(User {
            id: new.id,
            email: new.email,
            display_name: new.display_name,
            role: new.role,
            email_verified: new.email_verified,
            is_active: true,
            notify_email: true,
            totp_enabled: false,
            created_at: new.created_at,
        })
    });
    let (svc, _, _) = m.service(policy());
    let admin = run(svc.create_user("root@example.com", pw(STRONG), Role::Admin, true)).unwrap();
    assert_eq!((admin.role, admin.email_verified), (Role::Admin, true));
    assert!(svc.policy().require_verified_email);
}

#[test]
fn the_command_line_is_told_of_a_taken_address_and_of_a_store_failure() {
    let mut m = Mocks::new();
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("h".into())));
    // Answers popped from the end: first taken, then the store fails.
    let mut answers = vec![
        Err(CreateUserError::Store(StoreError::Busy)),
        Err(CreateUserError::EmailTaken),
    ];
    m.users
        .expect_insert_user()
        .times(2)
        .returning(move |_, _| answers.pop().unwrap());
    let (svc, _, _) = m.service(policy());
    let create = || run(svc.create_user("root@example.com", pw(STRONG), Role::Admin, true));
    let taken = create();
    assert!(matches!(taken, Err(RegisterError::EmailTaken)), "{taken:?}");
    let failed = create();
    assert!(
        matches!(failed, Err(RegisterError::Store(StoreError::Busy))),
        "{failed:?}"
    );
}

#[test]
fn the_service_prints_its_policy_and_none_of_its_ports() {
    let (svc, _, _) = Mocks::new().service(policy());
    let printed = format!("{svc:?}");
    assert!(
        printed.starts_with("AuthService { policy: AuthPolicy { ")
            && printed.contains(r#"public_url: "https://auction.example""#)
            && printed.ends_with(" }, .. }"),
        "{printed}"
    );
    assert_eq!(format!("{:?}", svc.ports), "AuthPorts { .. }");
}

// ---------------------------------------------------------------- OpenID

fn vouched(email: Option<&str>, verified: bool) -> VerifiedIdentity {
    VerifiedIdentity {
        provider: ProviderName::parse("corp").unwrap(),
        subject: "sub-1".into(),
        email: email.map(str::to_owned),
        email_verified: verified,
        name: Some("Ann Provider".into()),
    }
}

/// `user`'s credentials read by id, and a session that starts.
fn sessions_start(m: &mut Mocks, user: &User) {
    let creds = credentials(user, LoginFailures::default());
    m.users
        .expect_credentials_by_id()
        .returning(move |_| Ok(Some(creds.clone())));
    m.sessions
        .expect_start_session()
        .returning(|_, _| Ok(SessionStart::Started));
}

/// The identity belongs to `user`.
fn linked_to(m: &mut Mocks, user: UserId) {
    m.identities
        .expect_account_of()
        .returning(move |_, _| Ok(Some(user)));
}

/// A new identity whose address nobody has: account creation is attempted.
fn unknown_identity(m: &mut Mocks) {
    m.identities.expect_account_of().returning(|_, _| Ok(None));
    m.users
        .expect_credentials_by_email()
        .returning(|_| Ok(None));
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$unknowable".into())));
}

#[test]
fn a_linked_identity_signs_in_to_its_account_and_is_audited() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    linked_to(&mut m, ann.id);
    m.identities.expect_create_account_with_identity().never();
    sessions_start(&mut m, &ann);
    let (svc, audited, _) = m.service(policy());
    let signed_in = run(svc.sign_in_with(&vouched(None, false), &ctx())).unwrap();
    let ProviderSignIn::Session(pair) = signed_in else {
        panic!("{signed_in:?}")
    };
    assert!(pair.access_token.starts_with("jwt-for-"));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLogin]);
}

#[test]
fn a_provider_sign_in_of_an_account_with_a_second_factor_waits_for_its_code() {
    let ann = User {
        totp_enabled: true,
        ..user(true, true)
    };
    let mut m = Mocks::new();
    linked_to(&mut m, ann.id);
    stored_by_id(&mut m.users, &ann, LoginFailures::default());
    m.sessions.expect_start_session().never();
    // The first challenge finds the password replaced meanwhile; the second
    // opens against the hash read again.
    let opened = Arc::new(Mutex::new(0));
    m.second_factors
        .expect_open_challenge()
        .times(2)
        .returning(move |challenge| {
            assert_eq!(challenge.verified.as_str(), "$argon2id$stored");
            let mut n = opened.lock().unwrap();
            *n += 1;
            Ok(*n == 2)
        });
    let (svc, audited, _) = m.service(policy());
    let signed_in = run(svc.sign_in_with(&vouched(None, false), &ctx())).unwrap();
    let ProviderSignIn::SecondFactorRequired(challenge) = signed_in else {
        panic!("{signed_in:?}")
    };
    assert_eq!(challenge.challenge.as_str(), "token-2");
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLogin]);
}

#[test]
fn a_first_sign_in_creates_a_verified_account_with_an_unknowable_password() {
    let mut m = Mocks::new();
    unknown_identity(&mut m);
    let created: Arc<Mutex<Option<User>>> = Arc::default();
    let keep = Arc::clone(&created);
    m.identities
        .expect_create_account_with_identity()
        .times(1)
        .returning(move |new, identity| {
            assert!(new.email_verified);
            assert_eq!(new.email.as_str(), "ann@example.com");
            assert_eq!(new.display_name, "Ann Provider");
            assert_eq!(new.role, Role::User);
            assert_eq!(new.password_hash.as_str(), "$argon2id$unknowable");
            assert_eq!(
                (identity.subject.as_str(), identity.user),
                ("sub-1", new.id)
            );
            let user = User {
                id: new.id,
                email: new.email,
                display_name: new.display_name,
                role: new.role,
                email_verified: true,
                is_active: true,
                notify_email: true,
                totp_enabled: false,
                created_at: new.created_at,
            };
            *keep.lock().unwrap() = Some(user.clone());
            Ok(NewAccountOutcome::Created(user))
        });
    let made = Arc::clone(&created);
    m.users.expect_credentials_by_id().returning(move |_| {
        Ok(made
            .lock()
            .unwrap()
            .as_ref()
            .map(|u| credentials(u, LoginFailures::default())))
    });
    m.sessions
        .expect_start_session()
        .times(1)
        .returning(|_, _| Ok(SessionStart::Started));
    let (svc, audited, _) = m.service(policy());
    run(svc.sign_in_with(&vouched(Some("Ann@Example.com"), true), &ctx())).unwrap();
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLogin]);
}

#[test]
fn a_nameless_identity_is_named_after_its_address() {
    let mut m = Mocks::new();
    unknown_identity(&mut m);
    m.identities
        .expect_create_account_with_identity()
        .times(1)
        .returning(|new, _| {
            assert_eq!(new.display_name, "ann");
            Ok(NewAccountOutcome::EmailTaken)
        });
    let (svc, _, _) = m.service(policy());
    let nameless = VerifiedIdentity {
        name: None,
        ..vouched(Some("ann@example.com"), true)
    };
    assert!(matches!(
        run(svc.sign_in_with(&nameless, &ctx())),
        Err(OidcError::AccountExists)
    ));
}

#[test]
fn a_new_identity_never_joins_an_existing_account_by_its_address() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    m.identities.expect_account_of().returning(|_, _| Ok(None));
    m.identities.expect_create_account_with_identity().never();
    m.identities.expect_link_identity().never();
    let creds = credentials(&ann, LoginFailures::default());
    m.users
        .expect_credentials_by_email()
        .returning(move |_| Ok(Some(creds.clone())));
    let (svc, audited, _) = m.service(policy());
    let refused = run(svc.sign_in_with(&vouched(Some("ann@example.com"), true), &ctx()));
    assert!(matches!(refused, Err(OidcError::AccountExists)));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLoginFailed]);
}

#[test]
fn an_address_taken_between_the_lookup_and_the_creation_is_account_exists() {
    let mut m = Mocks::new();
    unknown_identity(&mut m);
    m.identities
        .expect_create_account_with_identity()
        .times(1)
        .returning(|_, _| Ok(NewAccountOutcome::EmailTaken));
    let (svc, audited, _) = m.service(policy());
    let refused = run(svc.sign_in_with(&vouched(Some("ann@example.com"), true), &ctx()));
    assert!(matches!(refused, Err(OidcError::AccountExists)));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLoginFailed]);
}

#[test]
fn an_unverified_or_missing_address_creates_nothing() {
    for identity in [vouched(Some("ann@example.com"), false), vouched(None, true)] {
        let mut m = Mocks::new();
        m.identities.expect_account_of().returning(|_, _| Ok(None));
        m.identities.expect_create_account_with_identity().never();
        m.users.expect_credentials_by_email().never();
        let (svc, audited, _) = m.service(policy());
        let refused = run(svc.sign_in_with(&identity, &ctx()));
        assert!(matches!(refused, Err(OidcError::EmailNotVerified)));
        assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLoginFailed]);
    }
}

#[test]
fn a_concurrent_first_sign_in_ends_in_the_account_it_created() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    let id = ann.id;
    let mut lookups = vec![Some(id), None];
    m.identities
        .expect_account_of()
        .returning(move |_, _| Ok(lookups.pop().flatten()));
    m.users
        .expect_credentials_by_email()
        .returning(|_| Ok(None));
    m.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$x".into())));
    m.identities
        .expect_create_account_with_identity()
        .times(1)
        .returning(|_, _| Ok(NewAccountOutcome::IdentityInUse));
    sessions_start(&mut m, &ann);
    let (svc, _, _) = m.service(policy());
    run(svc.sign_in_with(&vouched(Some("ann@example.com"), true), &ctx())).unwrap();
}

#[test]
fn an_identity_linked_twice_meanwhile_or_lost_with_its_account_ends_in_a_refusal() {
    // Every creation loses to a concurrent one, yet no lookup finds it.
    let mut m = Mocks::new();
    unknown_identity(&mut m);
    m.identities
        .expect_create_account_with_identity()
        .times(2)
        .returning(|_, _| Ok(NewAccountOutcome::IdentityInUse));
    let (svc, _, _) = m.service(policy());
    let refused = run(svc.sign_in_with(&vouched(Some("ann@example.com"), true), &ctx()));
    assert!(matches!(refused, Err(OidcError::IdentityInUse)));

    // The identity's account is gone.
    let mut m = Mocks::new();
    linked_to(&mut m, UserId::generate());
    m.users.expect_credentials_by_id().returning(|_| Ok(None));
    m.sessions.expect_start_session().never();
    let (svc, audited, _) = m.service(policy());
    let refused = run(svc.sign_in_with(&vouched(None, false), &ctx()));
    assert!(matches!(refused, Err(OidcError::IdentityInUse)));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLoginFailed]);
}

#[test]
fn a_deactivated_account_cannot_sign_in_through_a_provider() {
    let ann = user(true, false);
    let mut m = Mocks::new();
    linked_to(&mut m, ann.id);
    let creds = credentials(&ann, LoginFailures::default());
    m.users
        .expect_credentials_by_id()
        .returning(move |_| Ok(Some(creds.clone())));
    m.sessions.expect_start_session().never();
    let (svc, audited, _) = m.service(policy());
    let refused = run(svc.sign_in_with(&vouched(None, false), &ctx()));
    assert!(matches!(refused, Err(OidcError::AccountDisabled)));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLoginFailed]);
}

#[test]
fn a_password_replaced_at_every_attempt_starts_no_provider_session() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    linked_to(&mut m, ann.id);
    let creds = credentials(&ann, LoginFailures::default());
    m.users
        .expect_credentials_by_id()
        .returning(move |_| Ok(Some(creds.clone())));
    m.sessions
        .expect_start_session()
        .times(2)
        .returning(|_, _| Ok(SessionStart::Stale));
    let (svc, audited, _) = m.service(policy());
    let refused = run(svc.sign_in_with(&vouched(None, false), &ctx()));
    assert!(matches!(refused, Err(OidcError::AccountDisabled)));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLoginFailed]);
}

#[test]
fn linking_reports_an_identity_of_another_account_and_a_second_of_one_provider() {
    let ann = user(true, true);
    let session = SessionId::generate();
    for (outcome, expected) in [
        (LinkOutcome::Linked, Ok(())),
        (LinkOutcome::AlreadyLinked, Ok(())),
        (LinkOutcome::InUse, Err("identity_in_use")),
        (LinkOutcome::ProviderTaken, Err("provider_already_linked")),
    ] {
        let mut m = Mocks::new();
        let holder = ann.clone();
        m.sessions
            .expect_active_session_user()
            .with(eq(session))
            .returning(move |_| Ok(Some(holder.clone())));
        m.identities
            .expect_link_identity()
            .times(1)
            .returning(move |_| Ok(outcome));
        let (svc, audited, _) = m.service(policy());
        let result = run(svc.link_identity(ann.id, session, &vouched(None, false), &ctx()));
        assert_eq!(result.map_err(|e| e.code()), expected);
        let event = if expected.is_ok() {
            AuditEvent::OidcLinked
        } else {
            AuditEvent::OidcLoginFailed
        };
        assert_eq!(*audited.lock().unwrap(), [event]);
    }
}

#[test]
fn a_link_whose_session_ended_meanwhile_links_nothing() {
    let ann = user(true, true);
    for holder in [None, Some(user(true, true))] {
        let mut m = Mocks::new();
        m.sessions
            .expect_active_session_user()
            .returning(move |_| Ok(holder.clone()));
        m.identities.expect_link_identity().never();
        let (svc, audited, _) = m.service(policy());
        let refused =
            run(svc.link_identity(ann.id, SessionId::generate(), &vouched(None, false), &ctx()));
        assert!(matches!(refused, Err(OidcError::InvalidTicket)));
        assert_eq!(*audited.lock().unwrap(), [AuditEvent::OidcLoginFailed]);
    }
}

#[test]
fn a_refusal_is_audited_with_its_reason_bounded() {
    let mut m = Mocks::new();
    let details: Recorded<Option<String>> = Arc::default();
    let seen = Arc::clone(&details);
    let mut audit = MockAuditLog::new();
    audit.expect_record().returning(move |entry| {
        seen.lock().unwrap().push(entry.detail);
        Ok(())
    });
    m.audit = audit;
    let (svc, _, _) = m.service(policy());
    let corp = ProviderName::parse("corp").unwrap();
    run(svc.audit_oidc_refusal(&corp, "invalid_token", Some(&"x".repeat(500)), None, &ctx()));
    run(svc.audit_oidc_refusal(&corp, "invalid_state", None, None, &ctx()));
    let details = details.lock().unwrap();
    assert_eq!(
        details[0].as_deref(),
        Some(format!("corp: invalid_token ({})", "x".repeat(200)).as_str())
    );
    assert_eq!(details[1].as_deref(), Some("corp: invalid_state"));
}

#[test]
fn unlinking_the_last_way_to_sign_in_is_refused() {
    let principal = Principal {
        user: user(true, true),
        session: SessionId::generate(),
        token: TokenId::generate(),
        expires_at: t0(),
    };
    let corp = ProviderName::parse("corp").unwrap();
    for (outcome, audited_events) in [
        (UnlinkOutcome::Unlinked, vec![AuditEvent::OidcUnlinked]),
        (UnlinkOutcome::NotLinked, vec![]),
        (UnlinkOutcome::LastMethod, vec![]),
    ] {
        let mut m = Mocks::new();
        m.identities
            .expect_unlink_identity()
            .times(1)
            .returning(move |_, _| Ok(outcome));
        let (svc, audited, _) = m.service(policy());
        let result = run(svc.unlink_identity(&principal, &corp, &ctx()));
        match outcome {
            UnlinkOutcome::Unlinked => assert!(result.is_ok()),
            UnlinkOutcome::NotLinked => assert!(matches!(result, Err(UnlinkError::NotLinked))),
            UnlinkOutcome::LastMethod => assert!(matches!(result, Err(UnlinkError::LastMethod))),
        }
        assert_eq!(*audited.lock().unwrap(), audited_events);
    }
}

#[test]
fn an_accounts_identities_are_read_from_the_store() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    let linked = crate::auth::identities::LinkedIdentity {
        provider: ProviderName::parse("corp").unwrap(),
        subject: "sub-1".into(),
        email: None,
        linked_at: t0(),
    };
    let listed = vec![linked.clone()];
    m.identities
        .expect_identities_of()
        .with(eq(ann.id))
        .returning(move |_| Ok(listed.clone()));
    let (svc, _, _) = m.service(policy());
    let principal = Principal {
        user: ann,
        session: SessionId::generate(),
        token: TokenId::generate(),
        expires_at: t0(),
    };
    assert_eq!(run(svc.identities(&principal)).unwrap(), [linked]);
}

mod second_factor;
