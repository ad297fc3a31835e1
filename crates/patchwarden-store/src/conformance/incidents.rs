//! Conformance: incidents — numbering per year, listing newest first and by change, one audit
//! event per change (without the reporter's contact), resolving once, and refusals that write
//! nothing.

use std::sync::Arc;

use patchwarden_core::audit::{Actor, AuditEntry, verify};
use uuid::Uuid;

use super::fixtures::{at, entry, t0};
use super::{TestDatabase, open};
use crate::incident::{IncidentFilter, IncidentState, MAX_DESCRIPTION, NewIncident};
use crate::{Store, StoreError};

fn report(service: &str, change: Option<&str>) -> NewIncident {
    NewIncident {
        id: Uuid::new_v4(),
        service: service.into(),
        description: "checkout shows an error since last night <script>x</script>".into(),
        contact: Some("pat@example.org".into()),
        change: change.map(str::to_owned),
    }
}

fn public(now: jiff::Timestamp) -> AuditEntry {
    // The object is left empty: the store names the incident.
    AuditEntry::new(now, Actor::System("public".into()), "incident.report", "")
}

async fn events(store: &Arc<dyn Store>) -> Vec<patchwarden_core::audit::AuditEvent> {
    store.audit_events(0, 10_000).await.unwrap()
}

pub async fn incidents_are_numbered_listed_and_resolved_once_with_their_events(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let a = store
        .create_incident(report("shop", Some("PCR-2026-0001")), t0(), public(t0()))
        .await
        .unwrap();
    let b = store
        .create_incident(report("payroll", None), at(60), public(at(60)))
        .await
        .unwrap();
    assert_eq!(a.number, "INC-2026-0001");
    assert_eq!(b.number, "INC-2026-0002");
    assert_eq!(a.state, IncidentState::Open);
    assert_eq!(a.change.as_deref(), Some("PCR-2026-0001"));
    assert_eq!(b.change, None);
    // The text is kept as written, markup and all: showing it escaped is the reader's job.
    assert!(a.description.contains("<script>"));

    // Found by id and by number; listed newest first, by state and by change.
    assert_eq!(
        store.get_incident(&a.id.to_string()).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.get_incident("INC-2026-0002").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.get_incident("INC-2026-0099").await.unwrap(), None);
    let all = store
        .list_incidents(&IncidentFilter::default())
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|i| i.number.as_str()).collect::<Vec<_>>(),
        ["INC-2026-0002", "INC-2026-0001"]
    );
    let linked = store
        .list_incidents(&IncidentFilter {
            change: Some("PCR-2026-0001".into()),
            ..IncidentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(linked, vec![a.clone()]);
    let one = store
        .list_incidents(&IncidentFilter {
            limit: Some(1),
            ..IncidentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(one, vec![b.clone()]);

    // Resolved once, with who, when and the note; a second resolution is refused and
    // appends nothing.
    let resolved = store
        .resolve_incident(
            a.id,
            "olive",
            "rolled back the cache setting",
            at(120),
            entry(at(120), "incident.resolve", ""),
        )
        .await
        .unwrap();
    assert_eq!(resolved.state, IncidentState::Resolved);
    assert_eq!(resolved.resolved_by.as_deref(), Some("olive"));
    assert_eq!(resolved.resolved_at, Some(at(120)));
    assert_eq!(
        store.get_incident("INC-2026-0001").await.unwrap(),
        Some(resolved.clone())
    );
    let before = events(&store).await.len();
    let again = store
        .resolve_incident(
            a.id,
            "olive",
            "again",
            at(180),
            entry(at(180), "incident.resolve", ""),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Invalid { .. })),
        "{again:?}"
    );
    assert_eq!(events(&store).await.len(), before);
    let open_only = store
        .list_incidents(&IncidentFilter {
            state: Some(IncidentState::Open),
            ..IncidentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(open_only, vec![b.clone()]);

    // One event per change, naming the incident, never the reporter's contact; the chain
    // verifies.
    let evs = events(&store).await;
    let ours: Vec<_> = evs
        .iter()
        .filter(|e| e.entry.object.starts_with("incident:"))
        .collect();
    assert_eq!(ours.len(), 3);
    assert_eq!(ours[0].entry.object, "incident:INC-2026-0001");
    assert_eq!(ours[0].entry.actor, Actor::System("public".into()));
    for e in &ours {
        let text = serde_json::to_string(&e.entry).unwrap();
        assert!(!text.contains("pat@example.org"), "{text}");
    }
    assert!(verify(&evs).is_ok());

    // Unknown incident: not found, nothing appended.
    let missing = store
        .resolve_incident(
            Uuid::new_v4(),
            "olive",
            "n",
            at(200),
            entry(at(200), "incident.resolve", ""),
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    // A reopened store keeps them.
    let again = open(&db).await;
    assert_eq!(
        again
            .list_incidents(&IncidentFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn an_incident_with_a_missing_or_overlong_text_is_refused_before_anything_is_written(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let mut empty = report("shop", None);
    empty.description = String::new();
    let mut long = report("shop", None);
    long.description = "x".repeat(MAX_DESCRIPTION + 1);
    let mut no_service = report("", None);
    no_service.service = String::new();
    let mut long_contact = report("shop", None);
    long_contact.contact = Some("c".repeat(10_000));
    for bad in [empty, long, no_service, long_contact] {
        let r = store.create_incident(bad, t0(), public(t0())).await;
        assert!(
            matches!(
                r,
                Err(StoreError::Invalid { .. } | StoreError::TooLong { .. })
            ),
            "{r:?}"
        );
    }
    assert!(
        store
            .list_incidents(&IncidentFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(events(&store).await.is_empty());
    let note = store
        .create_incident(report("shop", None), t0(), public(t0()))
        .await
        .unwrap();
    let r = store
        .resolve_incident(
            note.id,
            "olive",
            "",
            at(1),
            entry(at(1), "incident.resolve", ""),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Invalid { .. })), "{r:?}");
    assert_eq!(
        store
            .get_incident(&note.number)
            .await
            .unwrap()
            .unwrap()
            .state,
        IncidentState::Open
    );
}

pub async fn two_resolutions_racing_for_one_incident_one_wins_and_reports_get_distinct_numbers(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    // Reports arriving at once are numbered one after another, none twice.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_incident(report("shop", None), t0(), public(t0()))
                .await
        }));
    }
    let mut numbers = std::collections::BTreeSet::new();
    let mut first = None;
    for t in tasks {
        let i = t.await.unwrap().unwrap();
        first.get_or_insert(i.id);
        numbers.insert(i.number);
    }
    assert_eq!(numbers.len(), 6);
    assert!(numbers.contains("INC-2026-0001") && numbers.contains("INC-2026-0006"));
    let id = first.unwrap();
    let mut tasks = Vec::new();
    for who in ["olive", "omar", "otto", "opal"] {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .resolve_incident(
                    id,
                    who,
                    "fixed",
                    at(60),
                    entry(at(60), "incident.resolve", ""),
                )
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Invalid { reason, .. }) => {
                assert!(reason.ends_with("is already resolved"), "{reason}")
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let all = events(&store).await;
    assert_eq!(all.len(), 7);
    assert!(verify(&all).is_ok());
}
