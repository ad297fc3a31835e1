//! `patchwarden demo` as a real process: it serves on loopback, its admin token works over
//! HTTP (and nothing works without it), the simulated fleet spans Debian, AlmaLinux and
//! Alpine in the `test` and `broad` rings, the open findings reach every SLA state the server
//! can hold (breached, due soon, on time, and excepted under the demo's approved exceptions,
//! with an expired exception's host breached again), Ctrl-C (SIGINT)
//! stops it with exit 0, and a second start on the same data directory serves the same fleet
//! without adding a host.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

/// The fleet the test asks for: enough for every OS, ring and cohort, small enough for a
/// debug build to seed in seconds (the default is 300).
const FLEET: u32 = 60;

struct Demo {
    child: Child,
    url: String,
    token: String,
    /// The demo team's password.
    team_password: String,
    /// The summary lines it printed (hosts and findings by state).
    summary: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the demo and reads its stdout up to the "Ctrl-C stops it" line; a demo that ends
/// before that fails the test with what it said on stderr.
fn start(data_dir: &std::path::Path, port: u16) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .args(["demo", "--fleet", &FLEET.to_string(), "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut token, mut summary) = (None, None, Vec::new());
    let mut team_password = None;
    loop {
        let Some(Ok(line)) = lines.next() else {
            let status = child.wait().unwrap();
            panic!(
                "the demo ended ({status}) before serving:\n{}",
                errors.join().unwrap()
            );
        };
        if let Some(u) = line.strip_prefix("Patchwarden demo: serving at ") {
            url = Some(u.to_owned());
        }
        if let Some(p) = line
            .strip_prefix("the team, all with the password ")
            .and_then(|p| p.strip_suffix(':'))
        {
            team_password = Some(p.to_owned());
        }
        if let Some(t) = line.strip_prefix("api token: ") {
            token = Some(t.to_owned());
        }
        if line.starts_with("hosts:") || line.starts_with("open findings:") {
            summary.push(line.clone());
        }
        if line.starts_with("Ctrl-C stops it") {
            break;
        }
    }
    // Keep draining stdout so the demo never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Demo {
        child,
        url: url.expect("the demo prints its URL"),
        token: token.expect("the demo prints an API token"),
        team_password: team_password.expect("the demo prints its team's password"),
        summary,
    }
}

/// Ctrl-C, as a person would press it; the demo must exit 0.
fn interrupt(mut demo: Demo) {
    let status = Command::new("kill")
        .args(["-INT", &demo.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = demo.child.wait().unwrap();
    assert!(exit.success(), "the demo exited with {exit} on Ctrl-C");
}

fn http() -> reqwest::Client {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn get(demo: &Demo, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = http().get(format!("{}{path}", demo.url));
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Every item of a paged list (`items`, `next_after`).
async fn all(demo: &Demo, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page_path = match &after {
            Some(a) => format!("{path}{sep}limit=1000&after={a}"),
            None => format!("{path}{sep}limit=1000"),
        };
        let (status, page) = get(demo, &page_path, Some(&demo.token)).await;
        assert_eq!(status, 200, "{page_path}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match &page["next_after"] {
            Value::Null => return items,
            Value::String(s) => after = Some(s.clone()),
            other => after = Some(other.to_string()),
        }
    }
}

/// Hosts by (ecosystem, ring), and open findings by SLA state.
async fn census(demo: &Demo) -> (BTreeMap<(String, String), u32>, BTreeMap<&'static str, u32>) {
    let mut hosts = BTreeMap::new();
    for h in all(demo, "/api/v1/hosts").await {
        let key = (
            h["ecosystem"].as_str().unwrap_or("-").to_owned(),
            h["ring"].as_str().unwrap_or("-").to_owned(),
        );
        *hosts.entry(key).or_insert(0) += 1;
    }
    let now = patchwarden_server::clock::now();
    let soon = now.checked_add(SignedDuration::from_hours(7 * 24)).unwrap();
    let mut states = BTreeMap::new();
    for f in all(demo, "/api/v1/findings?state=open").await {
        if f["finding"]["ecosystem"] == "Debian:12" {
            *states.entry("on Debian 12").or_insert(0) += 1;
        }
        let due: Option<Timestamp> = f["due_at"].as_str().map(|s| s.parse().unwrap());
        // The server's standing, checked against the due date where no exception applies.
        let state = match f["standing"].as_str() {
            Some("excepted") => {
                assert!(f["exception"]["number"].is_string(), "{f}");
                "excepted"
            }
            standing => {
                let by_date = match due {
                    None => "no due date",
                    Some(d) if d < now => "breached",
                    Some(d) if d < soon => "due soon",
                    Some(_) => "on time",
                };
                let expected = match by_date {
                    "no due date" => "on_time",
                    "due soon" => "due_soon",
                    "on time" => "on_time",
                    other => other,
                };
                assert_eq!(standing, Some(expected), "{f}");
                by_date
            }
        };
        *states.entry(state).or_insert(0) += 1;
    }
    (hosts, states)
}

#[test]
fn the_demo_serves_a_fleet_with_findings_in_every_state_and_starts_again_on_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo");
    let port = free_port();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let demo = start(&data_dir, port);
    let (hosts, states) = runtime.block_on(async {
        // Default-deny: without the token nothing about the fleet is served.
        let (status, _) = get(&demo, "/api/v1/hosts", None).await;
        assert_eq!(status, 401);
        census(&demo).await
    });
    let simulated: u32 = hosts
        .iter()
        .filter(|((_, ring), _)| ring != "-")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(simulated, FLEET, "{hosts:?}");
    let ecosystems: BTreeSet<&str> = hosts.keys().map(|(e, _)| e.as_str()).collect();
    for os in ["AlmaLinux:9", "Alpine:v3.11", "Debian:12"] {
        assert!(ecosystems.contains(os), "no {os} host: {hosts:?}");
    }
    let rings: BTreeSet<&str> = hosts.keys().map(|(_, r)| r.as_str()).collect();
    assert!(
        rings.contains("test") && rings.contains("broad"),
        "{hosts:?}"
    );
    // The Debian hosts have findings too: the bundled tracker sample's sope fix on `app` hosts.
    for state in [
        "breached",
        "due soon",
        "on time",
        "excepted",
        "on Debian 12",
    ] {
        assert!(
            states.get(state).copied().unwrap_or(0) > 0,
            "no {state} finding: {states:?}"
        );
    }
    // The exceptions: approved by someone other than the requester; three in force, whose
    // findings `state=excepted` lists, and one expired, whose host is breached again.
    runtime.block_on(async {
        let (status, list) = get(&demo, "/api/v1/exceptions", Some(&demo.token)).await;
        assert_eq!(status, 200, "{list}");
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 4, "{list}");
        for e in items {
            assert_eq!(e["state"], "approved", "{e}");
            assert_ne!(e["requester"], e["decided_by"], "{e}");
            assert!(
                !e["exception"]["request"]["controls"]
                    .as_array()
                    .unwrap()
                    .is_empty()
            );
        }
        let in_force = items.iter().filter(|e| e["in_force"] == true).count();
        assert_eq!(in_force, 3, "{list}");
        let expired: Vec<&Value> = items.iter().filter(|e| e["expired"] == true).collect();
        assert_eq!(expired.len(), 1, "{list}");
        let excepted = all(&demo, "/api/v1/findings?state=excepted").await;
        assert_eq!(excepted.len() as u32, states["excepted"]);
        let host = expired[0]["hosts"][0].as_str().unwrap();
        let back = all(&demo, &format!("/api/v1/findings?host={host}")).await;
        assert!(
            back.iter().any(|f| f["standing"] == "breached"),
            "the expired exception's host has no breached finding"
        );
        assert!(back.iter().all(|f| f["standing"] != "excepted"));
    });
    // The changes: a month ago the SOGo update went through the whole process and closed the
    // findings it fixed; today one change is scheduled into the AlmaLinux window and
    // announced, one waits for an approver, one is a draft; the calendar has the windows and
    // the freeze.
    runtime.block_on(async {
        let (status, changes) = get(&demo, "/api/v1/changes", Some(&demo.token)).await;
        assert_eq!(status, 200, "{changes}");
        let changes = changes.as_array().unwrap().clone();
        let by_state = |state: &str| -> Vec<&Value> {
            changes.iter().filter(|c| c["state"] == state).collect()
        };
        assert_eq!(changes.len(), 4, "{changes:#?}");
        let closed = by_state("closed");
        assert_eq!(closed.len(), 1, "{changes:#?}");
        let sogo = closed[0];
        assert!(sogo["title"].as_str().unwrap().contains("SOGo"), "{sogo}");
        let requester = &sogo["requester"];
        assert_ne!(&sogo["approved"]["by"], requester, "{sogo}");
        assert_ne!(&sogo["authorised"]["by"], requester, "{sogo}");
        let rings = sogo["rings"].as_array().unwrap();
        assert!(rings.len() >= 2 && rings[0]["test"] == true, "{sogo}");
        assert!(rings.iter().all(|r| r["state"] == "verified"), "{sogo}");
        let started: Timestamp = sogo["window_start"].as_str().unwrap().parse().unwrap();
        let age = patchwarden_server::clock::now().duration_since(started);
        assert!(
            age > SignedDuration::from_hours(27 * 24) && age < SignedDuration::from_hours(37 * 24),
            "the history is {age:?} old"
        );
        let fixed = all(&demo, "/api/v1/findings?state=closed").await;
        assert!(
            fixed.iter().any(|f| f["finding"]["package"] == "libsope1"
                && f["fixed_version"] == "5.8.0-1+deb12u1"),
            "no SOGo finding closed by the change"
        );
        let scheduled = by_state("scheduled");
        assert_eq!(scheduled.len(), 1, "{changes:#?}");
        let start: Timestamp = scheduled[0]["window_start"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(start > patchwarden_server::clock::now(), "{}", scheduled[0]);
        assert!(scheduled[0]["announce_at"].is_string(), "{}", scheduled[0]);
        assert_eq!(by_state("submitted").len(), 1, "{changes:#?}");
        assert_eq!(by_state("draft").len(), 1, "{changes:#?}");
        let (status, calendar) = get(&demo, "/api/v1/calendar", Some(&demo.token)).await;
        assert_eq!(status, 200);
        let kinds: Vec<&str> = calendar
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["spec"]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "window").count(),
            3,
            "{calendar}"
        );
        assert!(kinds.contains(&"freeze"), "{calendar}");
        // The public status page shows both: the one patched, the one announced.
        let page = http()
            .get(format!("{}/status", demo.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for number in [
            sogo["number"].as_str().unwrap(),
            scheduled[0]["number"].as_str().unwrap(),
        ] {
            assert!(page.contains(number), "the status page lacks {number}");
        }
        // The team logs in with the printed password.
        let response = http()
            .post(format!("{}/api/v1/session", demo.url))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "username": "pieter.approver", "password": demo.team_password,
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    });
    // The state file it keeps the login in is the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data_dir.join("demo-login.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "demo-login.json is mode {mode:o}");
    let first_summary = demo.summary.clone();
    let token = demo.token.clone();
    interrupt(demo);

    let again = start(&data_dir, port);
    assert_eq!(again.token, token, "the second start prints the same login");
    let (hosts_again, states_again) = runtime.block_on(census(&again));
    assert_eq!(hosts_again, hosts, "the second start changed the fleet");
    let total = |s: &BTreeMap<&str, u32>| s.values().sum::<u32>();
    assert_eq!(total(&states_again), total(&states));
    assert_eq!(again.summary.first(), first_summary.first());
    interrupt(again);
}
