//! The agent protocol on PostgreSQL, whenever `PATCHWARDEN_TEST_POSTGRES` names a database (CI
//! sets it): the server on a fresh schema, an agent enrolling, checking in, uploading, taking
//! and finishing a job, a replay refused, a check-in counter accepted by one server refused by
//! another sharing the database, an enrolment request replayed to that other server refused,
//! and the audit chain verifying. Without the variable the test says it skipped, and why.

use std::sync::Arc;

use jiff::SignedDuration;
use patchwarden_api::v1::agent::{
    CHECK_IN_PATH, CheckInRequest, EnrollResponse, InventoryUpload, InventoryWanted,
};
use patchwarden_api::v1::jobs::{JobKind, JobOutcome, JobResult, JobState};
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_client::Signing;
use patchwarden_core::audit::{Actor, verify};
use patchwarden_core::inventory::Inventory;
use patchwarden_server::admin;
use patchwarden_store::Store;
use patchwarden_store_postgres::PgStore;
use patchwarden_testkit::{CapturedEnrollment, TestServer, debian_facts, now};
use uuid::Uuid;

const VAR: &str = "PATCHWARDEN_TEST_POSTGRES";

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{VAR} is set but PostgreSQL cannot be reached: {e}"));
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn the_agent_protocol_runs_on_postgresql() {
    let Ok(url) = std::env::var(VAR) else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the agent protocol on PostgreSQL needs {VAR} set to a database URL; CI \
             sets postgres://postgres@127.0.0.1:5432/test"
        );
        return;
    };
    let schema = format!("pw_server_{}", Uuid::new_v4().simple());
    admin_client(&url)
        .await
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.options(format!("-c search_path={schema}"));
    let store: Arc<dyn Store> = Arc::new(
        PgStore::connect(config, format!("{VAR} schema {schema}"))
            .await
            .unwrap(),
    );
    let server = TestServer::start_on_store(store).await;
    assert_eq!(server.store().backend(), "postgres");

    let facts = debian_facts("pg-1", "77777777777777777777777777777777");
    let (agent, _) = server.enroll(facts.clone()).await;
    let host = Uuid::parse_str(agent.host_id()).unwrap();
    let inventory = Inventory {
        host: facts.clone(),
        ..Inventory::default()
    };
    let request = CheckInRequest {
        seq: 1,
        facts: facts.clone(),
        packages: inventory.packages_digest(),
        agent_version: "t".into(),
    };
    admin::queue_job(
        server.store().as_ref(),
        host,
        &JobKind::Reinventory,
        Actor::Operator("alice".into()),
        now(),
    )
    .await
    .unwrap();
    let answer = agent.check_in(&request).await.unwrap();
    assert_eq!(answer.inventory, InventoryWanted::Full);
    assert_eq!(answer.jobs.len(), 1);
    agent
        .upload_inventory(&InventoryUpload::Full {
            inventory: inventory.clone(),
        })
        .await
        .unwrap();
    let ack = agent
        .job_result(
            &answer.jobs[0].id,
            &JobResult::new(JobOutcome::Succeeded, "uploaded"),
        )
        .await
        .unwrap();
    assert_eq!(ack.state, JobState::Succeeded);

    let signing = Signing::now(Some(agent.host_id()));
    let body = serde_json::to_vec(&CheckInRequest { seq: 2, ..request }).unwrap();
    let first = agent
        .send_raw("POST", CHECK_IN_PATH, body.clone(), None, &signing)
        .await
        .unwrap();
    assert_eq!(first.status, 200);
    let replay = agent
        .send_raw("POST", CHECK_IN_PATH, body, None, &signing)
        .await
        .unwrap();
    assert_eq!(replay.problem().code, ProblemCode::Replayed);

    let (_, used) = server.token("db", 1, SignedDuration::from_hours(1)).await;
    server
        .try_enroll(
            &used,
            debian_facts("pg-2", "88888888888888888888888888888888"),
        )
        .await
        .unwrap();
    let err = server
        .try_enroll(
            &used,
            debian_facts("pg-3", "99999999999999999999999999999999"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::EnrollmentTokenRefused));

    // A second server sharing the database refuses a counter the first one accepted: one host
    // identity used from two machines is caught whichever server each machine reaches.
    let mut config_b: tokio_postgres::Config = url.parse().unwrap();
    config_b.options(format!("-c search_path={schema}"));
    let store_b: Arc<dyn Store> = Arc::new(
        PgStore::connect(config_b, format!("{VAR} schema {schema}"))
            .await
            .unwrap(),
    );
    let server_b = TestServer::start_on_store(store_b).await;
    let key = patchwarden_client::AgentKey::from_secret(&agent.key().secret());
    let copy = server_b.client.agent(agent.host_id(), key);
    let err = copy
        .check_in(&CheckInRequest {
            seq: 2,
            facts: facts.clone(),
            packages: inventory.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::HostIdentityConflict));
    let quarantined = server.store().get_host(host).await.unwrap().unwrap();
    assert_eq!(quarantined.state, patchwarden_store::HostState::Quarantined);

    // An enrolment request sent again, to a server sharing the database that never saw its
    // nonce, asking to replace the host it enrolled (same machine id): refused as a replay by
    // the enrolment's look-up of its key, and the host it would have retired stays active.
    let (_, secret) = server.token("web", 2, SignedDuration::from_hours(1)).await;
    let enrolment = CapturedEnrollment::new(
        &secret,
        debian_facts("pg-4", "44444444444444444444444444444444"),
        true,
    );
    let first = enrolment.send_to(&server).await;
    assert_eq!(first.status, 200);
    let enrolled: EnrollResponse = first.json("enrolment answer").unwrap();
    let replay = enrolment.send_to(&server_b).await;
    assert_eq!(replay.problem().code, ProblemCode::Replayed);
    let original = server
        .store()
        .get_host(Uuid::parse_str(&enrolled.host_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(original.state, patchwarden_store::HostState::Active);
    server_b.stop().await;

    let events = server.store().audit_events(0, 10_000).await.unwrap();
    assert_eq!(verify(&events).unwrap().events, events.len() as i64);
    server.stop().await;
    admin_client(&url)
        .await
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
