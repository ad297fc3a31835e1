//! Conformance: jobs, leases and reports.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::fixtures::{at, enrolled, entry};
use super::{TestDatabase, open};
use crate::{JobFilter, JobReport, JobState, NewJob, Store, StoreError};

fn new_job(host: Uuid) -> NewJob {
    NewJob {
        id: Uuid::new_v4(),
        host,
        kind: json!({"kind": "install", "packages": [{"name": "openssl", "version": "3.0.15-1~deb12u1"}]}),
        created_by: "change:CR-42".into(),
    }
}

async fn create(store: &Arc<dyn Store>, host: Uuid, secs: i64) -> crate::Job {
    let job = new_job(host);
    let id = job.id;
    store
        .create_job(
            job,
            at(secs),
            entry(at(secs), "job.create", format!("job:{id}")),
        )
        .await
        .unwrap()
}

pub async fn jobs_round_trip_and_lease_oldest_first(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let other = enrolled(&store, "web", "web-2").await;
    let j1 = create(&store, host.id, 10).await;
    let j2 = create(&store, host.id, 11).await;
    let j3 = create(&store, host.id, 12).await;
    let theirs = create(&store, other.id, 13).await;
    assert_eq!(j1.state, JobState::Queued);
    assert_eq!((j1.attempts, j1.lease_until), (0, None));
    assert_eq!(j1.created_at, at(10));
    assert_eq!(j1.kind, new_job(host.id).kind);
    assert_eq!(store.get_job(j1.id).await.unwrap(), Some(j1.clone()));
    assert_eq!(store.get_job(Uuid::new_v4()).await.unwrap(), None);

    let e = store
        .create_job(
            new_job(Uuid::new_v4()),
            at(14),
            entry(at(14), "job.create", "j"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::NotFound { kind: "host", .. }),
        "{e}"
    );
    let mut dup = new_job(host.id);
    dup.id = j1.id;
    let e = store
        .create_job(dup, at(14), entry(at(14), "job.create", "j"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }), "{e}");

    let leased = store
        .lease_jobs(host.id, at(80), 2, at(20), entry(at(20), "job.lease", "h"))
        .await
        .unwrap();
    assert_eq!(
        leased.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![j1.id, j2.id]
    );
    assert!(
        leased.iter().all(|j| j.state == JobState::Leased
            && j.lease_until == Some(at(80))
            && j.attempts == 1)
    );
    // Leased jobs are not handed out again while their lease holds; the host's last one is.
    let rest = store
        .lease_jobs(host.id, at(90), 10, at(30), entry(at(30), "job.lease", "h"))
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|j| j.id).collect::<Vec<_>>(), vec![j3.id]);
    let none = store
        .lease_jobs(host.id, at(90), 10, at(31), entry(at(31), "job.lease", "h"))
        .await
        .unwrap();
    assert!(none.is_empty());

    let mine = store
        .list_jobs(&JobFilter {
            host: Some(host.id),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.len(), 3);
    let queued = store
        .list_jobs(&JobFilter {
            state: Some(JobState::Queued),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        queued.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![theirs.id]
    );
}

pub async fn a_job_leased_by_host_a_cannot_be_reported_by_host_b(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let a = enrolled(&store, "web", "a").await;
    let b = enrolled(&store, "web", "b").await;
    let job = create(&store, a.id, 10).await;
    let leased = store
        .lease_jobs(a.id, at(100), 5, at(20), entry(at(20), "job.lease", "a"))
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    // Host b cannot lease it either.
    let stolen = store
        .lease_jobs(b.id, at(100), 5, at(200), entry(at(200), "job.lease", "b"))
        .await
        .unwrap();
    assert!(stolen.is_empty());

    let head = store.audit_head().await.unwrap();
    let before = store.get_job(job.id).await.unwrap();
    for report in [
        JobReport::Progress {
            detail: json!({"step": "download"}),
        },
        JobReport::Finished {
            success: true,
            detail: json!({"installed": []}),
        },
    ] {
        let e = store
            .report_job(
                b.id,
                job.id,
                report,
                at(30),
                entry(at(30), "job.report", "b"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::NotJobOwner { job: j, host: h } if j == job.id && h == b.id),
            "{e}"
        );
    }
    assert_eq!(store.get_job(job.id).await.unwrap(), before);
    assert_eq!(store.audit_head().await.unwrap(), head);

    let e = store
        .report_job(
            a.id,
            Uuid::new_v4(),
            JobReport::Progress { detail: json!(1) },
            at(30),
            entry(at(30), "job.report", "a"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { kind: "job", .. }), "{e}");
}

pub async fn job_reports_are_idempotent_and_a_finished_job_keeps_its_outcome(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let a = enrolled(&store, "web", "a").await;
    let job = create(&store, a.id, 10).await;
    store
        .lease_jobs(a.id, at(100), 5, at(20), entry(at(20), "job.lease", "a"))
        .await
        .unwrap();
    let progress = JobReport::Progress {
        detail: json!({"step": "install", "done": 1, "of": 3}),
    };
    let report = |r: JobReport, secs: i64| {
        let store = store.clone();
        async move {
            store
                .report_job(
                    a.id,
                    job.id,
                    r,
                    at(secs),
                    entry(at(secs), "job.report", "j"),
                )
                .await
        }
    };
    let running = report(progress.clone(), 30).await.unwrap();
    assert_eq!(running.state, JobState::Running);
    assert_eq!(running.updated_at, at(30));
    let head = store.audit_head().await.unwrap();
    // A retry of the same report changes nothing, not even the update time.
    assert_eq!(report(progress.clone(), 31).await.unwrap(), running);
    assert_eq!(store.audit_head().await.unwrap(), head);

    let done = JobReport::Finished {
        success: true,
        detail: json!({"installed": [{"name": "openssl", "version": "3.0.15-1~deb12u1"}]}),
    };
    let finished = report(done.clone(), 40).await.unwrap();
    assert_eq!(finished.state, JobState::Succeeded);
    assert_eq!(finished.finished_at, Some(at(40)));
    assert_eq!(finished.progress, running.progress);
    let head = store.audit_head().await.unwrap();
    assert_eq!(report(done, 41).await.unwrap(), finished);
    assert_eq!(report(progress, 42).await.unwrap(), finished);
    let e = report(
        JobReport::Finished {
            success: false,
            detail: json!({"error": "late"}),
        },
        43,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::JobAlreadyFinished { .. }), "{e}");
    assert_eq!(store.get_job(job.id).await.unwrap(), Some(finished));
    assert_eq!(store.audit_head().await.unwrap(), head);
    // A finished job is never leased again.
    let again = store
        .lease_jobs(
            a.id,
            at(2000),
            5,
            at(1000),
            entry(at(1000), "job.lease", "a"),
        )
        .await
        .unwrap();
    assert!(again.is_empty());
}

