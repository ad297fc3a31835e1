//! Conformance: enrollment tokens and enrollment.

use std::sync::Arc;

use uuid::Uuid;

use super::fixtures::{at, enrolled, entry, new_host, new_token, t0};
use super::{TestDatabase, open};
use crate::{EnrollRejection, NewHost, SecretHash, Store, StoreError};

pub async fn enrollment_tokens_round_trip(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let a = new_token("secret-a", "web", 3);
    let b = new_token("secret-b", "db", 1);
    let created = store
        .create_enrollment_token(a.clone(), t0(), entry(t0(), "token.create", "token:a"))
        .await
        .unwrap();
    assert_eq!(created.id, a.id);
    assert_eq!(created.group, "web");
    assert_eq!(created.created_at, t0());
    assert_eq!(created.expires_at, a.expires_at);
    assert_eq!((created.uses, created.max_uses), (0, 3));
    assert_eq!(created.note.as_deref(), Some("for web"));
    assert_eq!(created.revoked_at, None);
    store
        .create_enrollment_token(b.clone(), at(1), entry(at(1), "token.create", "token:b"))
        .await
        .unwrap();

    let listed = store.list_enrollment_tokens().await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    assert_eq!(listed.first(), Some(&created));

    // The same id, or the same secret, cannot be created twice.
    let same_id = crate::NewEnrollmentToken {
        secret_hash: SecretHash::of(b"other"),
        ..a.clone()
    };
    let e = store
        .create_enrollment_token(same_id, at(2), entry(at(2), "token.create", "token:a"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }), "{e}");
    let same_secret = crate::NewEnrollmentToken {
        id: Uuid::new_v4(),
        ..a.clone()
    };
    let e = store
        .create_enrollment_token(same_secret, at(2), entry(at(2), "token.create", "token:c"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }), "{e}");

    let revoked = store
        .revoke_enrollment_token(b.id, at(3), entry(at(3), "token.revoke", "token:b"))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at(3)));
    // Revoking again keeps the first revocation time.
    let again = store
        .revoke_enrollment_token(b.id, at(4), entry(at(4), "token.revoke", "token:b"))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at(3)));
    let e = store
        .revoke_enrollment_token(
            Uuid::new_v4(),
            at(4),
            entry(at(4), "token.revoke", "token:x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
}

pub async fn enrollment_refuses_unknown_expired_revoked_and_used_up_tokens(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let token = new_token("secret", "web", 2);
    store
        .create_enrollment_token(token.clone(), t0(), entry(t0(), "token.create", "token:t"))
        .await
        .unwrap();
    let secret = SecretHash::of(b"secret");
    let enroll = |now| {
        let store = store.clone();
        async move {
            let h = new_host("h", &Uuid::new_v4().to_string());
            store
                .enroll_host(secret, h, now, entry(now, "host.enroll", "host:h"))
                .await
        }
    };

    let e = store
        .enroll_host(
            SecretHash::of(b"wrong"),
            new_host("h", "m"),
            at(1),
            entry(at(1), "host.enroll", "host:h"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Enrollment(EnrollRejection::Unknown)),
        "{e}"
    );

    let host = enroll(at(1)).await.unwrap();
    assert_eq!(host.group, "web");
    assert_eq!(host.enrolled_with, token.id);
    assert_eq!(host.enrolled_at, at(1));

    // At the expiry instant the token no longer works.
    let e = enroll(token.expires_at).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Enrollment(EnrollRejection::Expired { .. })),
        "{e}"
    );

    enroll(at(2)).await.unwrap();
    let e = enroll(at(3)).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Enrollment(EnrollRejection::UsedUp { max_uses: 2, .. })
        ),
        "{e}"
    );

    let other = new_token("other", "db", 5);
    store
        .create_enrollment_token(
            other.clone(),
            at(1),
            entry(at(1), "token.create", "token:o"),
        )
        .await
        .unwrap();
    store
        .revoke_enrollment_token(other.id, at(4), entry(at(4), "token.revoke", "token:o"))
        .await
        .unwrap();
    let e = store
        .enroll_host(
            SecretHash::of(b"other"),
            new_host("h", "m"),
            at(5),
            entry(at(5), "host.enroll", "host:h"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Enrollment(EnrollRejection::Revoked { .. })),
        "{e}"
    );

    // Refusals changed nothing: two hosts, two uses, no use counted on the revoked token.
    assert_eq!(
        store.list_hosts(&Default::default()).await.unwrap().len(),
        2
    );
    let tokens = store.list_enrollment_tokens().await.unwrap();
    let uses: Vec<u32> = tokens.iter().map(|t| t.uses).collect();
    assert_eq!(uses, vec![2, 0]);
}

