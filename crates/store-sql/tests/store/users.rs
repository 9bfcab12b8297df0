//! Accounts in the real store.

use std::sync::Arc;

use pp_domain::ports::CreateUserError;
use pp_domain::{Email, NewUser, PasswordHash, Role, UserId};
use pp_testkit::Backend;

use crate::on_both_backends;
use crate::support::Harness;

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::generate(),
        email: Email::parse(email).unwrap(),
        display_name: "Alice".into(),
        password_hash: PasswordHash::new("$argon2id$stub".into()),
        role: Role::User,
        email_verified: false,
        created_at: chrono::Utc::now(),
    }
}

async fn an_account_reads_back_by_id_and_by_email(backend: Backend) {
    let h = Harness::new(backend).await;
    let created = h
        .users()
        .insert_user(new_user("Alice@Example.com"), None)
        .await
        .unwrap();
    assert_eq!(created.email.as_str(), "alice@example.com");
    assert_eq!(
        h.users().user_by_id(created.id).await.unwrap(),
        Some(created.clone())
    );
    let by_email = h
        .users()
        .user_by_email(&Email::parse("ALICE@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(by_email, Some(created));
    assert_eq!(
        h.users().user_by_id(UserId::generate()).await.unwrap(),
        None
    );
}

async fn one_address_is_one_account_even_when_registered_at_once(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let h = Arc::clone(&h);
            tokio::spawn(async move {
                h.users()
                    .insert_user(new_user("bob@example.com"), None)
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(CreateUserError::EmailTaken) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(created, 1);
}

on_both_backends!(
    an_account_reads_back_by_id_and_by_email,
    one_address_is_one_account_even_when_registered_at_once,
);
