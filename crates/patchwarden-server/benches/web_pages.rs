//! The web pages on a large fleet (issue 10: "a page with 10,000 hosts renders in < 300 ms
//! server time"): a real server on loopback with a SQLite store holding `PW_BENCH_HOSTS`
//! hosts (default 10,000) made by the tests' fleet builder (`tests/fleet_support`: groups,
//! rings, two OSes, reboots, last-seen times, stored inventories, 1 to 3 open findings per
//! host), then each page requested `PW_BENCH_SAMPLES` times (default 30) by a logged-in
//! officer after three warm-up requests. A sample is the whole request over loopback — the
//! server's time plus a loopback round trip — so it bounds the server time from above.
//!
//! `cargo bench -p patchwarden-server --bench web_pages`. Without `--bench` (as `cargo test
//! --benches` runs it) it uses 200 hosts and 3 samples, so the file keeps compiling and
//! working.

#[path = "../tests/fleet_support/mod.rs"]
mod fleet_support;
#[path = "../tests/operator_support/mod.rs"]
mod operator_support;

use std::time::{Duration, Instant};

use operator_support::{PASSWORD, Req, Server};
use patchwarden_store::Role;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let hosts = env_or("PW_BENCH_HOSTS", if full { 10_000 } else { 200 });
    let samples = env_or("PW_BENCH_SAMPLES", if full { 30 } else { 3 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let server = Server::start(|_| {}).await;
        let started = Instant::now();
        let fleet = fleet_support::build(server.store().as_ref(), hosts, false).await;
        println!(
            "fleet of {hosts} hosts made in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        server.user("olive", &[Role::Officer], &[]).await;
        let olive = server.login("olive", PASSWORD).await;
        let host = fleet.ids[fleet.ids.len() / 2];
        let pages = [
            ("hosts, first page (100)", "/hosts".to_owned()),
            ("hosts, 1000 a page", "/hosts?limit=1000".to_owned()),
            (
                "hosts, group + OS + not seen 5 days",
                "/hosts?group=web&os=Debian%3A12&unseen_days=5".to_owned(),
            ),
            ("hosts, reboot required", "/hosts?reboot=yes".to_owned()),
            ("host page", format!("/hosts/{host}")),
            ("findings, first page (100)", "/findings".to_owned()),
            (
                "findings, breached Emergency",
                "/findings?standing=breached&class=emergency".to_owned(),
            ),
            ("findings, one group", "/findings?group=db".to_owned()),
            ("dashboard", "/dashboard".to_owned()),
        ];
        println!(
            "{:<40} {:>9} {:>9} {:>9} {:>9}",
            "page", "min ms", "p50 ms", "p95 ms", "KiB"
        );
        for (name, path) in pages {
            let mut times = Vec::with_capacity(samples);
            let mut size = 0;
            for i in 0..samples + 3 {
                let t = Instant::now();
                let a = server.send(olive.apply(Req::get(&path))).await;
                let took = t.elapsed();
                assert_eq!(a.status, 200, "{path}: {}", a.text());
                size = a.body.len();
                if i >= 3 {
                    times.push(took);
                }
            }
            times.sort();
            let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            println!(
                "{name:<40} {:>9.1} {:>9.1} {:>9.1} {:>9.0}",
                ms(times[0]),
                ms(p(0.5)),
                ms(p(0.95)),
                size as f64 / 1024.0
            );
        }
    });
}
