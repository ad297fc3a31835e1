//! The fleet benchmark of issue 7: `patchwarden serve` as its own process (HTTPS on loopback,
//! SQLite, or PostgreSQL with `PW_BENCH_POSTGRES=postgres://…`), a simulated fleet of N hosts —
//! a third Debian 12 (the 720 packages of a real status file), a third AlmaLinux 9 (Red Hat's
//! UBI 9.2 package set, x86_64 and noarch), a third Alpine 3.10 (every package Alpine's secdb
//! names, at the version of its oldest fix or the release before it) — each with its own key,
//! enrolled through the real protocol, uploading its full inventory (matched against the real
//! AlmaLinux OSV archive, Alpine's secdb and advisories made from bookworm-security), then
//! checking in paced at the fleet rate (N hosts every 60 s) for a bounded time.
//!
//! Reports enrolments/s, full uploads/s, paced check-ins p50/p99 and errors, the server
//! process's resident memory (now and peak, from /proc) and the database size per host.
//!
//! `cargo bench -p patchwarden-cli --bench fleet` (`PW_BENCH_HOSTS`, default 20,000;
//! `PW_BENCH_SECS`, default 60; `PW_BENCH_INTERVAL`, default 60). Without `--bench` (as `cargo test --benches` runs it) it runs
//! a small fleet quickly, so the file keeps compiling and working.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchwarden_api::v1::agent::{
    CheckInRequest, EnrollRequest, EnrollmentSecret, InventoryUpload,
};
use patchwarden_client::{AgentClient, AgentKey, Client, Fingerprint, Trust};
use patchwarden_core::inventory::{HostFacts, Inventory, Manager, OsInfo, Package, PackageStatus};
use patchwarden_testkit::shared_data;
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn debian_packages() -> Vec<Package> {
    let file = std::fs::File::open(shared_data().join("debian/debian12-host.status")).unwrap();
    patchwarden_agent::inventory::dpkg::parse_status(
        BufReader::new(file),
        patchwarden_agent::inventory::dpkg::MissingStatus::Reject,
    )
    .unwrap()
    .packages
}

fn alma_packages() -> Vec<Package> {
    use patchwarden_agent::inventory::sbom::{FromPurl, package_from_purl, parse_purl};
    let tsv = std::fs::read_to_string(
        shared_data().join("inventories/rpm/ubi9-9.2-755.rpm-inventory.tsv"),
    )
    .unwrap();
    tsv.lines()
        .skip(1)
        .filter_map(|line| {
            let purl = line.split('\t').nth(5)?;
            if !(purl.contains("arch=x86_64") || purl.contains("arch=noarch")) {
                return None;
            }
            match package_from_purl(&parse_purl(purl).ok()?) {
                FromPurl::Package(p) => Some(p),
                _ => None,
            }
        })
        .collect()
}

