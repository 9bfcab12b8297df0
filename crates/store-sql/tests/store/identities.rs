//! Identities linked from OpenID providers, in the real store.

use pp_domain::auth::identities::{
    IdentityStore, LinkOutcome, NewAccountOutcome, NewIdentity, ProviderName, UnlinkOutcome,
};
use pp_domain::ports::PasswordReplacement;
use pp_domain::{Email, NewUser, PasswordHash, Role, UserId};
use pp_testkit::Backend;

use crate::on_both_backends;
use crate::support::Harness;

fn provider(name: &str) -> ProviderName {
    ProviderName::parse(name).unwrap()
}

fn identity(name: &str, subject: &str, user: UserId) -> NewIdentity {
    NewIdentity {
        provider: provider(name),
        subject: subject.into(),
        user,
        email: Some(format!("{subject}@idp.test")),
        linked_at: chrono::Utc::now(),
    }
}

fn newcomer(email: &str) -> NewUser {
    NewUser {
        id: UserId::generate(),
        email: Email::parse(email).unwrap(),
        display_name: "Nia".into(),
        password_hash: PasswordHash::new("$argon2id$unknowable".into()),
        role: Role::User,
        email_verified: true,
        created_at: chrono::Utc::now(),
    }
}

async fn a_first_sign_in_stores_the_account_and_its_identity_together(backend: Backend) {
    let h = Harness::new(backend).await;
    let nia = newcomer("nia@example.com");
    let id = nia.id;
    let created = h
        .store
        .create_account_with_identity(nia, identity("corp", "nia", id))
        .await
        .unwrap();
    let NewAccountOutcome::Created(user) = created else {
        panic!("{created:?}")
    };
    assert!(user.email_verified);
    assert_eq!(
        h.store.account_of(&provider("corp"), "nia").await.unwrap(),
        Some(id)
    );
    // The same identity again (a concurrent first sign-in), or the address
    // of an existing account: nothing is stored.
    let again = newcomer("other@example.com");
    let other = again.id;
    assert_eq!(
        h.store
            .create_account_with_identity(again, identity("corp", "nia", other))
            .await
            .unwrap(),
        NewAccountOutcome::IdentityInUse
    );
    assert_eq!(h.users().user_by_id(other).await.unwrap(), None);
    let taken = newcomer("NIA@example.com");
    let taken_id = taken.id;
    assert_eq!(
        h.store
            .create_account_with_identity(taken, identity("corp", "someone-else", taken_id))
            .await
            .unwrap(),
        NewAccountOutcome::EmailTaken
    );
    assert_eq!(
        h.store
            .account_of(&provider("corp"), "someone-else")
            .await
            .unwrap(),
        None,
        "no identity without its account"
    );
}

async fn linking_tells_mine_from_anothers_and_a_second_of_one_provider(backend: Backend) {
    let h = Harness::new(backend).await;
    let (ann, bob) = (h.bidder().await, h.bidder().await);
    let link = |n: &str, s: &str, u: UserId| h.store.link_identity(identity(n, s, u));
    assert_eq!(
        link("corp", "ann", ann.id).await.unwrap(),
        LinkOutcome::Linked
    );
    assert_eq!(
        link("corp", "ann", ann.id).await.unwrap(),
        LinkOutcome::AlreadyLinked
    );
    assert_eq!(
        link("corp", "ann", bob.id).await.unwrap(),
        LinkOutcome::InUse
    );
    assert_eq!(
        link("corp", "ann-2", ann.id).await.unwrap(),
        LinkOutcome::ProviderTaken
    );
    assert_eq!(
        link("gitlab", "ann", ann.id).await.unwrap(),
        LinkOutcome::Linked
    );
    let listed = h.store.identities_of(ann.id).await.unwrap();
    let providers: Vec<&str> = listed.iter().map(|i| i.provider.as_str()).collect();
    assert_eq!(providers, ["corp", "gitlab"]);
    assert_eq!(listed[0].email.as_deref(), Some("ann@idp.test"));
    assert!(h.store.identities_of(bob.id).await.unwrap().is_empty());
}

async fn the_last_way_to_sign_in_stays_until_a_password_is_set(backend: Backend) {
    let h = Harness::new(backend).await;
    let nia = newcomer("nia@example.com");
    let id = nia.id;
    h.store
        .create_account_with_identity(nia, identity("corp", "nia", id))
        .await
        .unwrap();
    h.store
        .link_identity(identity("gitlab", "nia", id))
        .await
        .unwrap();
    // Two identities, no password: both unlinked at once, one must stay.
    let (corp, gitlab) = (provider("corp"), provider("gitlab"));
    let (first, second) = tokio::join!(
        h.store.unlink_identity(id, &corp),
        h.store.unlink_identity(id, &gitlab)
    );
    let mut outcomes = [first.unwrap(), second.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        [UnlinkOutcome::LastMethod, UnlinkOutcome::Unlinked]
    );
    let left = h.store.identities_of(id).await.unwrap();
    assert_eq!(left.len(), 1);
    let last = left[0].provider.clone();
    assert_eq!(
        h.store
            .unlink_identity(id, &provider("nope"))
            .await
            .unwrap(),
        UnlinkOutcome::NotLinked
    );
    // A reset sets a password: then the last identity may go.
    h.users()
        .replace_password(PasswordReplacement {
            user: id,
            hash: PasswordHash::new("$argon2id$chosen".into()),
            at: chrono::Utc::now(),
            keep_session: None,
            link: None,
        })
        .await
        .unwrap();
    assert_eq!(
        h.store.unlink_identity(id, &last).await.unwrap(),
        UnlinkOutcome::Unlinked
    );
    // A registered account (with a password) may unlink its only one.
    let ann = h.bidder().await;
    h.store
        .link_identity(identity("corp", "ann", ann.id))
        .await
        .unwrap();
    assert_eq!(
        h.store
            .unlink_identity(ann.id, &provider("corp"))
            .await
            .unwrap(),
        UnlinkOutcome::Unlinked
    );
}

on_both_backends!(
    a_first_sign_in_stores_the_account_and_its_identity_together,
    linking_tells_mine_from_anothers_and_a_second_of_one_provider,
    the_last_way_to_sign_in_stays_until_a_password_is_set,
);