pub async fn two_enrolments_racing_for_the_last_use_exactly_one_wins(db: Arc<dyn TestDatabase>) {
    // Two stores on the same database, as two server processes would be, each sending
    // enrolments at once; every token has fewer uses than there are racers.
    let first = open(&db).await;
    let second = open(&db).await;
    for round in 0..5u32 {
        let secret = format!("race-{round}");
        let uses = round % 2 + 1;
        first
            .create_enrollment_token(
                new_token(&secret, "race", uses),
                t0(),
                entry(t0(), "token.create", format!("token:{round}")),
            )
            .await
            .unwrap();
        let mut racers = Vec::new();
        for i in 0..6 {
            let store = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let secret = SecretHash::of(secret.as_bytes());
            racers.push(tokio::spawn(async move {
                let h = new_host("racer", &Uuid::new_v4().to_string());
                store
                    .enroll_host(secret, h, at(10), entry(at(10), "host.enroll", "host:r"))
                    .await
            }));
        }
        let mut won = 0;
        for r in racers {
            match r.await.unwrap() {
                Ok(_) => won += 1,
                Err(StoreError::Enrollment(EnrollRejection::UsedUp { .. })) => {}
                Err(e) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(won, uses, "round {round}: {won} enrolments won {uses} uses");
    }
    let tokens = first.list_enrollment_tokens().await.unwrap();
    assert!(tokens.iter().all(|t| t.uses == t.max_uses));
    let hosts = second.list_hosts(&Default::default()).await.unwrap();
    assert_eq!(hosts.len(), 1 + 2 + 1 + 2 + 1);
}

/// Makes a single-use token `secret` for `group`, enrols `host` with it and returns the
/// refusal, after checking that nothing changed: the use was not counted and no event was
/// appended (the transaction rolled back whole).
async fn refused_enrolment_changes_nothing(
    store: &Arc<dyn Store>,
    secret: &str,
    group: &str,
    host: NewHost,
) -> StoreError {
    let token = new_token(secret, group, 1);
    let token_id = token.id;
    store
        .create_enrollment_token(token, t0(), entry(t0(), "token.create", "t"))
        .await
        .unwrap();
    let before = store.audit_head().await.unwrap();
    let e = store
        .enroll_host(
            SecretHash::of(secret.as_bytes()),
            host,
            at(5),
            entry(at(5), "host.enroll", "h"),
        )
        .await
        .unwrap_err();
    let t = store.list_enrollment_tokens().await.unwrap();
    assert_eq!(t.iter().find(|t| t.id == token_id).map(|t| t.uses), Some(0));
    assert_eq!(store.audit_head().await.unwrap(), before);
    e
}

pub async fn enrolling_an_existing_host_id_changes_nothing(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "first").await;
    let mut again = new_host("second", "m2");
    again.id = host.id;
    let e = refused_enrolment_changes_nothing(&store, "s2", "web", again).await;
    assert!(
        matches!(e, StoreError::AlreadyExists { kind: "host", .. }),
        "{e}"
    );
    assert_eq!(
        store
            .get_host(host.id)
            .await
            .unwrap()
            .map(|h| h.facts.hostname),
        Some("first".into())
    );
}

/// An enrolment naming a key a host already has is a replayed request (every enrolment makes
/// a new key): refused whatever its host id, token or facts, and nothing changes — no host,
/// no token use, no event — so a copy sent to a server that never saw its nonce does nothing.
pub async fn enrolling_a_key_a_host_already_has_changes_nothing(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "first").await;
    let mut copy = new_host("copy", "m3");
    copy.public_key = host.public_key.clone();
    let copy_id = copy.id;
    let e = refused_enrolment_changes_nothing(&store, "s3", "db", copy).await;
    assert!(
        matches!(
            e,
            StoreError::AlreadyExists {
                kind: crate::host::PUBLIC_KEY_KIND,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(store.get_host(copy_id).await.unwrap(), None);
    // A single-use token with another key still enrols: only the key was refused.
    let token = new_token("s4", "db", 1);
    store
        .create_enrollment_token(token, t0(), entry(t0(), "token.create", "t"))
        .await
        .unwrap();
    let fresh = store
        .enroll_host(
            SecretHash::of(b"s4"),
            new_host("fresh", "m4"),
            at(6),
            entry(at(6), "host.enroll", "h"),
        )
        .await
        .unwrap();
    assert_eq!(fresh.group, "db");
}
