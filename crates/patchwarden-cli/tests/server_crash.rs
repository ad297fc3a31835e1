//! Crash test with real processes: `patchwarden serve` is killed with SIGKILL while an agent is
//! uploading an inventory (a delta, then a full one for a re-inventory job) and reporting the
//! job's result, at several moments. After each restart nothing is half-written — the
//! inventory held and the findings agree with `patchwarden scan`, the audit chain verifies —
//! and the agent's retry completes each change exactly once: every inventory digest is
//! recorded once, every job has one result.

mod server_support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use patchwarden_api::v1::jobs::JobKind;
use patchwarden_core::audit::Actor;
use patchwarden_store::{FindingFilter, FindingState, HostFilter, JobFilter, JobState};
use server_support::{
    audit_verify, bin, debian_root, run_ok, scan_rows, security_feed, shared_data, start_server,
    upgrade_package,
};

/// A loopback port free now (the server restarts on the same one, where the agent finds it).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_server_killed_during_uploads_and_job_reports_loses_nothing_and_retries_complete_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = debian_root(dir.path());
    let feed = security_feed(dir.path());
    let kev = shared_data().join("kev/known_exploited_vulnerabilities.json");
    let data_dir = dir.path().join("server");
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data_dir:?}\n[listen]\napi = \"127.0.0.1:{}\"\nmetrics = \"\"\n\
             [advisories]\nfiles = [{feed:?}, {kev:?}]\n",
            free_port()
        ),
    )
    .unwrap();
    let db = format!("sqlite://{}", data_dir.join("patchwarden.db").display());
    let mut server = start_server(&config);
    let secret = run_ok(
        bin()
            .args(["admin", "token", "create", "--database"])
            .arg(&db),
    );
    let state = dir.path().join("agent-state");
    let agent = |cmd: &mut Command| {
        cmd.args(["--state-dir"])
            .arg(&state)
            .arg("--root")
            .arg(&root);
    };
    let mut enroll = bin();
    enroll.args([
        "agent",
        "enroll",
        "--server",
        &server.url,
        "--token",
        secret.trim(),
    ]);
    enroll.args(["--ca-fingerprint", &server.fingerprint]);
    agent(&mut enroll);
    run_ok(&mut enroll);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (rows, _) = scan_rows(&root, &feed, &kev);
    // Distinct vulnerable packages and their fixes, one to upgrade per round.
    let mut upgrades: BTreeMap<String, String> = BTreeMap::new();
    for (_, package, _, _, fixed, _) in &rows {
        upgrades
            .entry(package.clone())
            .or_insert_with(|| fixed.clone());
    }
    let mut upgrades = upgrades.into_iter();
    let mut jobs = Vec::new();
    let mut interrupted = 0;
    for delay_ms in [0u64, 15, 40, 60, 75, 90, 110, 130, 150, 300] {
        let (package, fixed) = upgrades.next().unwrap();
        upgrade_package(&root, &package, &fixed);
        {
            let store = runtime
                .block_on(patchwarden_server::open_store(&db))
                .unwrap();
            let host = runtime
                .block_on(store.list_hosts(&HostFilter::default()))
                .unwrap()[0]
                .id;
            let job = runtime
                .block_on(patchwarden_server::admin::queue_job(
                    store.as_ref(),
                    host,
                    &JobKind::Reinventory,
                    Actor::Operator("crash-test".into()),
                    patchwarden_server::clock::now(),
                ))
                .unwrap();
            jobs.push(job.id);
        }
        let mut once = bin();
        once.args(["agent", "once"]);
        agent(&mut once);
        let child = once
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        let cut = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&cut.stdout),
            String::from_utf8_lossy(&cut.stderr)
        );
        println!(
            "killed after {delay_ms} ms: the agent's cycle {}",
            if cut.status.success() {
                "had finished".to_owned()
            } else {
                format!("was cut: {}", said.lines().last().unwrap_or(""))
            }
        );
        interrupted += usize::from(!cut.status.success());
        server = start_server(&config);
        // The retry: one cycle completes whatever the crash interrupted.
        let mut retry = bin();
        retry.args(["agent", "once"]);
        agent(&mut retry);
        run_ok(&mut retry);
    }
    assert!(interrupted > 0, "no kill landed inside an agent's cycle");
    let mut last = bin();
    last.args(["agent", "once"]);
    agent(&mut last);
    let out = run_ok(&mut last);
    assert!(out.contains("inventory unchanged"), "{out}");

    let store = runtime
        .block_on(patchwarden_server::open_store(&db))
        .unwrap();
    let host = runtime
        .block_on(store.list_hosts(&HostFilter::default()))
        .unwrap()[0]
        .id;
    // The findings held are scan's for the root as it is now.
    let (rows_now, _) = scan_rows(&root, &feed, &kev);
    let open = runtime
        .block_on(store.list_findings(&FindingFilter {
            host: Some(host),
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        }))
        .unwrap();
    assert_eq!(open.len(), rows_now.len());
    // Every job has its one result.
    let all_jobs = runtime
        .block_on(store.list_jobs(&JobFilter {
            host: Some(host),
            ..JobFilter::default()
        }))
        .unwrap();
    for id in &jobs {
        let job = all_jobs.iter().find(|j| j.id == *id).unwrap();
        assert_eq!(job.state, JobState::Succeeded, "job {id}");
    }
    // Each change was recorded once.
    let events = runtime.block_on(store.audit_events(0, 100_000)).unwrap();
    let mut digests: BTreeMap<String, usize> = BTreeMap::new();
    let mut finished: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        match e.entry.action.as_str() {
            "inventory.replace" => {
                let d = e.entry.after.as_ref().unwrap()["digest"].to_string();
                *digests.entry(d).or_default() += 1;
            }
            "job.finish" => *finished.entry(e.entry.object.clone()).or_default() += 1,
            _ => {}
        }
    }
    assert!(digests.len() >= 2, "{digests:?}");
    assert!(digests.values().all(|&n| n == 1), "{digests:?}");
    assert_eq!(finished.len(), jobs.len(), "{finished:?}");
    assert!(finished.values().all(|&n| n == 1), "{finished:?}");
    drop(store);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (code, text) = audit_verify(&db);
    assert_eq!(code, Some(0), "{text}");
}
