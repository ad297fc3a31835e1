//! The agent protocol through a real server (TLS, signatures, SQLite) and the real client:
//! enrollment, check-in, inventory upload in full and as a delta, jobs, and the audit chain
//! every change leaves.

use jiff::SignedDuration;
use patchwarden_api::v1::agent::{
    CheckInRequest, EnrollResponse, InventoryUpload, InventoryWanted,
};
use patchwarden_api::v1::jobs::{
    JobKind, JobOutcome, JobProgress, JobResult, JobState, PackagePin,
};
use patchwarden_api::v1::manifest::{
    Approval, ApprovalRole, MANIFEST_VERSION, Manifest, ManifestAction, ManifestKind,
};
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_client::AgentClient;
use patchwarden_core::audit::{Actor, verify};
use patchwarden_core::inventory::{HostFacts, Inventory, Manager, Package, PackageStatus};
use patchwarden_server::admin;
use patchwarden_store::HostState;
use patchwarden_testkit::{CapturedEnrollment, TestServer, debian_facts, now};
use uuid::Uuid;

fn pkg(name: &str, version: &str) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: Some("amd64".into()),
        source_name: Some(name.into()),
        source_version: Some(version.into()),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

fn inventory(facts: &HostFacts, packages: Vec<Package>) -> Inventory {
    let mut inv = Inventory {
        host: facts.clone(),
        packages,
        ..Inventory::default()
    };
    inv.canonicalize();
    inv
}

async fn check_in(
    agent: &AgentClient,
    seq: u64,
    inv: &Inventory,
) -> patchwarden_api::v1::agent::CheckInResponse {
    agent
        .check_in(&CheckInRequest {
            seq,
            facts: inv.host.clone(),
            packages: inv.packages_digest(),
            agent_version: "test".into(),
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_agent_enrolls_checks_in_and_uploads_in_full_then_as_a_delta() {
    let server = TestServer::start().await;
    let facts = debian_facts("web-1", "0123456789abcdef0123456789abcdef");
    let (agent, enrolled) = server.enroll(facts.clone()).await;
    assert_eq!(enrolled.group, "default");

    let first = inventory(
        &facts,
        vec![pkg("bash", "5.2.15-2+b2"), pkg("zlib1g", "1:1.2.13.dfsg-1")],
    );
    let answer = check_in(&agent, 1, &first).await;
    assert_eq!(answer.inventory, InventoryWanted::Full);
    assert!(answer.standing.new_host);
    let accepted = agent
        .upload_inventory(&InventoryUpload::Full {
            inventory: first.clone(),
        })
        .await
        .unwrap();
    assert_eq!(accepted.packages, first.packages_digest());
    assert_eq!(
        check_in(&agent, 2, &first).await.inventory,
        InventoryWanted::Nothing
    );

    let second = inventory(
        &facts,
        vec![pkg("bash", "5.2.15-2+b7"), pkg("curl", "7.88.1-10")],
    );
    let answer = check_in(&agent, 3, &second).await;
    assert_eq!(
        answer.inventory,
        InventoryWanted::Delta {
            base: first.packages_digest()
        }
    );
    let delta = patchwarden_core::inventory::delta(&first, &second);
    let accepted = agent
        .upload_inventory(&InventoryUpload::Delta {
            delta: delta.clone(),
        })
        .await
        .unwrap();
    assert_eq!(accepted.packages, second.packages_digest());
    let host = Uuid::parse_str(agent.host_id()).unwrap();
    let stored = server.store().get_inventory(host).await.unwrap().unwrap();
    assert_eq!(stored.inventory.packages, second.packages);

    // The same delta again no longer applies: the server says so and the agent sends it all.
    let err = agent
        .upload_inventory(&InventoryUpload::Delta { delta })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::InventoryBaseMismatch));
    assert_eq!(err.status(), Some(409));

    // Every change is in the audit chain, and the chain verifies.
    let events = server.store().audit_events(0, 1000).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.entry.action.as_str()).collect();
    for wanted in [
        "enrollment_token.create",
        "host.enroll",
        "inventory.replace",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} missing from {actions:?}"
        );
    }
    assert_eq!(verify(&events).unwrap().events, events.len() as i64);
}