pub async fn expired_leases_are_leased_again(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let a = enrolled(&store, "web", "a").await;
    let leased_only = create(&store, a.id, 10).await;
    let running = create(&store, a.id, 11).await;
    store
        .lease_jobs(a.id, at(100), 5, at(20), entry(at(20), "job.lease", "a"))
        .await
        .unwrap();
    store
        .report_job(
            a.id,
            running.id,
            JobReport::Progress {
                detail: json!("started"),
            },
            at(30),
            entry(at(30), "job.report", "a"),
        )
        .await
        .unwrap();
    // Just before the deadline nothing is due; at it, both are (the agent died mid-job).
    let early = store
        .lease_jobs(a.id, at(300), 5, at(99), entry(at(99), "job.lease", "a"))
        .await
        .unwrap();
    assert!(early.is_empty());
    let again = store
        .lease_jobs(a.id, at(300), 5, at(100), entry(at(100), "job.lease", "a"))
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|j| (j.id, j.attempts, j.lease_until))
            .collect::<Vec<_>>(),
        vec![
            (leased_only.id, 2, Some(at(300))),
            (running.id, 2, Some(at(300)))
        ]
    );
    assert!(again.iter().all(|j| j.state == JobState::Leased));
}

pub async fn concurrent_leases_hand_each_job_to_one_caller(db: Arc<dyn TestDatabase>) {
    let first = open(&db).await;
    let second = open(&db).await;
    let a = enrolled(&first, "web", "a").await;
    let mut ids = HashSet::new();
    for i in 0..12 {
        ids.insert(create(&first, a.id, 10 + i).await.id);
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let host = a.id;
        tasks.push(tokio::spawn(async move {
            store
                .lease_jobs(host, at(500), 3, at(100), entry(at(100), "job.lease", "a"))
                .await
                .unwrap()
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for job in t.await.unwrap() {
            assert!(seen.insert(job.id), "job {} was leased twice", job.id);
        }
    }
    assert_eq!(seen, ids);
}
