//! Collecting a 3,000-package dpkg status: parsing it from memory, reading it from a root, and
//! the whole inventory of a root (facts, every collector, canonical order). The target is under
//! 100 ms for the whole collection.
//!
//! The status file is generated from real Debian 12 packages (`shared/data/debian/bookworm-*.tsv`:
//! name, version, architecture, source), with the fields and the multi-line descriptions a
//! real status file has, about 1 KiB a stanza like `debian12-host.status`.
//!
//! Run with `cargo bench -p patchwarden-agent --bench inventory_dpkg`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use patchwarden_agent::inventory::collect::collect_root;
use patchwarden_agent::inventory::dpkg::{self, MissingStatus, parse_status};
use patchwarden_agent::root::HostRoot;

const PACKAGES: usize = 3000;

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("debian").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

/// A status file of `PACKAGES` real packages: the security and updates suites first (the
/// packages hosts most often have updated), then the main archive, every 20th package.
fn status_file() -> String {
    let dir = shared_data().join("debian");
    let mut rows = Vec::new();
    for name in [
        "bookworm-security-main-amd64.tsv",
        "bookworm-updates-main-amd64.tsv",
        "bookworm-main-amd64.tsv",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let step = if name.contains("-main-amd64") && !name.contains("security") {
            20
        } else {
            1
        };
        for line in text.lines().skip(1).step_by(step) {
            let f: Vec<String> = line.split('\t').map(String::from).collect();
            if f.len() == 4 {
                rows.push(f);
            }
        }
    }
    rows.sort();
    rows.dedup_by(|a, b| a[0] == b[0] && a[2] == b[2]);
    rows.truncate(PACKAGES);
    assert_eq!(rows.len(), PACKAGES);

    let mut out = String::with_capacity(PACKAGES * 1100);
    for f in &rows {
        let (name, version, arch, source) = (&f[0], &f[1], &f[2], &f[3]);
        write!(
            out,
            "Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n\
             Installed-Size: 1234\nMaintainer: Debian Developers <debian-devel@lists.debian.org>\n\
             Architecture: {arch}\nMulti-Arch: same\n"
        )
        .unwrap();
        if source != name {
            writeln!(out, "Source: {source}").unwrap();
        }
        write!(
            out,
            "Version: {version}\nDepends: libc6 (>= 2.34), libssl3 (>= 3.0.0), zlib1g (>= 1:1.2.0)\n\
             Conffiles:\n /etc/{name}/{name}.conf 0123456789abcdef0123456789abcdef\n\
             Description: {name}, a package of Debian 12\n \
             This is the long description of the package, as Debian writes them: several\n \
             lines of prose that the inventory does not need and the parser skips.\n .\n \
             A second paragraph, after the line with a single dot.\n\
             Homepage: https://packages.debian.org/bookworm/{name}\n\n"
        )
        .unwrap();
    }
    out
}

fn bench(c: &mut Criterion) {
    let status = status_file();
    let dir = tempfile::tempdir().unwrap();
    let dpkg_dir = dir.path().join("var/lib/dpkg");
    std::fs::create_dir_all(&dpkg_dir).unwrap();
    std::fs::write(dpkg_dir.join("status"), &status).unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::copy(
        shared_data()
            .join("inventories/os-release/claircore_debian_testdata_dist_12_etc_os-release"),
        dir.path().join("etc/os-release"),
    )
    .unwrap();
    let root = HostRoot::new(dir.path()).unwrap();
    let parsed = parse_status(status.as_bytes(), MissingStatus::Reject).unwrap();
    assert_eq!(parsed.packages.len(), PACKAGES);
    assert_eq!(parsed.problem_count(), 0);

    let mut g = c.benchmark_group("inventory_dpkg_3000");
    g.throughput(criterion::Throughput::Bytes(status.len() as u64));
    g.bench_function("parse_status (in memory)", |b| {
        b.iter(|| parse_status(black_box(status.as_bytes()), MissingStatus::Reject).unwrap())
    });
    g.bench_function("read_status (from the root)", |b| {
        b.iter(|| dpkg::read_status(black_box(&root)).unwrap())
    });
    g.bench_function("collect_root (whole inventory)", |b| {
        b.iter(|| collect_root(black_box(dir.path())).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