#[tokio::test]
async fn jobs_are_leased_at_check_in_reported_once_and_idempotent_by_id() {
    let server = TestServer::start().await;
    let facts = debian_facts("db-1", "11111111111111111111111111111111");
    let (agent, _) = server.enroll(facts.clone()).await;
    let host = Uuid::parse_str(agent.host_id()).unwrap();
    let packages = vec![PackagePin {
        name: "openssl".into(),
        version: "3.0.15-1~deb12u1".into(),
        arch: Some("amd64".into()),
    }];
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        change: "PCR-2026-0001".into(),
        kind: ManifestKind::Normal,
        host: host.to_string(),
        action: ManifestAction::Install,
        packages: packages.clone(),
        window: None,
        expires_at: now() + SignedDuration::from_hours(24),
        issued_at: now(),
        requester: "olive".into(),
        approvals: vec![
            Approval {
                role: ApprovalRole::Approver,
                by: "amos".into(),
                at: now(),
            },
            Approval {
                role: ApprovalRole::Authoriser,
                by: "dora".into(),
                at: now(),
            },
        ],
        restart: Vec::new(),
        reboot_allowed: false,
        health_checks: Vec::new(),
    };
    let kind = JobKind::Install { packages, manifest };
    let job = admin::queue_job(
        server.store().as_ref(),
        host,
        &kind,
        Actor::Operator("alice".into()),
        now(),
    )
    .await
    .unwrap();

    let inv = inventory(&facts, vec![pkg("openssl", "3.0.11-1~deb12u2")]);
    let answer = check_in(&agent, 1, &inv).await;
    assert_eq!(answer.jobs.len(), 1);
    let leased = &answer.jobs[0];
    assert_eq!(leased.id, job.id.to_string());
    assert_eq!(leased.work, kind);
    assert_eq!(leased.state, JobState::Leased);
    assert!(leased.lease_expires_at.is_some());
    assert_eq!(agent.job(&leased.id).await.unwrap().work, kind);

    let progress = JobProgress {
        message: "downloading".into(),
        percent: Some(40),
    };
    let ack = agent.job_progress(&leased.id, &progress).await.unwrap();
    assert!(ack.recorded);
    assert_eq!(ack.state, JobState::Running);
    assert!(
        !agent
            .job_progress(&leased.id, &progress)
            .await
            .unwrap()
            .recorded
    );

    let done = JobResult::new(JobOutcome::Succeeded, "openssl 3.0.15-1~deb12u1 installed");
    let ack = agent.job_result(&leased.id, &done).await.unwrap();
    assert!(ack.recorded);
    assert_eq!(ack.state, JobState::Succeeded);
    // A retry of the same report is acknowledged and changes nothing.
    let head = server.store().audit_head().await.unwrap();
    let again = agent.job_result(&leased.id, &done).await.unwrap();
    assert!(!again.recorded);
    assert_eq!(server.store().audit_head().await.unwrap(), head);
    // A different result for a finished job is a conflict.
    let other = JobResult::new(JobOutcome::Failed, "no");
    let err = agent.job_result(&leased.id, &other).await.unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::JobConflict));
    // A finished job is not leased again.
    assert!(check_in(&agent, 2, &inv).await.jobs.is_empty());
    // An unknown job id and a malformed one read as not found.
    for id in [Uuid::new_v4().to_string(), "../../etc".to_string()] {
        let err = agent.job(&id).await.unwrap_err();
        assert_eq!(err.code(), Some(ProblemCode::NotFound), "{id}");
    }
}

