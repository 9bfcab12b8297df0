//! The second factor: challenged logins, enrolment, turning it off, and
//! the admin rule.

use super::*;
use crate::auth::second_factor::{
    CHALLENGE_LIFETIME, IssuedChallenge, SecondFactorProof, SecondFactorStatus, TotpCredential,
    TotpEnrolment, TotpSecret, TotpStep,
};

fn enrolled(user: User) -> User {
    User {
        totp_enabled: true,
        ..user
    }
}

fn the_secret() -> TotpSecret {
    TotpSecret::from_bytes(vec![7; 20])
}

fn credential(confirmed: bool) -> TotpCredential {
    TotpCredential {
        secret: the_secret(),
        confirmed,
    }
}

fn code(digits: &str) -> SecondFactorProof {
    SecondFactorProof::Code(digits.into())
}

fn recovery(text: &str) -> SecondFactorProof {
    SecondFactorProof::RecoveryCode(Zeroizing::new(text.into()))
}

/// The authenticator code "123456" is the one of step 42; nothing else is.
fn codes_accept_123456(codes: &mut MockOneTimeCodes) {
    codes
        .expect_check()
        .withf(|secret, code, now| *secret == the_secret() && *now == t0() && code == "123456")
        .returning(|_, _, _| Some(TotpStep(42)));
    codes.expect_check().returning(|_, _, _| None);
}

#[test]
fn a_login_of_an_enrolled_account_gets_a_challenge_and_keeps_its_failure_count() {
    let ann = enrolled(user(true, true));
    let failures = LoginFailures {
        consecutive: 3,
        locked_until: None,
    };
    let mut m = Mocks::new();
    let stored = ann.clone();
    m.users
        .expect_credentials_by_email()
        .returning(move |_| Ok(Some(credentials(&stored, failures))));
    stored_by_id(&mut m.users, &ann, failures);
    m.hasher.expect_verify().returning(|_, _| {
        Ok(Verification::Valid {
            needs_rehash: false,
        })
    });
    // Guessed codes must add up: the password alone clears nothing.
    m.users.expect_clear_login_failures().never();
    m.sessions.expect_start_session().never();
    let id = ann.id;
    m.second_factors
        .expect_open_challenge()
        .withf(move |challenge| {
            challenge.user == id
                && challenge.digest == TokenDigest([1; 32])
                && challenge.issued_at == t0()
                && challenge.expires_at == t0() + Duration::minutes(5)
                && challenge.verified.as_str() == "$argon2id$stored"
        })
        .times(1)
        .returning(|_| Ok(true));
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.login("ann@example.com", &pw(STRONG), &ctx()));
    let Err(LoginError::SecondFactorRequired(issued)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(issued.challenge.as_str(), "token-1");
    assert_eq!(issued.expires_in, CHALLENGE_LIFETIME);
    assert!(!format!("{issued:?}").contains("token-1"));
    assert!(audited.lock().unwrap().is_empty());
}

/// A service whose challenge "challenge" (well formed) is `ann`'s, with
/// `failures`, where "123456" is the current code of a secret `confirmed`
/// or not, used up unless `replayed`.
fn challenged(ann: &User, failures: LoginFailures, confirmed: bool, replayed: bool) -> Mocks {
    let mut m = Mocks::new();
    m.secrets
        .expect_well_formed()
        .returning(|plain| plain == "challenge");
    let id = ann.id;
    m.second_factors
        .expect_challenge_user()
        .withf(|digest, now| *digest == TokenDigest([9; 32]) && *now == t0())
        .returning(move |_, _| Ok(Some(id)));
    stored_by_id(&mut m.users, ann, failures);
    m.second_factors
        .expect_totp()
        .with(eq(id))
        .returning(move |_| Ok(Some(credential(confirmed))));
    codes_accept_123456(&mut m.codes);
    m.second_factors
        .expect_use_totp_step()
        .with(eq(id), eq(TotpStep(42)))
        .returning(move |_, _| Ok(!replayed));
    m
}

/// Expects the session that a right code starts for `ann`.
fn session_starts(m: &mut Mocks, ann: &User) {
    let id = ann.id;
    m.second_factors
        .expect_close_challenge()
        .withf(|digest, _| *digest == TokenDigest([9; 32]))
        .times(1)
        .returning(|_, _| Ok(true));
    m.users
        .expect_clear_login_failures()
        .with(eq(id))
        .times(1)
        .returning(|_| Ok(()));
    m.sessions
        .expect_start_session()
        .withf(move |first, hash| first.user == id && hash.as_str() == "$argon2id$stored")
        .times(1)
        .returning(|_, _| Ok(SessionStart::Started));
}

