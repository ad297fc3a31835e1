//! Throughput of the agent protocol on one real server (TLS, signatures, SQLite, matching):
//! N simulated agents, each with the 720 packages of the real Debian 12 status file, enroll,
//! upload their full inventory (gzip) at once, then check in as fast as they can for a bounded
//! time, then at a paced fleet rate. Prints check-ins/s with p50/p99 latency and full
//! uploads/s. Loopback only; bounded in
//! count (`PW_BENCH_AGENTS`, default 200) and time (`PW_BENCH_SECS`, default 10).
//!
//! `cargo bench -p patchwarden-testkit --bench agent_protocol`

use std::time::{Duration, Instant};

use jiff::SignedDuration;
use patchwarden_api::v1::agent::{CheckInRequest, InventoryUpload};
use patchwarden_core::inventory::{Inventory, Package};
use patchwarden_testkit::{TestServer, debian_facts, shared_data};
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn packages() -> Vec<Package> {
    let file = std::fs::File::open(shared_data().join("debian/debian12-host.status")).unwrap();
    patchwarden_agent::inventory::dpkg::parse_status(
        std::io::BufReader::new(file),
        patchwarden_agent::inventory::dpkg::MissingStatus::Reject,
    )
    .unwrap()
    .packages
}

/// One OSV advisory per source package of bookworm-security, fixed in the suite's version (as
/// in the CLI's end-to-end test), so matching does real work.
fn feed(dir: &std::path::Path) {
    let tsv =
        std::fs::read_to_string(shared_data().join("debian/bookworm-security-main-amd64.tsv"))
            .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if !seen.insert(cols[3].to_owned()) {
            continue;
        }
        let record = json!({
            "schema_version": "1.6.0", "id": format!("PWBENCH-{}", cols[3]),
            "upstream": [format!("CVE-2099-{:05}", seen.len())],
            "published": "2025-06-01T00:00:00Z", "modified": "2025-06-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": cols[3]},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": cols[1]}]}]}]
        });
        std::fs::write(dir.join(format!("{}.json", cols[3])), record.to_string()).unwrap();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run then too, but
    // small, so that the tests keep this file compiling and working.
    let quick = !std::env::args().any(|a| a == "--bench");
    let agents = if quick {
        4
    } else {
        env_or("PW_BENCH_AGENTS", 200)
    } as usize;
    let secs = if quick {
        1
    } else {
        env_or("PW_BENCH_SECS", 10)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let feeds = tempfile::tempdir().unwrap();
        feed(feeds.path());
        let spec = format!("osv:{}", feeds.path().display());
        let server = TestServer::start_with(|c| {
            c.advisories.files = vec![spec];
            c.agents.max_in_flight = 100_000;
        })
        .await;
        let packages = packages();
        let (_, secret) = server
            .token("bench", agents as u32, SignedDuration::from_hours(1))
            .await;

        let started = Instant::now();
        let mut clients = Vec::new();
        for i in 0..agents {
            let facts = debian_facts(&format!("bench-{i}"), &format!("{i:032x}"));
            let (agent, _) = server.try_enroll(&secret, facts.clone()).await.unwrap();
            let mut inventory = Inventory {
                host: facts,
                packages: packages.clone(),
                ..Inventory::default()
            };
            inventory.canonicalize();
            clients.push((agent, inventory));
        }
        let enroll = started.elapsed();

        let started = Instant::now();
        let uploads: Vec<_> = clients
            .iter()
            .map(|(agent, inventory)| {
                let (agent, inventory) = (agent.clone(), inventory.clone());
                tokio::spawn(async move {
                    agent
                        .upload_inventory(&InventoryUpload::Full { inventory })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut findings = 0;
        for u in uploads {
            findings += u.await.unwrap().findings.open;
        }
        let upload = started.elapsed();

        let deadline = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let loops: Vec<_> = clients
            .iter()
            .map(|(agent, inventory)| {
                let agent = agent.clone();
                let request = CheckInRequest {
                    seq: 0,
                    facts: inventory.host.clone(),
                    packages: inventory.packages_digest(),
                    agent_version: "bench".into(),
                };
                tokio::spawn(async move {
                    let (mut latencies, mut errors, mut seq) = (Vec::new(), 0u64, 0);
                    while Instant::now() < deadline {
                        seq += 1;
                        let t = Instant::now();
                        match agent
                            .check_in(&CheckInRequest {
                                seq,
                                ..request.clone()
                            })
                            .await
                        {
                            Ok(_) => latencies.push(t.elapsed()),
                            Err(_) => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let (mut latencies, mut errors) = (Vec::new(), 0);
        for l in loops {
            let (lat, err) = l.await.unwrap();
            latencies.extend(lat);
            errors += err;
        }
        let elapsed = started.elapsed();
        latencies.sort();
        // Paced: the fleet's steady state, `PW_BENCH_RATE` check-ins per second in all (333/s
        // is 20,000 hosts at a 60 s interval), each agent at its share with a random phase.
        let rate = if quick { 20 } else { env_or("PW_BENCH_RATE", 333) } as f64;
        let period = Duration::from_secs_f64(agents as f64 / rate);
        let deadline = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let paced: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, (agent, inventory))| {
                let agent = agent.clone();
                let request = CheckInRequest {
                    seq: 0,
                    facts: inventory.host.clone(),
                    packages: inventory.packages_digest(),
                    agent_version: "bench".into(),
                };
                let phase = period.mul_f64(i as f64 / agents as f64);
                tokio::spawn(async move {
                    let (mut latencies, mut errors, mut seq) = (Vec::new(), 0u64, 1_000_000);
                    let mut next = tokio::time::Instant::now() + phase;
                    loop {
                        tokio::time::sleep_until(next).await;
                        if Instant::now() >= deadline {
                            break;
                        }
                        seq += 1;
                        let t = Instant::now();
                        match agent
                            .check_in(&CheckInRequest {
                                seq,
                                ..request.clone()
                            })
                            .await
                        {
                            Ok(_) => latencies.push(t.elapsed()),
                            Err(_) => errors += 1,
                        }
                        next += period;
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let (mut paced_latencies, mut paced_errors) = (Vec::new(), 0);
        for l in paced {
            let (lat, err) = l.await.unwrap();
            paced_latencies.extend(lat);
            paced_errors += err;
        }
        let paced_elapsed = started.elapsed();
        paced_latencies.sort();
        let db = std::fs::metadata(server.database())
            .map(|m| m.len())
            .unwrap_or(0)
            + std::fs::metadata(server.database().with_extension("db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        println!(
            "agent_protocol: {agents} agents x {} packages, SQLite",
            packages.len()
        );
        println!(
            "  enroll: {:.1} /s ({agents} in {:.2} s, sequential)",
            agents as f64 / enroll.as_secs_f64(),
            enroll.as_secs_f64()
        );
        println!(
            "  full inventory upload (gzip, matched, findings synced): {:.1} /s ({agents} in \
             {:.2} s, {findings} findings opened)",
            agents as f64 / upload.as_secs_f64(),
            upload.as_secs_f64()
        );
        println!(
            "  check-in saturated (every agent back to back, nothing to upload): {:.0} /s over {:.1} s, p50 {:.2} ms, p99 {:.2} ms, \
             {errors} errors",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
        println!(
            "  check-in paced at {rate:.0} /s: {:.0} /s done, p50 {:.2} ms, p99 {:.2} ms, \
             {paced_errors} errors",
            paced_latencies.len() as f64 / paced_elapsed.as_secs_f64(),
            percentile(&paced_latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&paced_latencies, 0.99).as_secs_f64() * 1e3,
        );
        println!(
            "  database: {:.1} KiB per host",
            db as f64 / 1024.0 / agents as f64
        );
        server.stop().await;
    });
}
