//! Conformance: change requests (numbers, revisions, jobs created with an update) and the
//! calendar.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::fixtures::{at, enrolled, entry};
use super::{TestDatabase, open};
use crate::change::{CalendarKind, ChangeFilter, ChangeUpdate, NewChange};
use crate::{JobFilter, NewJob, Store, StoreError};

fn new_change(requester: &str) -> NewChange {
    NewChange {
        id: Uuid::new_v4(),
        year: 2026,
        kind: "normal".into(),
        state: "draft".into(),
        requester: requester.into(),
        body: json!({"justification": "CVE-2024-0001 on the web tier"}),
    }
}

async fn create(store: &Arc<dyn Store>, requester: &str, secs: i64) -> crate::change::StoredChange {
    store
        .create_change(
            new_change(requester),
            at(secs),
            entry(at(secs), "change.create", "change:new"),
        )
        .await
        .unwrap()
}

pub async fn changes_are_numbered_per_year_and_found_by_id_or_number(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let first = create(&store, "olive", 10).await;
    let second = create(&store, "omar", 11).await;
    assert_eq!(first.number, "PCR-2026-0001");
    assert_eq!(second.number, "PCR-2026-0002");
    assert_eq!((first.revision, first.state.as_str()), (1, "draft"));
    let mut next_year = new_change("olive");
    next_year.year = 2027;
    let other = store
        .create_change(next_year, at(12), entry(at(12), "change.create", "c"))
        .await
        .unwrap();
    assert_eq!(other.number, "PCR-2027-0001");
    assert_eq!(
        store.get_change(&first.id.to_string()).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.get_change("PCR-2026-0002").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.get_change("PCR-2026-0099").await.unwrap(), None);
    // The audit event names the number the store gave.
    let events = store.audit_events(0, 100).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.entry.object == "change:PCR-2026-0001"),
        "{events:?}"
    );
    // Newest first; filtered by state and requester.
    let all = store.list_changes(&ChangeFilter::default()).await.unwrap();
    let numbers: Vec<&str> = all.iter().map(|c| c.number.as_str()).collect();
    assert_eq!(numbers, ["PCR-2027-0001", "PCR-2026-0002", "PCR-2026-0001"]);
    let olive = store
        .list_changes(&ChangeFilter {
            requester: Some("olive".into()),
            states: vec!["draft".into()],
            limit: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(olive.len(), 1);
    assert_eq!(olive[0].number, "PCR-2027-0001");
    // A bad kind is refused before anything is written.
    let mut bad = new_change("olive");
    bad.kind = "whenever".into();
    let head = store.audit_head().await.unwrap();
    assert!(matches!(
        store
            .create_change(bad, at(13), entry(at(13), "change.create", "c"))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.audit_head().await.unwrap(), head);
}

pub async fn a_change_update_names_its_revision_and_creates_its_jobs_atomically(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let change = create(&store, "olive", 10).await;
    let job = |host| NewJob {
        id: Uuid::new_v4(),
        host,
        kind: json!({"kind": "reinventory"}),
        created_by: change.number.clone(),
    };
    let updated = store
        .update_change(
            ChangeUpdate {
                id: change.id,
                revision: 1,
                state: "testing".into(),
                body: json!({"ring": 0}),
                jobs: vec![job(host.id)],
            },
            at(20),
            entry(at(20), "change.start_testing", "change:PCR-2026-0001"),
        )
        .await
        .unwrap();
    assert_eq!((updated.revision, updated.state.as_str()), (2, "testing"));
    assert_eq!(updated.body, json!({"ring": 0}));
    assert_eq!(updated.updated_at, at(20));
    let jobs = store
        .list_jobs(&JobFilter {
            created_by: Some(change.number.clone()),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].host, host.id);

    // A writer that read revision 1 loses, and nothing of its update is kept.
    let head = store.audit_head().await.unwrap();
    let stale = store
        .update_change(
            ChangeUpdate {
                id: change.id,
                revision: 1,
                state: "cancelled".into(),
                body: json!({}),
                jobs: vec![job(host.id)],
            },
            at(21),
            entry(at(21), "change.cancel", "change:PCR-2026-0001"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, StoreError::Stale { revision: 1, .. }),
        "{stale}"
    );
    assert_eq!(store.audit_head().await.unwrap(), head);
    // A job for a host that does not exist undoes the whole update.
    let missing = store
        .update_change(
            ChangeUpdate {
                id: change.id,
                revision: 2,
                state: "deploying".into(),
                body: json!({"ring": 1}),
                jobs: vec![job(host.id), job(Uuid::new_v4())],
            },
            at(22),
            entry(at(22), "change.deploy", "change:PCR-2026-0001"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { kind: "host", .. }),
        "{missing}"
    );
    assert_eq!(store.audit_head().await.unwrap(), head);
    let now = store.get_change(&change.number).await.unwrap().unwrap();
    assert_eq!((now.revision, now.state.as_str()), (2, "testing"));
    let jobs = store
        .list_jobs(&JobFilter {
            created_by: Some(change.number.clone()),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    // An unknown change is not found.
    let unknown = store
        .update_change(
            ChangeUpdate {
                id: Uuid::new_v4(),
                revision: 1,
                state: "draft".into(),
                body: json!({}),
                jobs: vec![],
            },
            at(23),
            entry(at(23), "change.x", "c"),
        )
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound { .. }), "{unknown}");
}

pub async fn calendar_entries_are_put_listed_and_deleted_with_their_events(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let window = json!({"rrule": "FREQ=MONTHLY;BYDAY=2TU", "groups": ["web"]});
    store
        .put_calendar_entry(
            "web-monthly",
            CalendarKind::Window,
            window.clone(),
            at(10),
            entry(at(10), "calendar.put", "calendar:web-monthly"),
        )
        .await
        .unwrap();
    store
        .put_calendar_entry(
            "year-end",
            CalendarKind::Freeze,
            json!({"start": "2026-12-20T00:00:00Z"}),
            at(11),
            entry(at(11), "calendar.put", "calendar:year-end"),
        )
        .await
        .unwrap();
    // Replacing keeps one entry under the name.
    let changed = json!({"rrule": "FREQ=WEEKLY;BYDAY=TU", "groups": ["web"]});
    store
        .put_calendar_entry(
            "web-monthly",
            CalendarKind::Window,
            changed.clone(),
            at(12),
            entry(at(12), "calendar.put", "calendar:web-monthly"),
        )
        .await
        .unwrap();
    let entries = store.calendar_entries().await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].name, "web-monthly");
    assert_eq!(entries[0].body, changed);
    assert_eq!(entries[0].updated_at, at(12));
    assert_eq!(entries[1].kind, CalendarKind::Freeze);
    let head = store.audit_head().await.unwrap().unwrap();
    assert!(
        store
            .delete_calendar_entry("year-end", at(13), entry(at(13), "calendar.delete", "x"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_calendar_entry("year-end", at(14), entry(at(14), "calendar.delete", "x"))
            .await
            .unwrap()
    );
    // One event for the delete that removed something, none for the one that did not.
    assert_eq!(store.audit_head().await.unwrap().unwrap().seq, head.seq + 1);
    assert_eq!(store.calendar_entries().await.unwrap().len(), 1);
}
