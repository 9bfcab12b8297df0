//! Second factors in the real store: a sealed secret confirmed once, each
//! code step and recovery code used once (also when two requests race),
//! challenges that lapse and close once, and a password change that closes
//! them.

use chrono::Duration;
use pp_domain::auth::second_factor::{NewChallenge, SecondFactorStore, TotpSecret, TotpStep};
use pp_domain::auth::tokens::TokenDigest;
use pp_domain::ports::{Clock, PasswordReplacement, UserStore};
use pp_domain::{PasswordHash, UserId};
use pp_testkit::Backend;

use crate::on_both_backends;
use crate::sealing::{dump, hex};
use crate::support::Harness;

const SECRET: &[u8; 20] = b"TOTP-SECRET-PLAINTXT";

fn secret() -> TotpSecret {
    TotpSecret::from_bytes(SECRET.to_vec())
}

fn codes(n: u8) -> Vec<TokenDigest> {
    (1..=n).map(|i| TokenDigest([i; 32])).collect()
}

async fn enabled(h: &Harness, user: UserId) -> bool {
    h.store
        .user_by_id(user)
        .await
        .unwrap()
        .unwrap()
        .totp_enabled
}

async fn a_secret_is_sealed_confirmed_once_and_turns_logins_to_two_steps(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let now = h.clock.now();
    let store = &h.store;
    assert!(store.totp(ann.id).await.unwrap().is_none());
    assert!(
        store
            .save_unconfirmed_totp(ann.id, &secret(), now)
            .await
            .unwrap()
    );
    // A second start replaces the unconfirmed secret.
    let other = TotpSecret::from_bytes(vec![9; 20]);
    assert!(
        store
            .save_unconfirmed_totp(ann.id, &other, now)
            .await
            .unwrap()
    );
    assert!(
        store
            .save_unconfirmed_totp(ann.id, &secret(), now)
            .await
            .unwrap()
    );
    let stored = store.totp(ann.id).await.unwrap().unwrap();
    assert_eq!((stored.secret, stored.confirmed), (secret(), false));
    assert!(!enabled(&h, ann.id).await);
    // A code cannot be used before the secret is confirmed.
    assert!(!store.use_totp_step(ann.id, TotpStep(10)).await.unwrap());

    assert!(
        store
            .confirm_totp(ann.id, TotpStep(10), codes(10), now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .confirm_totp(ann.id, TotpStep(11), codes(10), now)
            .await
            .unwrap()
    );
    assert!(store.totp(ann.id).await.unwrap().unwrap().confirmed);
    assert!(enabled(&h, ann.id).await);
    assert_eq!(store.recovery_codes_left(ann.id).await.unwrap(), 10);
    // Once on, a new enrolment is refused: turning it off comes first.
    assert!(
        !store
            .save_unconfirmed_totp(ann.id, &other, now)
            .await
            .unwrap()
    );

    let raw = dump(&h, "totp_credentials").await;
    assert!(!raw.contains("TOTP-SECRET"), "{raw}");
    assert!(!raw.contains(&hex(SECRET)), "{raw}");

    // The step that confirmed it is spent; only later ones pass, once.
    assert!(!store.use_totp_step(ann.id, TotpStep(10)).await.unwrap());
    assert!(store.use_totp_step(ann.id, TotpStep(11)).await.unwrap());
    assert!(!store.use_totp_step(ann.id, TotpStep(11)).await.unwrap());
    assert!(!store.use_totp_step(ann.id, TotpStep(9)).await.unwrap());

    assert!(store.remove_totp(ann.id).await.unwrap());
    assert!(!store.remove_totp(ann.id).await.unwrap());
    assert!(store.totp(ann.id).await.unwrap().is_none());
    assert!(!enabled(&h, ann.id).await);
    assert_eq!(store.recovery_codes_left(ann.id).await.unwrap(), 0);
}

async fn a_recovery_code_is_used_once_and_only_by_its_account(backend: Backend) {
    let h = Harness::new(backend).await;
    let [ann, bob] = <[_; 2]>::try_from(h.bidders(2).await).unwrap();
    let now = h.clock.now();
    let store = &h.store;
    store
        .save_unconfirmed_totp(ann.id, &secret(), now)
        .await
        .unwrap();
    store
        .confirm_totp(ann.id, TotpStep(1), codes(10), now)
        .await
        .unwrap();
    let code = TokenDigest([3; 32]);
    assert!(!store.use_recovery_code(bob.id, code, now).await.unwrap());
    assert!(store.use_recovery_code(ann.id, code, now).await.unwrap());
    assert!(!store.use_recovery_code(ann.id, code, now).await.unwrap());
    assert!(
        !store
            .use_recovery_code(ann.id, TokenDigest([99; 32]), now)
            .await
            .unwrap()
    );
    assert_eq!(store.recovery_codes_left(ann.id).await.unwrap(), 9);
}

async fn two_requests_with_one_code_or_one_recovery_code_pass_once(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let now = h.clock.now();
    let store = &h.store;
    store
        .save_unconfirmed_totp(ann.id, &secret(), now)
        .await
        .unwrap();
    store
        .confirm_totp(ann.id, TotpStep(1), codes(10), now)
        .await
        .unwrap();
    for round in 0..5 {
        let step = TotpStep(100 + round);
        let code = TokenDigest([u8::try_from(round).unwrap() + 1; 32]);
        let (a, b, c, d) = tokio::join!(
            store.use_totp_step(ann.id, step),
            store.use_totp_step(ann.id, step),
            store.use_recovery_code(ann.id, code, now),
            store.use_recovery_code(ann.id, code, now),
        );
        assert!(a.unwrap() ^ b.unwrap(), "round {round}: one code use");
        assert!(c.unwrap() ^ d.unwrap(), "round {round}: one recovery use");
    }
}

async fn challenges_lapse_close_once_and_die_with_a_new_password(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let now = h.clock.now();
    let store = &h.store;
    let hash = h
        .store
        .credentials_by_id(ann.id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let open = |byte: u8, at| NewChallenge {
        digest: TokenDigest([byte; 32]),
        user: ann.id,
        issued_at: at,
        expires_at: at + Duration::minutes(5),
        verified: hash.clone(),
    };
    assert!(store.open_challenge(open(1, now)).await.unwrap());
    assert_eq!(
        store
            .challenge_user(TokenDigest([1; 32]), now)
            .await
            .unwrap(),
        Some(ann.id)
    );
    assert_eq!(
        store
            .challenge_user(TokenDigest([2; 32]), now)
            .await
            .unwrap(),
        None
    );
    let later = now + Duration::minutes(6);
    assert_eq!(
        store
            .challenge_user(TokenDigest([1; 32]), later)
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .close_challenge(TokenDigest([1; 32]), later)
            .await
            .unwrap()
    );
    assert!(
        store
            .close_challenge(TokenDigest([1; 32]), now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .close_challenge(TokenDigest([1; 32]), now)
            .await
            .unwrap()
    );

    // A new challenge sweeps the account's lapsed ones.
    assert!(store.open_challenge(open(3, now)).await.unwrap());
    assert!(store.open_challenge(open(4, later)).await.unwrap());
    let raw = dump(&h, "mfa_challenges").await;
    assert!(!raw.contains(&hex(&[3; 32])), "{raw}");
    assert!(raw.contains(&hex(&[4; 32])), "{raw}");

    // A new password closes what is open.
    h.store
        .replace_password(PasswordReplacement {
            user: ann.id,
            hash: PasswordHash::new("$argon2id$replaced".into()),
            at: later,
            keep_session: None,
            link: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .challenge_user(TokenDigest([4; 32]), later)
            .await
            .unwrap(),
        None
    );
}

on_both_backends!(
    a_secret_is_sealed_confirmed_once_and_turns_logins_to_two_steps,
    a_recovery_code_is_used_once_and_only_by_its_account,
    two_requests_with_one_code_or_one_recovery_code_pass_once,
    challenges_lapse_close_once_and_die_with_a_new_password,
);
