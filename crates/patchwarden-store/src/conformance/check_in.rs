//! Conformance: an agent's check-in as one transaction (`Store::check_in`): the nonce, the
//! counter, the facts, the lease and the held jobs together, and a refusal that keeps none
//! of them.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::json;
use uuid::Uuid;

use super::fixtures::{at, audit_seq, enrolled, entry, facts};
use super::{TestDatabase, open};
use crate::{CheckIn, CheckedIn, Host, JobState, NewJob, Store, StoreError};

fn check_in(host: &Host, nonce: &str, seq: u64, now: Timestamp, max_jobs: u32) -> CheckIn {
    CheckIn {
        host: host.id,
        nonce: nonce.into(),
        nonce_expires_at: now + jiff::SignedDuration::from_secs(600),
        seq,
        facts: host.facts.clone(),
        lease_until: now + jiff::SignedDuration::from_secs(60),
        max_jobs,
        now,
        facts_audit: entry(now, "host.facts", format!("host:{}", host.id)),
        lease_audit: entry(now, "job.lease", format!("host:{}", host.id)),
    }
}

async fn job(store: &Arc<dyn Store>, host: Uuid, secs: i64) -> Uuid {
    let id = Uuid::new_v4();
    store
        .create_job(
            NewJob {
                id,
                host,
                kind: json!({"kind": "reboot"}),
                created_by: "change:CR-7".into(),
            },
            at(secs),
            entry(at(secs), "job.create", format!("job:{id}")),
        )
        .await
        .unwrap();
    id
}

fn ids(c: &CheckedIn) -> Vec<Uuid> {
    c.jobs.iter().map(|j| j.id).collect()
}

async fn actions_since(store: &Arc<dyn Store>, seq: i64) -> Vec<String> {
    store
        .audit_events(seq, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.action)
        .collect()
}

pub async fn a_check_in_leases_jobs_resends_held_ones_and_records_facts(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let other = enrolled(&store, "web", "web-2").await;
    let (j1, j2, j3) = (
        job(&store, host.id, 10).await,
        job(&store, host.id, 11).await,
        job(&store, host.id, 12).await,
    );
    let theirs = job(&store, other.id, 13).await;
    let start = audit_seq(&store).await;

    // The first check-in leases the two oldest (the limit), records the counter and the time,
    // and appends the lease; unchanged facts append nothing.
    let first = store
        .check_in(check_in(&host, "n-1", 1, at(20), 2))
        .await
        .unwrap();
    assert_eq!(ids(&first), vec![j1, j2]);
    assert!(
        first
            .jobs
            .iter()
            .all(|j| j.state == JobState::Leased && j.lease_until == Some(at(80)))
    );
    assert_eq!(first.host.last_seen, Some(at(20)));
    assert_eq!(first.host.check_in_seq, Some(1));
    assert_eq!(first.host, store.get_host(host.id).await.unwrap().unwrap());
    assert_eq!(actions_since(&store, start).await, vec!["job.lease"]);
    let lease = store.audit_events(start, 1).await.unwrap();
    assert_eq!(
        lease[0].entry.after.as_ref().unwrap()["jobs"],
        json!([j1.to_string(), j2.to_string()])
    );

    // The next leases the third, oldest first, and sends the two held ones again (their
    // leases are live); nothing of the other host's.
    let second = store
        .check_in(check_in(&host, "n-2", 2, at(30), 2))
        .await
        .unwrap();
    assert_eq!(ids(&second), vec![j3, j1, j2]);
    assert!(!ids(&second).contains(&theirs));
    assert_eq!(second.jobs[1].attempts, 1, "a held job is not leased again");
    // A finished job is not held.
    store
        .report_job(
            host.id,
            j1,
            crate::JobReport::Finished {
                success: true,
                detail: json!({"rebooted": true}),
            },
            at(35),
            entry(at(35), "job.report", "j"),
        )
        .await
        .unwrap();
    // Past the leases' deadline (80 for the first two, 90 for the third), the unfinished
    // ones are leased again, oldest first; and changed facts are recorded and audited.
    let before = audit_seq(&store).await;
    let mut moved = check_in(&host, "n-3", 3, at(100), 5);
    moved.facts = facts("web-1", "machine-web-1");
    moved.facts.kernel = Some("6.1.0-28-amd64".into());
    let third = store.check_in(moved.clone()).await.unwrap();
    assert_eq!(ids(&third), vec![j2, j3]);
    assert!(third.jobs.iter().all(|j| j.attempts == 2));
    assert_eq!(third.host.facts, moved.facts);
    assert_eq!(third.host.check_in_seq, Some(3));
    assert_eq!(
        actions_since(&store, before).await,
        vec!["host.facts", "job.lease"]
    );
    // Nothing due and nothing new: a check-in appends nothing.
    let quiet = audit_seq(&store).await;
    let mut again = check_in(&host, "n-4", 4, at(110), 5);
    again.facts = moved.facts.clone();
    let fourth = store.check_in(again).await.unwrap();
    assert_eq!(ids(&fourth), vec![j2, j3], "held, not leased anew");
    assert_eq!(audit_seq(&store).await, quiet);

    // The host's finding counts come with it.
    assert_eq!(
        (fourth.host.open_findings, fourth.host.open_fixable),
        (0, 0)
    );
}

