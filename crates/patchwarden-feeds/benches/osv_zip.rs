//! Parsing all of AlmaLinux's OSV `all.zip` (5,680 advisories, 71,329 affected entries): the
//! import a server runs on every feed sync. Target: under one second.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use patchwarden_feeds::{Limits, osv};

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("osv").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

fn bench(c: &mut Criterion) {
    let bytes = std::fs::read(shared_data().join("osv/almalinux-all.zip"))
        .unwrap_or_else(|e| panic!("cannot read almalinux-all.zip: {e}"));
    let mut group = c.benchmark_group("osv");
    group.sample_size(10);
    group.bench_function("almalinux-all.zip", |b| {
        b.iter(|| {
            let import =
                osv::parse_zip(Cursor::new(&bytes), "almalinux-all.zip", &Limits::default())
                    .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(import.records.len(), 5680);
            import
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
