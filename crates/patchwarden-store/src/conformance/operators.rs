//! Conformance: users, the last-admin rule, failed logins and locks, sessions, API tokens.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::SignedDuration;
use patchwarden_core::audit::verify;
use uuid::Uuid;

use super::fixtures::{at, entry, t0};
use super::{TestDatabase, open};
use crate::{
    LockoutPolicy, NewApiToken, NewSession, NewUser, Role, SecretHash, Store, StoreError, User,
    UserChange,
};

/// A new user `name` with `roles` (a provider gets the group `web`).
pub fn new_user(name: &str, roles: &[Role]) -> NewUser {
    let groups = if roles.contains(&Role::Provider) {
        ["web".to_owned()].into()
    } else {
        BTreeSet::new()
    };
    NewUser {
        id: Uuid::new_v4(),
        username: name.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt-of-{name}$hash"),
        roles: roles.iter().copied().collect(),
        groups,
        must_change_password: false,
        created_by: "bootstrap".into(),
    }
}

async fn create(store: &Arc<dyn Store>, name: &str, roles: &[Role]) -> User {
    store
        .create_user(
            new_user(name, roles),
            t0(),
            entry(t0(), "user.create", format!("user:{name}")),
        )
        .await
        .unwrap()
}

async fn events(store: &Arc<dyn Store>) -> usize {
    store.audit_events(0, 10_000).await.unwrap().len()
}

fn demote(roles: &[Role]) -> UserChange {
    UserChange::Roles {
        roles: roles.iter().copied().collect(),
        groups: BTreeSet::new(),
    }
}

pub async fn users_round_trip_and_names_are_unique(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let new = new_user("bob", &[Role::Officer, Role::Auditor]);
    let bob = store
        .create_user(new.clone(), t0(), entry(t0(), "user.create", "user:bob"))
        .await
        .unwrap();
    assert_eq!(bob.id, new.id);
    assert_eq!(bob.username, "bob");
    assert_eq!(bob.password_hash, new.password_hash);
    assert_eq!(bob.roles, new.roles);
    assert_eq!(bob.created_at, t0());
    assert_eq!(bob.password_changed_at, t0());
    assert_eq!(
        (bob.failed_logins, bob.locked_until, bob.disabled_at),
        (0, None, None)
    );
    let provider = create(&store, "acme", &[Role::Provider]).await;
    assert_eq!(provider.groups, BTreeSet::from(["web".to_owned()]));

    assert_eq!(store.get_user(bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(store.find_user("bob").await.unwrap(), Some(bob.clone()));
    assert_eq!(store.find_user("Bob").await.unwrap(), None);
    assert_eq!(store.get_user(Uuid::new_v4()).await.unwrap(), None);
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["acme", "bob"]);

    let taken = NewUser {
        id: Uuid::new_v4(),
        ..new.clone()
    };
    let e = store
        .create_user(taken, at(1), entry(at(1), "user.create", "user:bob"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }), "{e}");
    let bad = new_user("a b", &[Role::Auditor]);
    let e = store
        .create_user(bad, at(1), entry(at(1), "user.create", "user:x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "username",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(events(&store).await, 2);
}

pub async fn the_last_enabled_admin_can_be_neither_demoted_nor_disabled(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let root = create(&store, "root", &[Role::Admin]).await;
    let before = events(&store).await;
    for change in [demote(&[Role::Auditor]), UserChange::Disable] {
        let e = store
            .update_user(
                root.id,
                change,
                at(1),
                entry(at(1), "user.update", "user:root"),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::LastAdmin { .. }), "{e}");
    }
    assert_eq!(store.get_user(root.id).await.unwrap(), Some(root.clone()));
    assert_eq!(events(&store).await, before);

    // With a second admin, one of them may go; a disabled admin does not count.
    let second = create(&store, "second", &[Role::Admin]).await;
    let demoted = store
        .update_user(
            second.id,
            demote(&[Role::Officer]),
            at(2),
            entry(at(2), "user.update", "user:second"),
        )
        .await
        .unwrap();
    assert_eq!(demoted.roles, BTreeSet::from([Role::Officer]));
    // Repeating the change changes nothing and appends nothing.
    let n = events(&store).await;
    store
        .update_user(
            second.id,
            demote(&[Role::Officer]),
            at(3),
            entry(at(3), "user.update", "user:second"),
        )
        .await
        .unwrap();
    assert_eq!(events(&store).await, n);
    let e = store
        .update_user(
            root.id,
            UserChange::Disable,
            at(4),
            entry(at(4), "user.disable", "user:root"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::LastAdmin { .. }), "{e}");

    // Two admins demoting each other at once: exactly one succeeds, one admin stays.
    let third = create(&store, "third", &[Role::Admin]).await;
    let mut racers = Vec::new();
    for id in [root.id, third.id] {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .update_user(
                    id,
                    demote(&[Role::Auditor]),
                    at(5),
                    entry(at(5), "user.update", format!("user:{id}")),
                )
                .await
        }));
    }
    let mut won = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::LastAdmin { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won, 1);
    let admins = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .filter(User::is_active_admin)
        .count();
    assert_eq!(admins, 1);
    assert!(verify(&store.audit_events(0, 10_000).await.unwrap()).is_ok());
}

