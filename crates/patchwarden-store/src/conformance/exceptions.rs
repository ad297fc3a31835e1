//! Conformance: exceptions (risk acceptance) — numbering, listing, the core's rules applied in
//! the store's transaction, one audit event per change and nothing on a refusal.

use std::sync::Arc;

use jiff::SignedDuration;
use patchwarden_core::audit::verify;
use patchwarden_core::exception::{
    Control, ControlKind, DEFAULT_MAX_TERM, ExceptionRequest, ExceptionState, Justification,
};
use uuid::Uuid;

use super::fixtures::{at, entry, finding, t0};
use super::{TestDatabase, open};
use crate::exception::{
    ExceptionAction, ExceptionFilter, ExceptionScope, FindingRef, NewException,
};
use crate::{Store, StoreError};

/// A requested exception by `requester` naming `scope`, expiring 90 days after `t0`.
pub fn new_exception(requester: &str, scope: ExceptionScope, protected: bool) -> NewException {
    let request = ExceptionRequest {
        justification: Justification::PatchCausesInstability,
        explanation: "kernel 6.1.0-28 panics the SAN driver; vendor case 4411".into(),
        controls: vec![Control {
            kind: ControlKind::NetworkSegmentation,
            description: "db VLAN reachable only from the app tier".into(),
        }],
        protected_data: protected,
        requester: requester.into(),
        requested_at: t0(),
        expires_at: t0() + SignedDuration::from_hours(24 * 90),
    };
    NewException {
        id: Uuid::new_v4(),
        scope,
        exception: match request.check(DEFAULT_MAX_TERM) {
            Ok(e) => e,
            Err(e) => panic!("the fixture exception is refused: {e}"),
        },
    }
}

async fn events(store: &Arc<dyn Store>) -> usize {
    store.audit_events(0, 10_000).await.unwrap().len()
}

fn act(action: &str) -> patchwarden_core::audit::AuditEntry {
    // The object is left empty: the store names the exception.
    entry(at(60), action, "")
}

