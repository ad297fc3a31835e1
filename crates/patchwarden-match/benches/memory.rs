//! Where the server's fixed memory goes: the advisories `patchwarden serve` loads for the fleet
//! benchmark (the whole AlmaLinux OSV archive and Alpine 3.10's secdb), read the way `serve`
//! reads them — parsed from the files, then read back as a second copy (the store's), then
//! indexed — with the process's resident memory (`VmRSS`) after each step.
//!
//! RSS counts what the allocator holds, not what is live: glibc keeps freed memory in its
//! arenas. Run it again with `MALLOC_ARENA_MAX=1` or `MALLOC_TRIM_THRESHOLD_=0` in the
//! environment to see how much of a figure is garbage kept rather than data.
//!
//! `cargo bench -p patchwarden-match --bench memory` (without `--bench`, as
//! `cargo test --benches` runs it, only Alpine's secdb is loaded, so it stays quick).

use std::path::{Path, PathBuf};

use patchwarden_core::advisory::Advisory;
use patchwarden_feeds::Limits;
use patchwarden_feeds::load::{AdvisoryFeed, load_path};
use patchwarden_match::Index;

fn shared_data() -> PathBuf {
    std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// The process's resident memory in MiB.
fn rss() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn step(what: &str, before: &mut f64) {
    let now = rss();
    println!("{what:<58} RSS {now:7.1} MiB ({:+.1})", now - *before);
    *before = now;
}

/// Heap bytes of an advisory's parts, roughly (string lengths and element sizes; the
/// allocator's own overhead is not counted), to say which fields the RSS is made of.
#[derive(Default)]
struct Parts {
    affected: usize,
    details: usize,
    references: usize,
    database_specific: usize,
    other: usize,
}

fn parts(all: &[Advisory]) -> Parts {
    let s = |x: &String| x.len();
    let o = |x: &Option<String>| x.as_ref().map_or(0, String::len);
    let mut p = Parts::default();
    for a in all {
        p.details += o(&a.details);
        p.references += a
            .references
            .iter()
            .map(|r| std::mem::size_of_val(r) + r.kind.len() + r.url.len())
            .sum::<usize>();
        p.database_specific += a
            .database_specific
            .as_ref()
            .map_or(0, |v| v.to_string().len());
        for e in &a.affected {
            p.affected += std::mem::size_of_val(e);
            if let Some(pkg) = &e.package {
                p.affected += s(&pkg.ecosystem) + s(&pkg.name) + o(&pkg.purl);
            }
            for r in &e.ranges {
                p.affected += std::mem::size_of_val(r) + o(&r.repo);
                for ev in &r.events {
                    p.affected += std::mem::size_of_val(ev) + ev.version().len();
                }
            }
            p.affected += e.versions.iter().map(|v| 24 + v.len()).sum::<usize>();
            p.affected += e
                .severity
                .iter()
                .map(|v| std::mem::size_of_val(v) + v.vector.len())
                .sum::<usize>();
        }
        p.other += std::mem::size_of_val(a)
            + s(&a.id)
            + o(&a.summary)
            + a.aliases
                .iter()
                .chain(&a.related)
                .chain(&a.upstream)
                .map(|x| 24 + x.len())
                .sum::<usize>()
            + a.severity
                .iter()
                .map(|v| std::mem::size_of_val(v) + v.vector.len())
                .sum::<usize>()
            + s(&a.source.location);
    }
    p
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut files = vec![
        (
            shared_data().join("alpine/json/v3.10/main.json"),
            AdvisoryFeed::AlpineSecdb,
        ),
        (
            shared_data().join("alpine/json/v3.10/community.json"),
            AdvisoryFeed::AlpineSecdb,
        ),
    ];
    if !quick {
        files.insert(
            0,
            (
                shared_data().join("osv/almalinux-all.zip"),
                AdvisoryFeed::Osv,
            ),
        );
    }
    let mut last = 0.0;
    step("start", &mut last);
    let limits = Limits::default();
    let mut parsed: Vec<Advisory> = Vec::new();
    for (path, feed) in &files {
        let import =
            load_path(path, *feed, &limits).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parsed.extend(import.records);
    }
    step(&format!("parsed {} advisories", parsed.len()), &mut last);
    let p = parts(&parsed);
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "  of which, roughly: affected {:.1} MiB, details {:.1}, references {:.1}, \
         database_specific {:.1} (as JSON text), the rest {:.1}",
        mib(p.affected),
        mib(p.details),
        mib(p.references),
        mib(p.database_specific),
        mib(p.other),
    );
    // `serve` upserts what it parsed and reads everything back from the store: a second copy.
    let stored = parsed.clone();
    step(
        "a second copy (what serve reads back from the store)",
        &mut last,
    );
    drop(parsed);
    step("the parsed copy dropped", &mut last);
    let (index, problems) = Index::build(stored);
    step(
        &format!(
            "index built ({} keys, {} problems; the advisories consumed)",
            index.package_keys(),
            problems.len()
        ),
        &mut last,
    );
    drop(index);
    step("index dropped", &mut last);
}
