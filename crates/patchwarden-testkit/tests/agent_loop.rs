//! The agent's own code against a real server: `enroll` (which checks in at once, so the new
//! host is matched at enrollment), the `run` loop at the server's interval until told to stop,
//! and back-pressure: a server over its in-flight limit answers 503 with `Retry-After`.

use std::time::Duration;

use jiff::SignedDuration;
use patchwarden_agent::agent::{Agent, EnrollOptions, StateDir, enroll};
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_client::Signing;
use patchwarden_testkit::{TestServer, debian_facts};

/// A Debian 12 root with three packages.
fn root(dir: &std::path::Path) -> std::path::PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/machine-id"),
        "c0ffee00c0ffee00c0ffee00c0ffee00\n",
    )
    .unwrap();
    let mut status = String::new();
    for (name, version) in [
        ("bash", "5.2.15-2+b2"),
        ("zlib1g", "1:1.2.13.dfsg-1"),
        ("curl", "7.88.1-10+deb12u8"),
    ] {
        status.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"
        ));
    }
    std::fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
    root
}

#[tokio::test]
async fn the_agent_enrolls_then_checks_in_at_the_servers_interval_until_stopped() {
    let server = TestServer::start_with(|c| {
        c.agents.checkin_interval_secs = 1;
        c.agents.checkin_jitter_secs = 0;
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let root = root(dir.path());
    let state = StateDir::open(&dir.path().join("state")).unwrap();
    let (_, secret) = server.token("web", 1, SignedDuration::from_hours(1)).await;
    let (identity, report) = enroll(
        &state,
        EnrollOptions {
            server: server.url.clone(),
            token: secret,
            ca_fingerprint: Some(server.fingerprint),
            replace: false,
            root: root.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(identity.group, "web");
    assert_eq!(report.uploaded, Some("full"), "matched at enrollment");
    let host = uuid::Uuid::parse_str(&identity.host_id).unwrap();
    let held = server.store().get_inventory(host).await.unwrap().unwrap();
    assert_eq!(held.inventory.packages.len(), 3);

    // A wrong pin: the agent refuses the server.
    let mut wrong = server.fingerprint;
    wrong.0[0] ^= 1;
    let other = StateDir::open(&dir.path().join("other")).unwrap();
    let (_, secret) = server.token("web", 1, SignedDuration::from_hours(1)).await;
    let err = enroll(
        &other,
        EnrollOptions {
            server: server.url.clone(),
            token: secret,
            ca_fingerprint: Some(wrong),
            replace: false,
            root: root.clone(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("pinned CA"), "{err}");

    let mut agent = Agent::load(state, root).unwrap();
    agent
        .run(tokio::time::sleep(Duration::from_millis(2500)))
        .await
        .unwrap();
    let page = patchwarden_client::Client::new(
        &server.metrics_url(),
        &patchwarden_client::Trust::PlainHttp,
    )
    .unwrap()
    .get_raw("/metrics")
    .await
    .unwrap();
    let text = String::from_utf8(page.body).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("patchwarden_check_ins_total{outcome=\"ok\"}"))
        .unwrap();
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    // The enrollment's check-in and at least two of the loop's (at 0 s, 1 s, 2 s).
    assert!(count >= 3.0, "{line}");
}

#[tokio::test]
async fn a_server_over_its_in_flight_limit_answers_503_with_retry_after() {
    let server = TestServer::start_with(|c| {
        c.agents.max_in_flight = 1;
        c.agents.checkin_jitter_secs = 7;
    })
    .await;
    let (agent, _) = server
        .enroll(debian_facts("busy", "dddddddddddddddddddddddddddddddd"))
        .await;
    // Reads of a job that does not exist: they pass through the same limit and change
    // nothing, whichever get through.
    let requests: Vec<_> = (0..40)
        .map(|_| {
            let agent = agent.clone();
            tokio::spawn(async move {
                let path = format!("/api/v1/agent/jobs/{}", uuid::Uuid::new_v4());
                let signing = Signing::now(Some(agent.host_id()));
                agent
                    .send_raw("GET", &path, Vec::new(), None, &signing)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut busy = 0;
    for r in requests {
        let raw = r.await.unwrap();
        if raw.status != 404 {
            assert_eq!(raw.status, 503);
            let p = raw.problem();
            assert_eq!(p.code, ProblemCode::Overloaded);
            assert_eq!(raw.retry_after, Some(7));
            busy += 1;
        }
    }
    assert!(busy > 0, "40 simultaneous requests against a limit of 1");
}
