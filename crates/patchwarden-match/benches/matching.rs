//! Matching speed: one 700-package Debian host, and a fleet of 50,000 such hosts on every core.
//!
//! The advisories are derived from the Debian 12 archive in `shared/data/debian`: every source
//! package in bookworm-security gets an advisory whose fix is its security version (that is
//! what a DSA says), and a third of them an older advisory fixed in the bookworm version. The
//! hosts are drawn from the archive: 250 binaries built from those sources (half still at the
//! release version, half patched) and 450 others. Everything is seeded, so runs compare.
//!
//! `cargo bench -p patchwarden-match --bench matching`

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use patchwarden_core::advisory::{Advisory, Affected, FeedKind, PackageRef, Range, Source};
use patchwarden_core::inventory::{Manager, Package, PackageStatus};
use patchwarden_match::Index;

const HOST_PACKAGES: usize = 700;
const FLEET: usize = 50_000;

fn shared_data() -> PathBuf {
    std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// (binary, version, source, source version) rows of an archive list.
fn archive(file: &str) -> Vec<(String, String, String, String)> {
    let path = shared_data().join("debian").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (name, version, source) = (*f.first()?, *f.get(1)?, *f.get(3)?);
            let (src, src_version) = match source.split_once(" (") {
                Some((s, v)) => (s, v.trim_end_matches(')')),
                None => (source, version),
            };
            Some((name.into(), version.into(), src.into(), src_version.into()))
        })
        .collect()
}

/// A tiny seeded generator (SplitMix64) so that runs are comparable.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

struct Fixture {
    index: Index,
    /// Every package record a host may hold; hosts borrow from here.
    pool: Vec<Package>,
    /// Pool indices: (release version, patched version) of binaries built from security sources.
    exposed: Vec<(usize, usize)>,
    /// Pool indices of other binaries.
    others: Vec<usize>,
}

fn package(name: &str, version: &str, src: &str, src_version: &str) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: Some("amd64".into()),
        source_name: Some(src.into()),
        source_version: Some(src_version.into()),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

fn fixture() -> Fixture {
    let main = archive("bookworm-main-amd64.tsv");
    let security = archive("bookworm-security-main-amd64.tsv");
    let release_of: HashMap<&str, &(String, String, String, String)> =
        main.iter().map(|r| (r.0.as_str(), r)).collect();

    let mut fixes: HashMap<&str, &str> = HashMap::new();
    for (_, _, src, src_version) in &security {
        fixes.insert(src, src_version);
    }
    let mut advisories = Vec::new();
    let mut sources: Vec<(&&str, &&str)> = fixes.iter().collect();
    sources.sort();
    for (n, (src, fixed)) in sources.iter().enumerate() {
        let mut a = Advisory::new(
            format!("DSA-{}-1", 5000 + n),
            Source {
                feed: FeedKind::Osv,
                location: "bench".into(),
                document: None,
            },
        );
        a.upstream = vec![format!("CVE-2024-{:05}", n)];
        let mut affected = Affected::new(PackageRef::new("Debian:12", **src));
        affected.ranges = vec![Range::ecosystem("0", Some((**fixed).to_owned()))];
        a.affected.push(affected);
        advisories.push(a);
        if n % 3 == 0
            && let Some(release) = main.iter().find(|r| r.2 == **src)
        {
            let mut old = Advisory::new(
                format!("DSA-{}-1", 4000 + n),
                Source {
                    feed: FeedKind::Osv,
                    location: "bench".into(),
                    document: None,
                },
            );
            old.upstream = vec![format!("CVE-2023-{:05}", n)];
            let mut affected = Affected::new(PackageRef::new("Debian:12", **src));
            affected.ranges = vec![Range::ecosystem("0", Some(release.3.clone()))];
            old.affected.push(affected);
            advisories.push(old);
        }
    }
    let (index, problems) = Index::build(advisories);
    assert!(problems.is_empty(), "{problems:?}");

    let mut pool = Vec::new();
    let mut exposed = Vec::new();
    for (name, version, src, src_version) in &security {
        if let Some(release) = release_of.get(name.as_str()) {
            pool.push(package(name, &release.1, &release.2, &release.3));
            pool.push(package(name, version, src, src_version));
            exposed.push((pool.len() - 2, pool.len() - 1));
        }
    }
    let mut others = Vec::new();
    for (name, version, src, src_version) in &main {
        if !fixes.contains_key(src.as_str()) {
            pool.push(package(name, version, src, src_version));
            others.push(pool.len() - 1);
        }
    }
    Fixture {
        index,
        pool,
        exposed,
        others,
    }
}

fn host<'a>(f: &'a Fixture, rng: &mut Rng) -> Vec<&'a Package> {
    let mut out = Vec::with_capacity(HOST_PACKAGES);
    for _ in 0..250 {
        let (release, patched) = f.exposed[rng.below(f.exposed.len())];
        out.push(&f.pool[if rng.below(2) == 0 { release } else { patched }]);
    }
    for _ in 250..HOST_PACKAGES {
        out.push(&f.pool[f.others[rng.below(f.others.len())]]);
    }
    out
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let mut rng = Rng(7);
    let one = host(&f, &mut rng);
    let report = f.index.match_packages("Debian:12", &one);
    eprintln!(
        "index: {} advisories, {} packages; one host: {} packages, {} findings",
        f.index.advisory_count(),
        f.index.package_keys(),
        one.len(),
        report.findings.len()
    );
    c.bench_function("match one 700-package host", |b| {
        b.iter(|| black_box(f.index.match_packages("Debian:12", black_box(&one))))
    });

    // The fleet: hosts are generated per thread as they are matched (50,000 × 700 package
    // records would not fit in memory as copies; they borrow from the pool). Generation is
    // cheap next to matching and is included in the time.
    let mut group = c.benchmark_group("fleet");
    group.sample_size(10);
    group.bench_function("match 50,000 hosts × 700 packages", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
                let findings: usize = std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads)
                        .map(|t| {
                            let f = &f;
                            s.spawn(move || {
                                let mut rng = Rng(1000 + t as u64);
                                let mut findings = 0;
                                for _ in (t..FLEET).step_by(threads) {
                                    let h = host(f, &mut rng);
                                    findings +=
                                        f.index.match_packages("Debian:12", &h).findings.len();
                                }
                                findings
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
                });
                black_box(findings);
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(matching, benches);
criterion_main!(matching);