pub async fn failed_logins_lock_the_user_until_the_window_ends(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let bob = create(&store, "bob", &[Role::Auditor]).await;
    let policy = LockoutPolicy {
        max_failures: 3,
        lock_for: SignedDuration::from_mins(15),
    };
    let before = events(&store).await;
    let fail = |secs: i64| {
        let store = store.clone();
        async move {
            store
                .record_failed_login(
                    bob.id,
                    policy,
                    at(secs),
                    entry(at(secs), "user.lock", "user:bob"),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(fail(1).await.failed_logins, 1);
    assert_eq!(fail(2).await.failed_logins, 2);
    // Counting is bookkeeping; only the lock is an event.
    assert_eq!(events(&store).await, before);
    let locked = fail(3).await;
    assert_eq!(locked.locked_until, Some(at(3 + 900)));
    assert_eq!(locked.failed_logins, 0);
    assert_eq!(events(&store).await, before + 1);
    // Failing while locked neither extends the lock nor appends.
    let still = fail(60).await;
    assert_eq!(still.locked_until, Some(at(903)));
    assert_eq!(events(&store).await, before + 1);
    assert!(still.locked_at(at(902)).is_some());
    assert!(still.locked_at(at(903)).is_none());

    // A successful login (its session) clears the count.
    fail(1000).await;
    let session = NewSession {
        id_hash: SecretHash::of(b"session-1"),
        user: bob.id,
        expires_at: at(5000),
    };
    store
        .create_session(
            session,
            at(1001),
            entry(at(1001), "session.create", "user:bob"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_user(bob.id).await.unwrap().unwrap().failed_logins,
        0
    );
    let e = store
        .record_failed_login(
            Uuid::new_v4(),
            policy,
            at(1002),
            entry(at(1002), "user.lock", "user:x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
}

pub async fn sessions_end_at_logout_with_a_new_password_or_a_disabled_user(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    create(&store, "root", &[Role::Admin]).await;
    let bob = create(&store, "bob", &[Role::Auditor]).await;
    let session = |n: u8, expires: i64| NewSession {
        id_hash: SecretHash::of(&[n]),
        user: bob.id,
        expires_at: at(expires),
    };
    let s1 = store
        .create_session(
            session(1, 100),
            at(1),
            entry(at(1), "session.create", "user:bob"),
        )
        .await
        .unwrap();
    assert_eq!(s1.created_at, at(1));
    assert_eq!(s1.expires_at, at(100));
    assert_eq!(s1.user, bob.id);
    assert_eq!(
        store.get_session(s1.id_hash).await.unwrap(),
        Some(s1.clone())
    );
    assert_eq!(store.get_session(SecretHash::of(b"x")).await.unwrap(), None);
    let e = store
        .create_session(
            NewSession {
                user: Uuid::new_v4(),
                ..session(9, 100)
            },
            at(1),
            entry(at(1), "session.create", "user:x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");

    // Logout: once.
    let n = events(&store).await;
    assert!(
        store
            .delete_session(
                s1.id_hash,
                at(2),
                entry(at(2), "session.delete", "user:bob")
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_session(
                s1.id_hash,
                at(3),
                entry(at(3), "session.delete", "user:bob")
            )
            .await
            .unwrap()
    );
    assert_eq!(events(&store).await, n + 1);

    // Expired sessions are purged, live ones kept.
    let old = store
        .create_session(session(2, 10), at(4), entry(at(4), "session.create", "u"))
        .await
        .unwrap();
    let live = store
        .create_session(session(3, 1000), at(4), entry(at(4), "session.create", "u"))
        .await
        .unwrap();
    assert_eq!(store.purge_expired_sessions(at(10)).await.unwrap(), 1);
    assert_eq!(store.get_session(old.id_hash).await.unwrap(), None);
    assert!(store.get_session(live.id_hash).await.unwrap().is_some());

    // A new password ends every session, and lifts a lock.
    let policy = LockoutPolicy {
        max_failures: 1,
        lock_for: SignedDuration::from_mins(15),
    };
    store
        .record_failed_login(bob.id, policy, at(11), entry(at(11), "user.lock", "u"))
        .await
        .unwrap();
    let changed = store
        .update_user(
            bob.id,
            UserChange::Password {
                password_hash: "$argon2id$new".into(),
                must_change: true,
            },
            at(12),
            entry(at(12), "user.password", "user:bob"),
        )
        .await
        .unwrap();
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert!(changed.must_change_password);
    assert_eq!(changed.password_changed_at, at(12));
    assert_eq!(changed.locked_until, None);
    assert_eq!(store.get_session(live.id_hash).await.unwrap(), None);

    // So does disabling the user; enabling does not bring them back.
    let s4 = store
        .create_session(
            session(4, 1000),
            at(13),
            entry(at(13), "session.create", "u"),
        )
        .await
        .unwrap();
    let disabled = store
        .update_user(
            bob.id,
            UserChange::Disable,
            at(14),
            entry(at(14), "user.disable", "user:bob"),
        )
        .await
        .unwrap();
    assert_eq!(disabled.disabled_at, Some(at(14)));
    assert_eq!(store.get_session(s4.id_hash).await.unwrap(), None);
    let enabled = store
        .update_user(
            bob.id,
            UserChange::Enable,
            at(15),
            entry(at(15), "user.enable", "user:bob"),
        )
        .await
        .unwrap();
    assert!(enabled.is_enabled());
    assert_eq!(store.get_session(s4.id_hash).await.unwrap(), None);
    assert!(verify(&store.audit_events(0, 10_000).await.unwrap()).is_ok());
}

pub async fn api_tokens_hold_at_most_their_users_roles_and_are_revoked_once(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let bob = create(&store, "bob", &[Role::Officer, Role::Auditor]).await;
    let carol = create(&store, "carol", &[Role::Security]).await;
    let token = |n: u8, user: Uuid, roles: &[Role]| NewApiToken {
        id: Uuid::new_v4(),
        secret_hash: SecretHash::of(&[n]),
        user,
        name: format!("script {n}"),
        roles: roles.iter().copied().collect(),
        expires_at: at(3600),
    };
    let t1 = token(1, bob.id, &[Role::Auditor]);
    let stored = store
        .create_api_token(t1.clone(), at(1), entry(at(1), "api_token.create", "t1"))
        .await
        .unwrap();
    assert_eq!(stored.id, t1.id);
    assert_eq!(stored.user, bob.id);
    assert_eq!(stored.name, "script 1");
    assert_eq!(stored.roles, BTreeSet::from([Role::Auditor]));
    assert_eq!(stored.created_at, at(1));
    assert_eq!(stored.expires_at, at(3600));
    assert!(stored.usable_at(at(2)));
    assert!(!stored.usable_at(at(3600)));
    assert_eq!(
        store.find_api_token(SecretHash::of(&[1])).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store.find_api_token(SecretHash::of(&[9])).await.unwrap(),
        None
    );

    // More roles than the user holds, or for a user that does not exist: refused.
    let n = events(&store).await;
    let e = store
        .create_api_token(
            token(2, bob.id, &[Role::Admin]),
            at(2),
            entry(at(2), "api_token.create", "t2"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    let e = store
        .create_api_token(
            token(3, Uuid::new_v4(), &[Role::Auditor]),
            at(2),
            entry(at(2), "api_token.create", "t3"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    assert_eq!(events(&store).await, n);

    let t4 = store
        .create_api_token(
            token(4, carol.id, &[Role::Security]),
            at(3),
            entry(at(3), "api_token.create", "t4"),
        )
        .await
        .unwrap();
    let all: Vec<Uuid> = store
        .list_api_tokens(None)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(all, [t1.id, t4.id]);
    let carols: Vec<Uuid> = store
        .list_api_tokens(Some(carol.id))
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(carols, [t4.id]);

    let revoked = store
        .revoke_api_token(t1.id, at(4), entry(at(4), "api_token.revoke", "t1"))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at(4)));
    assert!(!revoked.usable_at(at(5)));
    let n = events(&store).await;
    let again = store
        .revoke_api_token(t1.id, at(6), entry(at(6), "api_token.revoke", "t1"))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at(4)));
    assert_eq!(events(&store).await, n);
    let e = store
        .revoke_api_token(Uuid::new_v4(), at(7), entry(at(7), "api_token.revoke", "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");

    // A disabled user gets no new token.
    create(&store, "root", &[Role::Admin]).await;
    store
        .update_user(
            carol.id,
            UserChange::Disable,
            at(8),
            entry(at(8), "user.disable", "user:carol"),
        )
        .await
        .unwrap();
    let e = store
        .create_api_token(
            token(5, carol.id, &[Role::Security]),
            at(9),
            entry(at(9), "api_token.create", "t5"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    assert!(verify(&store.audit_events(0, 10_000).await.unwrap()).is_ok());
}