#[test]
fn a_login_overtaken_by_a_new_password_gets_no_challenge() {
    let ann = enrolled(user(true, true));
    let mut m = Mocks::new();
    credentials_then(&mut m, &ann, LoginFailures::default());
    m.hasher.expect_verify().returning(|_, _| {
        Ok(Verification::Valid {
            needs_rehash: false,
        })
    });
    m.second_factors
        .expect_open_challenge()
        .returning(|_| Ok(false));
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.login("ann@example.com", &pw(STRONG), &ctx()));
    assert!(
        matches!(result, Err(LoginError::InvalidCredentials)),
        "{result:?}"
    );
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);
}

#[test]
fn a_right_code_sent_with_guesses_that_locked_the_account_meets_the_lock() {
    let ann = enrolled(user(true, true));
    let mut m = Mocks::new();
    m.secrets.expect_well_formed().returning(|_| true);
    let id = ann.id;
    m.second_factors
        .expect_challenge_user()
        .returning(move |_, _| Ok(Some(id)));
    // Unlocked when the request began; locked by the time its code passed.
    let reads = Arc::new(Mutex::new(0));
    let stored = ann.clone();
    m.users.expect_credentials_by_id().returning(move |_| {
        let mut n = reads.lock().unwrap();
        *n += 1;
        let failures = if *n == 1 {
            LoginFailures::default()
        } else {
            LoginFailures {
                consecutive: 5,
                locked_until: Some(t0() + Duration::seconds(60)),
            }
        };
        Ok(Some(credentials(&stored, failures)))
    });
    m.second_factors
        .expect_totp()
        .returning(|_| Ok(Some(credential(true))));
    codes_accept_123456(&mut m.codes);
    m.second_factors
        .expect_use_totp_step()
        .returning(|_, _| Ok(true));
    m.second_factors.expect_close_challenge().never();
    m.users.expect_clear_login_failures().never();
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("123456"), &ctx()));
    assert!(
        matches!(result, Err(SecondFactorError::Locked { retry_after }) if retry_after == Duration::seconds(60))
    );
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);
}

#[test]
fn an_account_without_a_known_password_is_told_to_set_one_before_enrolling() {
    let ann = user(true, true);
    let mut m = Mocks::new();
    let stored = ann.clone();
    m.users.expect_credentials_by_id().returning(move |_| {
        Ok(Some(Credentials {
            password_set: false,
            ..credentials(&stored, LoginFailures::default())
        }))
    });
    m.hasher.expect_verify().never();
    m.users.expect_record_wrong_password().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.begin_second_factor(&principal(ann), &pw(STRONG), &ctx()));
    assert!(
        matches!(result, Err(SecondFactorError::PasswordNotSet)),
        "{result:?}"
    );
}

#[test]
fn a_right_code_completes_the_login_with_a_session_and_clears_the_failures() {
    let ann = enrolled(user(true, true));
    let failures = LoginFailures {
        consecutive: 2,
        locked_until: None,
    };
    let mut m = challenged(&ann, failures, true, false);
    session_starts(&mut m, &ann);
    let (svc, audited, _) = m.service(policy());
    let pair = run(svc.complete_login("challenge", &code("123456"), &ctx())).unwrap();
    assert!(pair.access_token.starts_with("jwt-for-"));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginSucceeded]);
}

#[test]
fn a_replayed_or_wrong_code_is_counted_and_leaves_the_challenge_open() {
    for (digits, replayed) in [("123456", true), ("654321", false)] {
        let ann = enrolled(user(true, true));
        let mut m = challenged(&ann, LoginFailures::default(), true, replayed);
        counts_failure(&mut m.users, ann.id, 1, None);
        m.second_factors.expect_close_challenge().never();
        m.sessions.expect_start_session().never();
        let (svc, audited, _) = m.service(policy());
        let result = run(svc.complete_login("challenge", &code(digits), &ctx()));
        assert!(
            matches!(result, Err(SecondFactorError::InvalidCode)),
            "{digits}: {result:?}"
        );
        assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);
    }
}