pub async fn exceptions_are_numbered_listed_and_changed_with_one_audit_event_each(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let h1 = Uuid::new_v4();
    let h2 = Uuid::new_v4();
    let one = FindingRef {
        host: h1,
        advisory: "CVE-2026-0001".into(),
        package: "openssl".into(),
    };
    let a = store
        .create_exception(
            new_exception(
                "alice",
                ExceptionScope {
                    findings: vec![one.clone()],
                    hosts: vec![],
                },
                false,
            ),
            t0(),
            entry(t0(), "exception.request", ""),
        )
        .await
        .unwrap();
    let b = store
        .create_exception(
            new_exception(
                "alice",
                ExceptionScope {
                    findings: vec![],
                    hosts: vec![h2],
                },
                true,
            ),
            t0(),
            entry(t0(), "exception.request", ""),
        )
        .await
        .unwrap();
    assert_eq!(a.number, "EXC-2026-0001");
    assert_eq!(b.number, "EXC-2026-0002");
    assert_eq!(events(&store).await, 2);
    // By id and by number; a reopened store reads the same.
    let reopened = open(&db).await;
    assert_eq!(
        reopened.get_exception(&a.id.to_string()).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        reopened.get_exception("EXC-2026-0002").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(reopened.get_exception("EXC-2026-0003").await.unwrap(), None);

    // The requester cannot approve: refused with the core's words, nothing written.
    let refused = store
        .change_exception(
            a.id,
            "alice",
            ExceptionAction::Approve,
            at(60),
            act("exception.approve"),
        )
        .await
        .unwrap_err();
    match refused {
        StoreError::ExceptionRefused { reason } => {
            assert_eq!(reason, "the requester cannot approve their own exception")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Protected data: the data owner first.
    assert!(matches!(
        store
            .change_exception(
                b.id,
                "bob",
                ExceptionAction::Approve,
                at(60),
                act("exception.approve")
            )
            .await,
        Err(StoreError::ExceptionRefused { .. })
    ));
    // A revocation of a requested one is refused too.
    assert!(matches!(
        store
            .change_exception(
                a.id,
                "bob",
                ExceptionAction::Revoke { reason: "x".into() },
                at(60),
                act("exception.revoke")
            )
            .await,
        Err(StoreError::ExceptionRefused { .. })
    ));
    assert_eq!(events(&store).await, 2);
    assert_eq!(
        store.get_exception(&a.id.to_string()).await.unwrap(),
        Some(a.clone())
    );

    // Unknown.
    assert!(matches!(
        store
            .change_exception(
                Uuid::new_v4(),
                "bob",
                ExceptionAction::Approve,
                at(60),
                act("exception.approve")
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));

    let approved = store
        .change_exception(
            a.id,
            "bob",
            ExceptionAction::Approve,
            at(60),
            act("exception.approve"),
        )
        .await
        .unwrap();
    assert!(
        matches!(approved.exception.state, ExceptionState::Approved { ref by, .. } if by == "bob")
    );
    let acked = store
        .change_exception(
            b.id,
            "dana",
            ExceptionAction::Acknowledge,
            at(60),
            act("exception.acknowledge"),
        )
        .await
        .unwrap();
    assert_eq!(
        acked
            .exception
            .data_owner_ack
            .as_ref()
            .map(|(w, _)| w.as_str()),
        Some("dana")
    );
    let rejected = store
        .change_exception(
            b.id,
            "bob",
            ExceptionAction::Reject {
                reason: "segment the host first".into(),
            },
            at(60),
            act("exception.reject"),
        )
        .await
        .unwrap();
    assert!(matches!(
        rejected.exception.state,
        ExceptionState::Rejected { .. }
    ));
    assert_eq!(events(&store).await, 5);

    // Filters: state, host, in force.
    let list = |f: ExceptionFilter| {
        let store = store.clone();
        async move {
            store
                .list_exceptions(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.number)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(ExceptionFilter::default()).await,
        ["EXC-2026-0001", "EXC-2026-0002"]
    );
    assert_eq!(
        list(ExceptionFilter {
            state: Some("approved".into()),
            ..ExceptionFilter::default()
        })
        .await,
        ["EXC-2026-0001"]
    );
    assert_eq!(
        list(ExceptionFilter {
            host: Some(h2),
            ..ExceptionFilter::default()
        })
        .await,
        ["EXC-2026-0002"]
    );
    assert_eq!(
        list(ExceptionFilter {
            in_force_at: Some(at(120)),
            ..ExceptionFilter::default()
        })
        .await,
        ["EXC-2026-0001"]
    );
    // Expired: no longer in force.
    let after_expiry = t0() + SignedDuration::from_hours(24 * 91);
    assert!(
        list(ExceptionFilter {
            in_force_at: Some(after_expiry),
            ..ExceptionFilter::default()
        })
        .await
        .is_empty()
    );

    // The scope covers its finding (by vulnerability, alias or advisory) and nothing else.
    let pkg = patchwarden_core::inventory::Package {
        name: "openssl".into(),
        ..super::fixtures::debian_inventories(1).0.packages[0].clone()
    };
    let f = finding(&pkg, "CVE-2026-0001", None);
    assert!(approved.covers_at(h1, &f, at(120)));
    assert!(!approved.covers_at(h2, &f, at(120)));
    assert!(!approved.covers_at(h1, &f, after_expiry));

    let revoked = store
        .change_exception(
            a.id,
            "bob",
            ExceptionAction::Revoke {
                reason: "patched in the maintenance window".into(),
            },
            at(90),
            act("exception.revoke"),
        )
        .await
        .unwrap();
    assert!(!revoked.exception.in_force(at(120)));
    let all = store.audit_events(0, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    let actions: Vec<&str> = all.iter().map(|e| e.entry.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "exception.request",
            "exception.request",
            "exception.approve",
            "exception.acknowledge",
            "exception.reject",
            "exception.revoke"
        ]
    );
    assert_eq!(all[5].entry.object, "exception:EXC-2026-0001");
    assert!(verify(&all).is_ok());
}

pub async fn an_exception_naming_nothing_is_refused_before_anything_is_written(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let err = store
        .create_exception(
            new_exception("alice", ExceptionScope::default(), false),
            t0(),
            entry(t0(), "exception.request", ""),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    let new = new_exception(
        "alice",
        ExceptionScope {
            findings: vec![],
            hosts: vec![Uuid::new_v4()],
        },
        false,
    );
    store
        .create_exception(new.clone(), t0(), entry(t0(), "exception.request", ""))
        .await
        .unwrap();
    // The same id again.
    assert!(matches!(
        store
            .create_exception(new, t0(), entry(t0(), "exception.request", ""))
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(events(&store).await, 1);
    assert_eq!(
        store
            .list_exceptions(&ExceptionFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn two_approvals_racing_for_one_exception_one_wins(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let e = store
        .create_exception(
            new_exception(
                "alice",
                ExceptionScope {
                    findings: vec![],
                    hosts: vec![Uuid::new_v4()],
                },
                false,
            ),
            t0(),
            entry(t0(), "exception.request", ""),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for who in ["bob", "carol", "dave", "erin"] {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .change_exception(
                    e.id,
                    who,
                    ExceptionAction::Approve,
                    at(60),
                    act("exception.approve"),
                )
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::ExceptionRefused { reason }) => {
                assert_eq!(reason, "only a requested exception is approved")
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let all = store.audit_events(0, 100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(verify(&all).is_ok());

    // Requests racing for numbers get distinct ones, in sequence.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_exception(
                    new_exception(
                        "alice",
                        ExceptionScope {
                            findings: vec![],
                            hosts: vec![Uuid::new_v4()],
                        },
                        false,
                    ),
                    t0(),
                    entry(t0(), "exception.request", ""),
                )
                .await
                .unwrap()
                .number
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    assert_eq!(
        numbers,
        [
            "EXC-2026-0002",
            "EXC-2026-0003",
            "EXC-2026-0004",
            "EXC-2026-0005",
            "EXC-2026-0006"
        ]
    );
}