pub async fn a_refused_check_in_keeps_nothing(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let j1 = job(&store, host.id, 10).await;
    let done = store
        .check_in(check_in(&host, "n-1", 5, at(20), 5))
        .await
        .unwrap();
    assert_eq!(ids(&done), vec![j1]);
    let j2 = job(&store, host.id, 21).await;
    let start = audit_seq(&store).await;
    let unchanged = |h: Host| {
        assert_eq!(h.check_in_seq, Some(5));
        assert_eq!(h.last_seen, Some(at(20)));
        assert_eq!(h.facts, host.facts);
    };

    // A replayed nonce, with a counter that would do: refused, nothing kept.
    let mut changed = check_in(&host, "n-1", 6, at(30), 5);
    changed.facts.kernel = Some("changed".into());
    let e = store.check_in(changed).await.unwrap_err();
    assert!(matches!(e, StoreError::Replay { .. }), "{e}");
    unchanged(store.get_host(host.id).await.unwrap().unwrap());
    assert_eq!(
        store.get_job(j2).await.unwrap().unwrap().state,
        JobState::Queued
    );

    // A counter that does not exceed the last: refused with the last one, and the request's
    // nonce is not kept either (the same nonce with a good counter goes through below).
    for seq in [5, 4] {
        let e = store
            .check_in(check_in(&host, "n-2", seq, at(31), 5))
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::CounterNotIncreased { seq: s, last: 5, .. } if s == seq),
            "{e}"
        );
    }
    unchanged(store.get_host(host.id).await.unwrap().unwrap());
    assert_eq!(
        store.get_job(j2).await.unwrap().unwrap().state,
        JobState::Queued
    );

    // Changed facts whose audit entry the store refuses (an empty action): the whole
    // check-in is undone, its nonce and counter with it.
    let mut refused = check_in(&host, "n-2", 6, at(32), 5);
    refused.facts.kernel = Some("changed".into());
    refused.facts_audit = entry(at(32), "", "h");
    let e = store.check_in(refused).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "audit.action",
                ..
            }
        ),
        "{e}"
    );
    unchanged(store.get_host(host.id).await.unwrap().unwrap());
    assert_eq!(
        store.get_job(j2).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert_eq!(audit_seq(&store).await, start);

    // Values that cannot be stored, and hosts that do not exist.
    let e = store
        .check_in(check_in(&host, &"n".repeat(129), 6, at(33), 5))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::TooLong { .. }), "{e}");
    let e = store
        .check_in(check_in(&host, "", 6, at(33), 5))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    let e = store
        .check_in(check_in(&host, "n-9", u64::MAX, at(33), 5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "check-in counter",
                ..
            }
        ),
        "{e}"
    );
    let mut nobody = check_in(&host, "n-9", 1, at(33), 5);
    nobody.host = Uuid::new_v4();
    let e = store.check_in(nobody).await.unwrap_err();
    assert!(
        matches!(e, StoreError::NotFound { kind: "host", .. }),
        "{e}"
    );
    unchanged(store.get_host(host.id).await.unwrap().unwrap());
    assert_eq!(audit_seq(&store).await, start);

    // The refused request's nonce was not kept: with a good counter it goes through, and
    // leases the job waiting.
    let ok = store
        .check_in(check_in(&host, "n-2", 6, at(34), 5))
        .await
        .unwrap();
    assert_eq!(ids(&ok), vec![j2, j1]);
    assert_eq!(ok.host.check_in_seq, Some(6));
}

pub async fn check_ins_racing_with_one_counter_accept_exactly_one(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let j1 = job(&store, host.id, 10).await;
    let mut racers = Vec::new();
    for i in 0..8 {
        let (store, request) = (
            store.clone(),
            check_in(&host, &format!("race-{i}"), 1, at(20), 5),
        );
        racers.push(tokio::spawn(async move { store.check_in(request).await }));
    }
    let mut accepted = Vec::new();
    for r in racers {
        match r.await.unwrap() {
            Ok(c) => accepted.push(c),
            Err(StoreError::CounterNotIncreased {
                seq: 1, last: 1, ..
            }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(accepted.len(), 1);
    assert_eq!(ids(&accepted[0]), vec![j1]);
    let job = store.get_job(j1).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1, "leased once");

    // Racing different counters, each with other facts (two machines on one identity): no
    // check-in fails for any other reason, the highest counter stays, and every accepted
    // change of facts is audited.
    let start = audit_seq(&store).await;
    let mut racers = Vec::new();
    for seq in 2..=9u64 {
        let mut request = check_in(&host, &format!("second-race-{seq}"), seq, at(30), 5);
        request.facts.kernel = Some(format!("6.1.0-{seq}-amd64"));
        let store = store.clone();
        racers.push(tokio::spawn(async move { store.check_in(request).await }));
    }
    let mut changed = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(_) => changed += 1,
            Err(StoreError::CounterNotIncreased { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let got = store.get_host(host.id).await.unwrap().unwrap();
    assert_eq!(got.check_in_seq, Some(9));
    assert_eq!(got.facts.kernel.as_deref(), Some("6.1.0-9-amd64"));
    let facts_events = store
        .audit_events(start, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.action == "host.facts")
        .count();
    assert_eq!(facts_events, changed);
}