#[test]
fn wrong_codes_lock_the_account_like_wrong_passwords() {
    let ann = enrolled(user(true, true));
    let mut m = challenged(&ann, LoginFailures::default(), true, false);
    counts_failure(&mut m.users, ann.id, 5, Some(Duration::minutes(1)));
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("000000"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::InvalidCode)));
    assert_eq!(
        *audited.lock().unwrap(),
        [AuditEvent::LoginFailed, AuditEvent::AccountLocked]
    );

    // Concurrent guesses locked it meanwhile.
    let mut m = challenged(&ann, LoginFailures::default(), true, false);
    m.users.expect_record_wrong_password().returning(|_, _, _| {
        Ok(FailedAttempt::AlreadyLocked {
            retry_after: Duration::seconds(30),
        })
    });
    let (svc, _, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("000000"), &ctx()));
    assert!(
        matches!(result, Err(SecondFactorError::Locked { retry_after }) if retry_after == Duration::seconds(30))
    );
}

#[test]
fn a_locked_account_is_refused_without_looking_at_the_code() {
    let ann = enrolled(user(true, true));
    let locked = LoginFailures {
        consecutive: 5,
        locked_until: Some(t0() + Duration::seconds(45)),
    };
    let mut m = Mocks::new();
    m.secrets.expect_well_formed().returning(|_| true);
    let id = ann.id;
    m.second_factors
        .expect_challenge_user()
        .returning(move |_, _| Ok(Some(id)));
    stored_by_id(&mut m.users, &ann, locked);
    m.second_factors.expect_totp().never();
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("123456"), &ctx()));
    assert!(
        matches!(result, Err(SecondFactorError::Locked { retry_after }) if retry_after == Duration::seconds(45))
    );
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);
}

#[test]
fn a_malformed_unknown_or_orphaned_challenge_is_refused() {
    let mut m = Mocks::new();
    m.secrets.expect_well_formed().returning(|_| false);
    m.second_factors.expect_challenge_user().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.complete_login("x", &code("123456"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::InvalidChallenge)));

    let mut m = Mocks::new();
    m.secrets.expect_well_formed().returning(|_| true);
    m.second_factors
        .expect_challenge_user()
        .returning(|_, _| Ok(None));
    let (svc, _, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("123456"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::InvalidChallenge)));

    // Its account is gone.
    let mut m = Mocks::new();
    m.secrets.expect_well_formed().returning(|_| true);
    m.second_factors
        .expect_challenge_user()
        .returning(|_, _| Ok(Some(UserId::generate())));
    m.users.expect_credentials_by_id().returning(|_| Ok(None));
    let (svc, _, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("123456"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::InvalidChallenge)));
}

#[test]
fn a_recovery_code_completes_the_login_once() {
    for unused in [true, false] {
        let ann = enrolled(user(true, true));
        let mut m = challenged(&ann, LoginFailures::default(), true, false);
        m.codes
            .expect_recovery_digest()
            .withf(|code| code == "abcde-fghij")
            .returning(|_| TokenDigest([5; 32]));
        m.second_factors
            .expect_use_recovery_code()
            .with(eq(ann.id), eq(TokenDigest([5; 32])), eq(t0()))
            .times(1)
            .returning(move |_, _, _| Ok(unused));
        if unused {
            session_starts(&mut m, &ann);
        } else {
            counts_failure(&mut m.users, ann.id, 1, None);
        }
        let (svc, audited, _) = m.service(policy());
        let result = run(svc.complete_login("challenge", &recovery("abcde-fghij"), &ctx()));
        if unused {
            assert!(result.is_ok(), "{result:?}");
            assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginSucceeded]);
        } else {
            assert!(matches!(result, Err(SecondFactorError::InvalidCode)));
        }
    }
}

#[test]
fn a_code_of_an_unconfirmed_or_missing_secret_is_wrong() {
    let ann = enrolled(user(true, true));
    let mut m = challenged(&ann, LoginFailures::default(), false, false);
    m.second_factors.expect_use_totp_step().never();
    counts_failure(&mut m.users, ann.id, 1, None);
    let (svc, _, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("123456"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::InvalidCode)));

    let mut m = Mocks::new();
    m.secrets.expect_well_formed().returning(|_| true);
    let id = ann.id;
    m.second_factors
        .expect_challenge_user()
        .returning(move |_, _| Ok(Some(id)));
    stored_by_id(&mut m.users, &ann, LoginFailures::default());
    m.second_factors.expect_totp().returning(|_| Ok(None));
    counts_failure(&mut m.users, ann.id, 1, None);
    let (svc, _, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("123456"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::InvalidCode)));
}