/// Every package Alpine 3.10's secdb names: half at its oldest fixed version, half at the
/// release before it (one `-rN` lower, where there is one), so the Alpine hosts have findings.
fn alpine_packages() -> Vec<Package> {
    let mut out = Vec::new();
    for repo in ["main", "community"] {
        let path = shared_data().join(format!("alpine/json/v3.10/{repo}.json"));
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for (i, p) in doc["packages"].as_array().unwrap().iter().enumerate() {
            let name = p["pkg"]["name"].as_str().unwrap();
            let Some(fixes) = p["pkg"]["secfixes"].as_object() else {
                continue;
            };
            use patchwarden_version::apk::{Rules, compare, validate};
            let Some(oldest) = fixes
                .keys()
                .filter(|v| validate(v, Rules::V2).is_ok())
                .min_by(|a, b| compare(a, b, Rules::V2).unwrap_or(std::cmp::Ordering::Equal))
            else {
                continue;
            };
            let version = match oldest.rsplit_once("-r") {
                Some((v, r)) if i % 2 == 0 => match r.parse::<u32>() {
                    Ok(n) if n > 0 => format!("{v}-r{}", n - 1),
                    _ => oldest.clone(),
                },
                _ => oldest.clone(),
            };
            out.push(Package {
                manager: Manager::Apk,
                name: name.to_owned(),
                version,
                arch: Some("x86_64".into()),
                source_name: Some(name.to_owned()),
                source_version: None,
                epoch: None,
                module: None,
                status: PackageStatus::Installed,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

fn facts(i: usize, os: &str) -> HostFacts {
    let (id, version, eco, pretty) = match os {
        "debian" => (
            "debian",
            "12",
            "Debian:12",
            "Debian GNU/Linux 12 (bookworm)",
        ),
        "alma" => (
            "almalinux",
            "9.2",
            "AlmaLinux:9",
            "AlmaLinux 9.2 (Turquoise Kodkod)",
        ),
        _ => ("alpine", "3.10.9", "Alpine:v3.10", "Alpine Linux v3.10"),
    };
    HostFacts {
        hostname: format!("{os}-{i:05}"),
        os: OsInfo {
            id: id.into(),
            version_id: Some(version.into()),
            codename: None,
            pretty_name: Some(pretty.into()),
            id_like: Vec::new(),
            ecosystem: Some(eco.into()),
        },
        arch: Some("x86_64".into()),
        machine_id: Some(format!("{i:032x}")),
        ..HostFacts::default()
    }
}

/// Advisories made from bookworm-security, one per source package, fixed in the suite's
/// version (as the agent protocol bench does), so the Debian hosts match for real.
fn debian_feed(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
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

struct Server {
    child: Child,
    url: String,
    fingerprint: String,
    /// `host:port` of the metrics listener.
    metrics: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(config: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut url, mut fingerprint, mut metrics) = (None, None, None);
    while url.is_none() || fingerprint.is_none() || metrics.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("the server prints its URL and fingerprint");
        if let Some(u) = line.strip_prefix("patchwarden: serving the API at ") {
            url = Some(u.to_owned());
        }
        if let Some((_, f)) = line.split_once("(agents pin it: --ca-fingerprint): ") {
            fingerprint = Some(f.to_owned());
        }
        if let Some(m) = line.strip_prefix("patchwarden: metrics at http://") {
            metrics = Some(m.trim_end_matches("/metrics").to_owned());
        }
    }
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Server {
        child,
        url: url.unwrap(),
        fingerprint: fingerprint.unwrap(),
        metrics: metrics.unwrap(),
    }
}

/// The server's resident memory now and at its peak, in MiB (`VmRSS`, `VmHWM`).
fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The server's peak resident memory since start or the last call, in MiB, and a fresh start
/// for the next phase's peak (writing 5 to `clear_refs` resets `VmHWM` to the current RSS), so
/// the report can say which phase — start-up's import, enrolment, the uploads or the
/// check-ins — set the peak.
fn phase_peak(pid: u32) -> f64 {
    let (_, peak) = rss(pid);
    // Best effort: without the right to write it the later phases report the running peak.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    peak
}

/// The CPU time the process has used so far (user + system), from `/proc/PID/stat`. The
/// machine is shared, so throughput moves with the load; CPU time per upload much less.
fn cpu_seconds(pid: impl std::fmt::Display) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are the 12th and 13th of them, in clock ticks (100 a second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds so far of every PostgreSQL process on this machine (its backends, the WAL
/// writer, the checkpointer …): the database shares the two cores with the server and the
/// agents, and its share of an upload is the other half of the story. A backend that exits
/// during a phase takes its seconds with it; the server's pooled connections do not.
fn postgres_cpu() -> f64 {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    procs
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
                && std::fs::read_to_string(p.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|p| cpu_seconds(p.file_name().to_string_lossy()))
        .sum()
}

/// The machine's busy and total CPU seconds so far (`/proc/stat`, all cores; idle and I/O
/// wait count as not busy).
fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    ((total - idle) / 100.0, total / 100.0)
}

/// CPU seconds so far of each of the process's threads, summed by thread name
/// (`/proc/PID/task/*/stat`): the SQLite writer is one thread, and its share of an upload says
/// whether the store's one writer or the request handlers bound the rate.
///
/// With each, the seconds it waited for a core while it could run (`/proc/…/schedstat`, the
/// scheduler's run-queue delay): a thread short of CPU waits there, one short of work sleeps.
fn thread_cpu(pid: u32) -> BTreeMap<String, (f64, f64)> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let tid: u32 = task.file_name().to_string_lossy().parse().unwrap_or(0);
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let waited = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e9;
        let entry = out.entry(comm.trim().to_owned()).or_insert((0.0, 0.0));
        entry.0 += cpu_seconds(format!("{pid}/task/{tid}"));
        entry.1 += waited;
    }
    out
}

/// The server's own view of a route's latency: the bucket bounds under which half and 99 % of
/// its requests finished, from the request histogram on `/metrics` (so client-side queueing
/// and the server's time can be told apart).
fn server_latency(metrics: &str, route: &str) -> Option<(f64, f64, u64)> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(metrics).ok()?;
    write!(conn, "GET /metrics HTTP/1.0\r\nHost: {metrics}\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    for line in text.lines() {
        if !line.contains("request_duration_seconds_bucket")
            || !line.contains(&format!("route=\"{route}\""))
        {
            continue;
        }
        let le = line.split("le=\"").nth(1)?.split('"').next()?;
        let count: u64 = line.rsplit(' ').next()?.parse().ok()?;
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        buckets.push((bound, count));
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    let at = |q: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c as f64 >= q * total as f64)
            .map_or(f64::INFINITY, |b| b.0)
    };
    Some((at(0.5), at(0.99), total))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

async fn fresh_postgres(url: &str) -> String {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("PW_BENCH_POSTGRES: a reachable database");
    tokio::spawn(connection);
    client
        .batch_execute("DROP DATABASE IF EXISTS pw_bench_fleet WITH (FORCE)")
        .await
        .unwrap();
    client
        .batch_execute("CREATE DATABASE pw_bench_fleet")
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').expect("a URL with a database name");
    format!("{base}/pw_bench_fleet")
}

async fn postgres_size(url: &str) -> u64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .unwrap();
    u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let hosts = if quick {
        12
    } else {
        env_or("PW_BENCH_HOSTS", 20_000)
    } as usize;
    let secs = if quick {
        2
    } else {
        env_or("PW_BENCH_SECS", 60)
    };
    let postgres = std::env::var("PW_BENCH_POSTGRES").ok().filter(|_| !quick);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(hosts, secs, postgres));
}

async fn run(hosts: usize, secs: u64, postgres: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    debian_feed(&dir.path().join("debian-feed"));
    let database_url = match &postgres {
        Some(url) => fresh_postgres(url).await,
        None => String::new(),
    };
    let files = [
        dir.path().join("debian-feed"),
        shared_data().join("osv/almalinux-all.zip"),
        shared_data().join("alpine/json/v3.10/main.json"),
        shared_data().join("alpine/json/v3.10/community.json"),
    ];
    let files: Vec<String> = files.iter().map(|f| format!("{f:?}")).collect();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data_dir:?}\ndatabase_url = {database_url:?}\n\
             [listen]\napi = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n\
             [advisories]\nfiles = [{}]\n",
            files.join(", ")
        ),
    )
    .unwrap();
    let started = Instant::now();
    let server = start_server(&config);
    let startup = started.elapsed();
    let (rss_idle, _) = rss(server.child.id());
    let peak_start = phase_peak(server.child.id());
    let out = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .args(["admin", "token", "create", "--config"])
        .arg(&config)
        .args(["--group", "fleet", "--uses", &hosts.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let fingerprint = Fingerprint::parse(&server.fingerprint).unwrap();
    let client = Client::new(&server.url, &Trust::Pinned(fingerprint)).unwrap();

    let sets: BTreeMap<&str, Vec<Package>> = [
        ("debian", debian_packages()),
        ("alma", alma_packages()),
        ("alpine", alpine_packages()),
    ]
    .into_iter()
    .collect();
    let os_of = |i: usize| ["debian", "alma", "alpine"][i % 3];

    // Enrolment: 8 at a time, as hosts arriving after an install wave would.
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, secret, next) = (client.clone(), secret.clone(), next.clone());
        workers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= hosts {
                    break;
                }
                let key = AgentKey::generate().unwrap();
                let f = facts(i, os_of(i));
                let response = client
                    .enroll(
                        &key,
                        &EnrollRequest {
                            token: EnrollmentSecret(secret.clone()),
                            public_key: key.public_hex(),
                            facts: f.clone(),
                            replace: false,
                            agent_version: "bench".into(),
                        },
                    )
                    .await
                    .unwrap_or_else(|e| panic!("enrolment {i}: {e}"));
                mine.push((i, client.agent(&response.host_id, key), f));
            }
            mine
        });
    }
    let mut agents: Vec<(usize, AgentClient, HostFacts)> = Vec::new();
    while let Some(r) = workers.join_next().await {
        agents.extend(r.unwrap());
    }
    agents.sort_by_key(|a| a.0);
    let enroll = started.elapsed();
    let peak_enrol = phase_peak(server.child.id());

    // Full inventories: 32 uploads in flight.
    let cpu_before = cpu_seconds(server.child.id());
    let threads_before = thread_cpu(server.child.id());
    let own_cpu_before = cpu_seconds(std::process::id());
    let postgres_cpu_before = postgres_cpu();
    let machine_before = machine_cpu();
    let started = Instant::now();
    let agents = Arc::new(agents);
    let sets = Arc::new(sets);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (agents, sets, next) = (agents.clone(), sets.clone(), next.clone());
        workers.spawn(async move {
            let (mut findings, mut errors) = (0u64, 0u64);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((_, agent, f)) = agents.get(i) else {
                    break;
                };
                let mut inventory = Inventory {
                    host: f.clone(),
                    packages: sets[os_of(i)].clone(),
                    ..Inventory::default()
                };
                inventory.canonicalize();
                match agent
                    .upload_inventory(&InventoryUpload::Full { inventory })
                    .await
                {
                    Ok(a) => findings += a.findings.open,
                    Err(_) => errors += 1,
                }
            }
            (findings, errors)
        });
    }
    let (mut findings, mut upload_errors) = (0, 0);
    while let Some(r) = workers.join_next().await {
        let (f, e) = r.unwrap();
        findings += f;
        upload_errors += e;
    }
    let upload = started.elapsed();
    let upload_cpu = cpu_seconds(server.child.id()) - cpu_before;
    let mut threads_upload: Vec<(String, f64, f64)> = thread_cpu(server.child.id())
        .into_iter()
        .map(|(name, (s, w))| {
            let (s0, w0) = threads_before.get(&name).copied().unwrap_or((0.0, 0.0));
            (name, s - s0, w - w0)
        })
        .filter(|(_, s, _)| *s > 0.0)
        .collect();
    threads_upload.sort_by(|a, b| b.1.total_cmp(&a.1));
    let agents_cpu = cpu_seconds(std::process::id()) - own_cpu_before;
    let postgres_upload_cpu = postgres_cpu() - postgres_cpu_before;
    let machine_upload = {
        let (busy, total) = machine_cpu();
        (busy - machine_before.0, total - machine_before.1)
    };
    let (rss_uploaded, _) = rss(server.child.id());
    let peak_upload = phase_peak(server.child.id());

    // Paced check-ins: every host once a minute (or every `PW_BENCH_INTERVAL` seconds, to
    // put a fleet's rate on fewer hosts), phases spread over the interval.
    let period = Duration::from_secs(env_or("PW_BENCH_INTERVAL", 60).max(1));
    // Each package set's digest once: computing it per host before spawning its loop took
    // long enough at 50,000 hosts that the later hosts started late and the phases stretched
    // (the fleet checked in at about 60 % of the stated rate).
    let digests: BTreeMap<&str, _> = sets
        .iter()
        .map(|(os, packages)| {
            let mut inventory = Inventory {
                packages: packages.clone(),
                ..Inventory::default()
            };
            inventory.canonicalize();
            (*os, inventory.packages_digest())
        })
        .collect();
    // Every phase counts from one origin, a moment after the loops are spawned.
    let origin = tokio::time::Instant::now() + Duration::from_secs(2);
    let deadline = origin + Duration::from_secs(secs);
    let mut loops = tokio::task::JoinSet::new();
    for (n, (i, agent, f)) in agents.iter().enumerate() {
        let (agent, f, i) = (agent.clone(), f.clone(), *i);
        let request = CheckInRequest {
            seq: 0,
            facts: f,
            packages: digests[os_of(i)],
            agent_version: "bench".into(),
        };
        let phase = period.mul_f64(n as f64 / hosts as f64);
        loops.spawn(async move {
            let (mut latencies, mut errors, mut seq) = (Vec::new(), 0u64, 0);
            let mut next = origin + phase;
            let end = deadline;
            // A host whose next check-in falls after the deadline stops now rather than
            // sleeping until then.
            while next < end {
                tokio::time::sleep_until(next).await;
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
        });
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    while let Some(r) = loops.join_next().await {
        let (l, e) = r.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let paced = origin.elapsed();
    latencies.sort();
    let (rss_end, _) = rss(server.child.id());
    let peak_check_in = phase_peak(server.child.id());
    let server_side = server_latency(&server.metrics, "/api/v1/agent/check-in");
    let db = match &postgres {
        Some(_) => postgres_size(&database_url).await,
        None => ["patchwarden.db", "patchwarden.db-wal"]
            .iter()
            .map(|f| std::fs::metadata(data_dir.join(f)).map_or(0, |m| m.len()))
            .sum(),
    };
    let backend = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "fleet: {hosts} hosts ({} Debian x {} packages, {} AlmaLinux x {}, {} Alpine x {}), {backend}",
        hosts.div_ceil(3),
        sets["debian"].len(),
        (hosts + 1) / 3,
        sets["alma"].len(),
        hosts / 3,
        sets["alpine"].len(),
    );
    println!(
        "  server start (advisories loaded, matcher built): {:.1} s, RSS {rss_idle:.0} MiB \
         (peak {peak_start:.0} MiB while starting)",
        startup.as_secs_f64()
    );
    println!(
        "  enrol: {:.0} /s ({hosts} in {:.1} s, 8 at a time)",
        hosts as f64 / enroll.as_secs_f64(),
        enroll.as_secs_f64()
    );
    println!(
        "  full inventory uploads (gzip, matched, findings synced): {:.0} /s ({hosts} in {:.1} s, \
         32 in flight), {findings} findings open, {upload_errors} errors; RSS after {rss_uploaded:.0} MiB",
        hosts as f64 / upload.as_secs_f64(),
        upload.as_secs_f64()
    );
    println!(
        "  server CPU during the uploads: {:.2} ms an upload ({upload_cpu:.1} s of CPU in {:.1} s, \
         {:.2} cores busy)",
        upload_cpu * 1e3 / hosts as f64,
        upload.as_secs_f64(),
        upload_cpu / upload.as_secs_f64()
    );
    let by_thread: Vec<String> = threads_upload
        .iter()
        .map(|(name, s, w)| {
            format!(
                "{name} {:.2} ms (on a core {:.0} % of the time, waiting for one {:.0} %)",
                s * 1e3 / hosts as f64,
                s * 100.0 / upload.as_secs_f64(),
                w * 100.0 / upload.as_secs_f64()
            )
        })
        .collect();
    println!("    by thread, an upload: {}", by_thread.join(", "));
    println!(
        "  the simulated agents' CPU meanwhile (this process, on the same 2 cores): {:.2} cores",
        agents_cpu / upload.as_secs_f64()
    );
    if postgres.is_some() {
        println!(
            "  PostgreSQL's CPU meanwhile (every postgres process): {:.2} ms an upload, {:.2} cores",
            postgres_upload_cpu * 1e3 / hosts as f64,
            postgres_upload_cpu / upload.as_secs_f64()
        );
    }
    println!(
        "  the machine meanwhile: {:.0} % of its cores busy ({:.2} ms of CPU an upload, all \
         processes)",
        machine_upload.0 * 100.0 / machine_upload.1.max(f64::MIN_POSITIVE),
        machine_upload.0 * 1e3 / hosts as f64
    );
    println!(
        "  check-ins paced at {:.0} /s for {:.0} s: {} done ({:.0} /s sent in the {secs} s \
         window), p50 {:.2} ms, p99 {:.2} ms, {errors} errors",
        hosts as f64 / period.as_secs_f64(),
        paced.as_secs_f64(),
        latencies.len(),
        (latencies.len() as f64 + errors as f64) / secs as f64,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    if let Some((p50, p99, n)) = server_side {
        println!(
            "  check-ins as the server timed them (all {n}, histogram bounds): p50 <= {:.1} ms, \
             p99 <= {:.1} ms",
            p50 * 1e3,
            p99 * 1e3
        );
    }
    println!(
        "  server RSS at the end {rss_end:.0} MiB, peak {:.0} MiB (target 100 MiB + 10 KiB x \
         {hosts} = {:.0} MiB); peaks by phase: start {peak_start:.0}, enrolment {peak_enrol:.0}, \
         uploads {peak_upload:.0}, check-ins {peak_check_in:.0} MiB",
        [peak_start, peak_enrol, peak_upload, peak_check_in]
            .into_iter()
            .fold(0.0, f64::max),
        100.0 + 10.0 * hosts as f64 / 1024.0
    );
    println!(
        "  database: {:.1} MiB, {:.1} KiB per host",
        db as f64 / 1024.0 / 1024.0,
        db as f64 / 1024.0 / hosts as f64
    );
    assert_eq!(upload_errors, 0, "uploads failed");
    assert!(findings > 0, "no findings: the fleet matched nothing");
}
