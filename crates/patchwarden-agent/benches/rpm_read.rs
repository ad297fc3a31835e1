//! How long reading an rpm database takes: 1,000 packages written by the real rpm into SQLite
//! (one `rpmbuild` run of a spec with 999 subpackages), the same headers in a Berkeley DB
//! `Packages` written by the real Berkeley DB, and the real 35-package SUSE NDB database.
//! The target is under 100 ms for 1,000 packages, measured from opening the file to the last
//! `Package`.
//!
//! Run with `cargo bench -p patchwarden-agent --bench rpm_read`. Parts whose tools are missing
//! are skipped with a note on stderr.

#[path = "../tests/rpm_support/mod.rs"]
mod rpm_support;

use std::hint::black_box;
use std::path::Path;

use criterion::Criterion;
use patchwarden_agent::inventory::rpm::read_packages;
use rpm_support::*;

/// A root whose SQLite rpm database holds `bench` and its 999 subpackages.
fn thousand_packages(dir: &Path) -> std::path::PathBuf {
    let spec = Spec {
        name: "bench",
        version: "1.0",
        release: "1.el9",
        subpackages: (1..1000).map(|i| format!("bench-sub-{i:04}")).collect(),
        ..Spec::default()
    };
    let rpms = build_rpms(dir, &[spec]);
    assert_eq!(rpms.len(), 1000);
    let root = dir.join("sqlite-root");
    install(&root, "/var/lib/rpm", "sqlite", &rpms);
    root
}

fn bench_read(c: &mut Criterion, name: &str, root: &Path, expected: usize) {
    assert_eq!(read_packages(root).unwrap().len(), expected, "{name}");
    c.bench_function(name, |b| b.iter(|| read_packages(black_box(root)).unwrap()));
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let dir = tempfile::tempdir().unwrap();
    if have_rpm("the rpm_read SQLite and Berkeley DB benchmarks") {
        let root = thousand_packages(dir.path());
        bench_read(&mut c, "rpm sqlite, 1000 packages", &root, 1000);
        if have_tool(
            "db5.3_load",
            &["-V"],
            "db5.3-util",
            "the rpm_read Berkeley DB benchmark",
        ) {
            let bdb = dir.path().join("bdb-root");
            let input = db_load_input(&sqlite_blobs(&root), false, 4096);
            db_load(&input, "hash", &bdb.join("var/lib/rpm/Packages"));
            bench_read(&mut c, "rpm bdb, 1000 packages", &bdb, 1000);
        }
    }
    let ndb = dir.path().join("ndb-root");
    std::fs::create_dir_all(ndb.join("usr/lib/sysimage/rpm")).unwrap();
    std::fs::copy(
        test_data("rpm/sle15-bci-Packages.db"),
        ndb.join("usr/lib/sysimage/rpm/Packages.db"),
    )
    .unwrap();
    bench_read(&mut c, "rpm ndb, SLE 15 image, 35 packages", &ndb, 35);
    c.final_summary();
}