#[test]
fn a_challenge_closed_meanwhile_a_deactivated_account_or_a_new_password_gets_no_session() {
    let ann = enrolled(user(true, true));
    let mut m = challenged(&ann, LoginFailures::default(), true, false);
    m.second_factors
        .expect_close_challenge()
        .returning(|_, _| Ok(false));
    m.sessions.expect_start_session().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("123456"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::InvalidChallenge)));

    let gone = enrolled(user(true, false));
    let mut m = challenged(&gone, LoginFailures::default(), true, false);
    m.second_factors
        .expect_close_challenge()
        .returning(|_, _| Ok(true));
    m.users.expect_clear_login_failures().never();
    m.sessions.expect_start_session().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("123456"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::AccountDisabled)));

    let mut m = challenged(&ann, LoginFailures::default(), true, false);
    m.second_factors
        .expect_close_challenge()
        .returning(|_, _| Ok(true));
    m.users.expect_clear_login_failures().returning(|_| Ok(()));
    m.sessions
        .expect_start_session()
        .returning(|_, _| Ok(SessionStart::Stale));
    let (svc, audited, _) = m.service(policy());
    let result = run(svc.complete_login("challenge", &code("123456"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::InvalidChallenge)));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);
}

#[test]
fn admin_routes_need_an_admin_with_a_second_factor_when_the_policy_says_so() {
    let strict = AuthPolicy {
        require_admin_second_factor: true,
        ..policy()
    };
    let (svc, _, _) = Mocks::new().service(strict);
    assert_eq!(
        svc.admin_access(&principal(user(true, true))),
        Err(AdminRefusal::NotAdmin)
    );
    assert_eq!(
        svc.admin_access(&admin()),
        Err(AdminRefusal::SecondFactorRequired)
    );
    let mut with_factor = admin();
    with_factor.user.totp_enabled = true;
    assert_eq!(svc.admin_access(&with_factor), Ok(()));
    let (lax, _, _) = Mocks::new().service(policy());
    assert_eq!(lax.admin_access(&admin()), Ok(()));
}

/// `ann`'s password checks as `right` (unlocked unless `locked`).
fn password_is(m: &mut Mocks, ann: &User, right: bool, locked: bool) {
    let failures = LoginFailures {
        consecutive: if locked { 5 } else { 0 },
        locked_until: locked.then(|| t0() + Duration::seconds(20)),
    };
    stored_by_id(&mut m.users, ann, failures);
    m.hasher.expect_verify().returning(move |_, _| {
        Ok(if right {
            Verification::Valid {
                needs_rehash: false,
            }
        } else {
            Verification::Invalid
        })
    });
    if !right {
        counts_failure(&mut m.users, ann.id, 1, None);
    }
}

fn enrolment() -> TotpEnrolment {
    TotpEnrolment {
        secret: Zeroizing::new("BASE32SECRET".into()),
        uri: Zeroizing::new("otpauth://totp/x".into()),
    }
}

#[test]
fn enrolment_needs_the_password_and_stores_an_unconfirmed_secret() {
    let ann = user(true, true);
    let id = ann.id;
    let mut m = Mocks::new();
    password_is(&mut m, &ann, true, false);
    m.codes.expect_new_secret().returning(the_secret);
    m.second_factors
        .expect_save_unconfirmed_totp()
        .withf(move |user, secret, now| *user == id && *secret == the_secret() && *now == t0())
        .times(1)
        .returning(|_, _, _| Ok(true));
    m.codes
        .expect_enrolment()
        .withf(|secret, account| *secret == the_secret() && account == "ann@example.com")
        .returning(|_, _| Ok(enrolment()));
    let (svc, _, _) = m.service(policy());
    let shown = run(svc.begin_second_factor(&principal(ann), &pw(STRONG), &ctx()));
    let shown = shown.unwrap();
    assert_eq!(shown.secret.as_str(), "BASE32SECRET");
    assert_eq!(format!("{shown:?}"), "TotpEnrolment(..)");
}