#[tokio::test]
async fn a_machine_id_already_enrolled_is_refused_or_replaced_explicitly() {
    let server = TestServer::start().await;
    let facts = debian_facts("app-1", "22222222222222222222222222222222");
    let (old_agent, old) = server.enroll(facts.clone()).await;

    // A clone (or a re-imaged host) with the same machine id: refused, nothing merged.
    let (_, secret) = server
        .token("default", 5, SignedDuration::from_hours(1))
        .await;
    let err = server.try_enroll(&secret, facts.clone()).await.unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::MachineIdConflict));
    let hosts = server
        .store()
        .find_hosts_by_machine_id("22222222222222222222222222222222")
        .await
        .unwrap();
    assert_eq!(hosts.len(), 1);

    // Re-enrolling with `replace` retires the old host explicitly; its credential stops working.
    let key = patchwarden_client::AgentKey::generate().unwrap();
    let response = server
        .client
        .enroll(
            &key,
            &patchwarden_api::v1::agent::EnrollRequest {
                token: patchwarden_api::v1::agent::EnrollmentSecret(secret.clone()),
                public_key: key.public_hex(),
                facts: facts.clone(),
                replace: true,
                agent_version: "test".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(response.replaced.as_deref(), Some(old.host_id.as_str()));
    let inv = inventory(&facts, vec![]);
    let err = old_agent
        .check_in(&CheckInRequest {
            seq: 1,
            facts: facts.clone(),
            packages: inv.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::HostRetired));
    let new_agent = server.client.agent(&response.host_id, key);
    check_in(&new_agent, 1, &inv).await;
    let actions: Vec<String> = server
        .store()
        .audit_events(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.action)
        .collect();
    assert!(actions.contains(&"host.retire".to_string()), "{actions:?}");
    // The retirement is the host's standing in the store, with who replaced it.
    let old_id = Uuid::parse_str(&old.host_id).unwrap();
    let retired = server.store().get_host(old_id).await.unwrap().unwrap();
    assert_eq!(retired.state, HostState::Retired);
    assert_eq!(
        retired.state_reason,
        Some(format!("replaced-by:{}", response.host_id))
    );
    assert!(retired.labels.is_empty(), "{:?}", retired.labels);
}

#[tokio::test]
async fn one_host_identity_used_from_two_machines_is_quarantined() {
    let server = TestServer::start().await;
    let facts = debian_facts("cache-1", "33333333333333333333333333333333");
    let (agent, _) = server.enroll(facts.clone()).await;
    let inv = inventory(&facts, vec![]);
    check_in(&agent, 5, &inv).await;
    // A copy of the agent's state on a second machine sends the counter the first one sent.
    let err = agent
        .check_in(&CheckInRequest {
            seq: 5,
            facts: facts.clone(),
            packages: inv.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::HostIdentityConflict));
    // From then on the host is quarantined, whatever it sends.
    let err = agent
        .check_in(&CheckInRequest {
            seq: 6,
            facts,
            packages: inv.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::HostIdentityConflict));
    let id = Uuid::parse_str(agent.host_id()).unwrap();
    let host = server.store().get_host(id).await.unwrap().unwrap();
    assert_eq!(host.state, HostState::Quarantined);
    assert_eq!(
        host.state_reason.as_deref(),
        Some(
            "check-in counter 5 after 5: two machines are using this host's credential (a \
             copied agent state directory)"
        )
    );

    // A different machine id under one host id is the same conflict.
    let facts2 = debian_facts("cache-2", "44444444444444444444444444444444");
    let (agent2, _) = server.enroll(facts2.clone()).await;
    let mut moved = facts2.clone();
    moved.machine_id = Some("55555555555555555555555555555555".into());
    let err = agent2
        .check_in(&CheckInRequest {
            seq: 1,
            facts: moved,
            packages: inv.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::HostIdentityConflict));
}

/// The counter used to live in each server's memory, so a restart forgot it and a copy of an
/// agent's state could replay its counters to the restarted server unnoticed. It is kept in
/// the store now.
#[tokio::test]
async fn a_check_in_counter_replayed_after_a_server_restart_is_refused() {
    let server = TestServer::start().await;
    let facts = debian_facts("cache-3", "12121212121212121212121212121212");
    let (agent, _) = server.enroll(facts.clone()).await;
    let inv = inventory(&facts, vec![]);
    check_in(&agent, 7, &inv).await;
    let host_id = agent.host_id().to_owned();
    let key = patchwarden_client::AgentKey::from_secret(&agent.key().secret());
    let (dir, config) = server.stop().await;

    let server = TestServer::start_in(dir, config).await;
    let agent = server.client.agent(&host_id, key);
    let err = agent
        .check_in(&CheckInRequest {
            seq: 7,
            facts: facts.clone(),
            packages: inv.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::HostIdentityConflict));
    let host = server
        .store()
        .get_host(Uuid::parse_str(&host_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(host.state, HostState::Quarantined);
    assert_eq!(host.check_in_seq, Some(7));
    // The quarantine holds for the honest machine's next counter too, until an operator acts.
    let err = agent
        .check_in(&CheckInRequest {
            seq: 8,
            facts,
            packages: inv.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::HostIdentityConflict));
}

/// An enrolment has no host yet, so its nonce is kept in the server's memory, which a restart
/// forgets. The same signed enrolment request sent again (asking to replace the host it
/// enrolled, as a re-imaged machine would) is still refused: it names a key a host already has.
#[tokio::test]
async fn an_enrolment_replayed_after_a_server_restart_is_refused_and_replaces_nothing() {
    let server = TestServer::start().await;
    let (token, secret) = server.token("web", 3, SignedDuration::from_hours(1)).await;
    let enrolment = CapturedEnrollment::new(
        &secret,
        debian_facts("replay-1", "13131313131313131313131313131313"),
        true,
    );
    let first = enrolment.send_to(&server).await;
    assert_eq!(first.status, 200);
    let enrolled: EnrollResponse = first.json("enrolment answer").unwrap();
    let (dir, config) = server.stop().await;

    let server = TestServer::start_in(dir, config).await;
    let head = server.store().audit_head().await.unwrap();
    let replay = enrolment.send_to(&server).await;
    assert_eq!(replay.status, 401);
    assert_eq!(replay.problem().code, ProblemCode::Replayed);
    // Nothing changed: the host it would have replaced is active, it is the only host, the
    // token's second use was not counted and no event was appended.
    let hosts = server
        .store()
        .find_hosts_by_machine_id("13131313131313131313131313131313")
        .await
        .unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].id.to_string(), enrolled.host_id);
    assert_eq!(hosts[0].state, HostState::Active);
    let tokens = server.store().list_enrollment_tokens().await.unwrap();
    assert_eq!(
        tokens.iter().find(|t| t.id == token.id).map(|t| t.uses),
        Some(1)
    );
    assert_eq!(server.store().audit_head().await.unwrap(), head);
}

#[tokio::test]
async fn probes_and_metrics_answer_on_their_listeners() {
    let server = TestServer::start().await;
    let (agent, _) = server
        .enroll(debian_facts("m-1", "66666666666666666666666666666666"))
        .await;
    let inv = inventory(
        &debian_facts("m-1", "66666666666666666666666666666666"),
        vec![],
    );
    check_in(&agent, 1, &inv).await;
    let health = server.client.get_raw("/healthz").await.unwrap();
    assert_eq!(health.status, 200);
    let ready = server.client.get_raw("/readyz").await.unwrap();
    assert_eq!(ready.status, 200);
    let metrics = patchwarden_client::Client::new(
        &server.metrics_url(),
        &patchwarden_client::Trust::PlainHttp,
    )
    .unwrap();
    let page = metrics.get_raw("/metrics").await.unwrap();
    assert_eq!(page.status, 200);
    let text = String::from_utf8(page.body).unwrap();
    assert!(
        text.contains("patchwarden_check_ins_total{outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("patchwarden_enrollments_total{outcome=\"enrolled\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("patchwarden_http_request_duration_seconds"),
        "{text}"
    );
    // The API listener does not serve the metrics.
    assert_eq!(server.client.get_raw("/metrics").await.unwrap().status, 404);
    // The CA the client pinned is the one the server hands out.
    let pem = server.client.ca_pem().await.unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
}