#[test]
fn enrolment_is_refused_when_on_already_for_a_wrong_password_or_when_locked() {
    let (svc, _, _) = Mocks::new().service(policy());
    let on = principal(enrolled(user(true, true)));
    let result = run(svc.begin_second_factor(&on, &pw(STRONG), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::AlreadyEnabled)));

    let ann = user(true, true);
    let mut m = Mocks::new();
    password_is(&mut m, &ann, false, false);
    m.second_factors.expect_save_unconfirmed_totp().never();
    let (svc, _, _) = m.service(policy());
    let result = run(svc.begin_second_factor(&principal(ann.clone()), &pw("x"), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::WrongPassword)));

    let mut m = Mocks::new();
    password_is(&mut m, &ann, true, true);
    let (svc, _, _) = m.service(policy());
    let result = run(svc.begin_second_factor(&principal(ann.clone()), &pw(STRONG), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::Locked { .. })));

    let mut m = Mocks::new();
    m.users.expect_credentials_by_id().returning(|_| Ok(None));
    let (svc, _, _) = m.service(policy());
    let result = run(svc.begin_second_factor(&principal(ann.clone()), &pw(STRONG), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::WrongPassword)));

    // Confirmed by another request meanwhile.
    let mut m = Mocks::new();
    password_is(&mut m, &ann, true, false);
    m.codes.expect_new_secret().returning(the_secret);
    m.second_factors
        .expect_save_unconfirmed_totp()
        .returning(|_, _, _| Ok(false));
    let (svc, _, _) = m.service(policy());
    let result = run(svc.begin_second_factor(&principal(ann), &pw(STRONG), &ctx()));
    assert!(matches!(result, Err(SecondFactorError::AlreadyEnabled)));
}

#[test]
fn a_first_right_code_turns_the_factor_on_with_ten_recovery_codes() {
    let ann = user(true, true);
    let id = ann.id;
    let mut m = Mocks::new();
    m.second_factors
        .expect_totp()
        .returning(|_| Ok(Some(credential(false))));
    codes_accept_123456(&mut m.codes);
    m.codes.expect_recovery_codes().with(eq(10)).returning(|n| {
        (0..n)
            .map(|i| Zeroizing::new(format!("code-{i}")))
            .collect()
    });
    m.codes
        .expect_recovery_digest()
        .returning(|code| TokenDigest([code.len() as u8; 32]));
    m.second_factors
        .expect_confirm_totp()
        .withf(move |user, step, digests, now| {
            *user == id && *step == TotpStep(42) && digests.len() == 10 && *now == t0()
        })
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    let (svc, audited, _) = m.service(policy());
    let codes = run(svc.confirm_second_factor(&principal(ann), "123456", &ctx())).unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(codes[9].as_str(), "code-9");
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::SecondFactorEnabled]);
}

#[test]
fn confirming_needs_an_enrolment_not_yet_confirmed_and_its_right_code() {
    let ann = user(true, true);
    for (stored, digits, confirmed_meanwhile) in [
        (None, "123456", false),
        (Some(true), "123456", false),
        (Some(false), "999999", false),
        (Some(false), "123456", true),
    ] {
        let mut m = Mocks::new();
        m.second_factors
            .expect_totp()
            .returning(move |_| Ok(stored.map(credential)));
        codes_accept_123456(&mut m.codes);
        m.codes
            .expect_recovery_codes()
            .returning(|_| vec![Zeroizing::new("c".into())]);
        m.codes
            .expect_recovery_digest()
            .returning(|_| TokenDigest([1; 32]));
        m.second_factors
            .expect_confirm_totp()
            .returning(move |_, _, _, _| Ok(!confirmed_meanwhile));
        let (svc, audited, _) = m.service(policy());
        let result = run(svc.confirm_second_factor(&principal(ann.clone()), digits, &ctx()));
        let expected = match (stored, digits) {
            (None, _) => matches!(result, Err(SecondFactorError::NotEnabled)),
            (Some(false), "999999") => matches!(result, Err(SecondFactorError::InvalidCode)),
            _ => matches!(result, Err(SecondFactorError::AlreadyEnabled)),
        };
        assert!(expected, "{stored:?} {digits}: {result:?}");
        assert!(audited.lock().unwrap().is_empty());
    }
}

#[test]
fn the_factor_turns_off_with_the_password_or_a_code() {
    let ann = enrolled(user(true, true));
    for proof in [
        SecondFactorOff::Password(pw(STRONG)),
        SecondFactorOff::Proof(code("123456")),
    ] {
        let mut m = challenged(&ann, LoginFailures::default(), true, false);
        m.hasher.expect_verify().returning(|_, _| {
            Ok(Verification::Valid {
                needs_rehash: false,
            })
        });
        m.second_factors
            .expect_remove_totp()
            .with(eq(ann.id))
            .times(1)
            .returning(|_| Ok(true));
        let (svc, audited, _) = m.service(policy());
        let result = run(svc.disable_second_factor(&principal(ann.clone()), proof, &ctx()));
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(*audited.lock().unwrap(), [AuditEvent::SecondFactorDisabled]);
    }
}

#[test]
fn turning_off_is_refused_without_a_right_proof_and_counts_it() {
    let ann = enrolled(user(true, true));
    let (svc, _, _) = Mocks::new().service(policy());
    let off = SecondFactorOff::Password(pw(STRONG));
    let result = run(svc.disable_second_factor(&principal(user(true, true)), off, &ctx()));
    assert!(matches!(result, Err(SecondFactorError::NotEnabled)));

    let mut m = Mocks::new();
    password_is(&mut m, &ann, false, false);
    m.second_factors.expect_remove_totp().never();
    let (svc, _, _) = m.service(policy());
    let off = SecondFactorOff::Password(pw("wrong"));
    let result = run(svc.disable_second_factor(&principal(ann.clone()), off, &ctx()));
    assert!(matches!(result, Err(SecondFactorError::WrongPassword)));

    let mut m = challenged(&ann, LoginFailures::default(), true, false);
    counts_failure(&mut m.users, ann.id, 1, None);
    m.second_factors.expect_remove_totp().never();
    let (svc, audited, _) = m.service(policy());
    let off = SecondFactorOff::Proof(code("000000"));
    let result = run(svc.disable_second_factor(&principal(ann.clone()), off, &ctx()));
    assert!(matches!(result, Err(SecondFactorError::InvalidCode)));
    assert_eq!(*audited.lock().unwrap(), [AuditEvent::LoginFailed]);

    let locked = LoginFailures {
        consecutive: 5,
        locked_until: Some(t0() + Duration::seconds(10)),
    };
    let mut m = challenged(&ann, locked, true, false);
    m.second_factors.expect_use_totp_step().never();
    let (svc, _, _) = m.service(policy());
    let off = SecondFactorOff::Proof(code("123456"));
    let result = run(svc.disable_second_factor(&principal(ann.clone()), off, &ctx()));
    assert!(matches!(result, Err(SecondFactorError::Locked { .. })));

    // Turned off by another request meanwhile.
    let mut m = challenged(&ann, LoginFailures::default(), true, false);
    m.second_factors
        .expect_remove_totp()
        .returning(|_| Ok(false));
    let (svc, audited, _) = m.service(policy());
    let off = SecondFactorOff::Proof(code("123456"));
    let result = run(svc.disable_second_factor(&principal(ann), off, &ctx()));
    assert!(matches!(result, Err(SecondFactorError::NotEnabled)));
    assert!(audited.lock().unwrap().is_empty());
}

#[test]
fn the_status_counts_recovery_codes_of_an_account_with_the_factor_on() {
    let ann = enrolled(user(true, true));
    let mut m = Mocks::new();
    m.second_factors
        .expect_recovery_codes_left()
        .with(eq(ann.id))
        .times(1)
        .returning(|_| Ok(7));
    let (svc, _, _) = m.service(policy());
    assert_eq!(
        run(svc.second_factor_status(&principal(ann))).unwrap(),
        SecondFactorStatus {
            enabled: true,
            recovery_codes_left: 7
        }
    );
    let (svc, _, _) = Mocks::new().service(policy());
    let off = run(svc.second_factor_status(&principal(user(true, true)))).unwrap();
    assert_eq!((off.enabled, off.recovery_codes_left), (false, 0));
}

#[test]
fn secrets_and_codes_never_print() {
    let secret = the_secret();
    assert_eq!(secret.as_bytes(), [7; 20]);
    assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
    assert_eq!(format!("{:?}", code("123456")), "Code(..)");
    assert_eq!(format!("{:?}", recovery("abc")), "RecoveryCode(..)");
    let issued = IssuedChallenge {
        challenge: Zeroizing::new("secret".into()),
        expires_in: CHALLENGE_LIFETIME,
    };
    assert!(!format!("{issued:?}").contains("secret"));
}
