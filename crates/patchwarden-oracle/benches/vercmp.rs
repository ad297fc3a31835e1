//! Comparisons per second: our dpkg and rpm ordering against libdpkg and librpm on the same
//! pairs in the same run. Two figures each: from strings to a result (parse both, compare),
//! and on versions parsed beforehand.
//!
//! `cargo bench -p patchwarden-oracle --bench vercmp`; the figures go in BENCHMARKS.md.

use std::ffi::CString;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use patchwarden_oracle::generate::{Flavor, Generator};
use patchwarden_version::{dpkg, rpm};

/// Pairs per measured iteration.
const PAIRS: usize = 10_000;

fn shared_data() -> PathBuf {
    std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

fn column(path: &Path, cols: &[usize]) -> Vec<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (is ../shared/data there?)", path.display()));
    let mut out: Vec<String> = text
        .lines()
        .skip(1)
        .flat_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            cols.iter()
                .filter_map(|&c| f.get(c).map(|s| s.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Realistic pairs: real versions and their mutations, only those both sides accept cleanly.
fn pairs(flavor: Flavor, real: Vec<String>, valid: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut g = Generator::new(42, flavor, real);
    let mut out = Vec::with_capacity(PAIRS);
    while out.len() < PAIRS {
        let (a, b) = g.pair();
        if valid(&a) && valid(&b) {
            out.push((a, b));
        }
    }
    out
}

fn cstrings(pairs: &[(String, String)]) -> Vec<(CString, CString)> {
    pairs
        .iter()
        .map(|(a, b)| {
            (
                CString::new(a.as_str()).unwrap(),
                CString::new(b.as_str()).unwrap(),
            )
        })
        .collect()
}

#[cfg(oracle_libs)]
fn dpkg_benches(c: &mut Criterion) {
    use patchwarden_oracle::ffi::{Dpkg, DpkgParse};

    let debian = shared_data().join("debian");
    let mut real = column(&debian.join("bookworm-main-amd64.tsv"), &[1]);
    real.extend(column(
        &debian.join("bookworm-security-main-amd64.tsv"),
        &[1],
    ));
    let pairs = pairs(Flavor::Dpkg, real, |s| dpkg::validate(s).is_ok());
    let c_pairs = cstrings(&pairs);

    let mut group = c.benchmark_group("dpkg");
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("ours: strings to result", |bench| {
        bench.iter(|| {
            for (a, b) in &pairs {
                black_box(dpkg::compare(black_box(a), black_box(b)).ok());
            }
        })
    });
    group.bench_function("libdpkg: strings to result", |bench| {
        let mut lib = Dpkg::lock();
        bench.iter(|| {
            for (a, b) in &c_pairs {
                if let (DpkgParse::Ok(x), DpkgParse::Ok(y)) = (lib.parse(a), lib.parse(b)) {
                    black_box(lib.compare(&x, &y));
                }
            }
            // libdpkg parses into an arena that only frees all at once; that is its cost.
            lib.free_all();
        })
    });
    let parsed: Vec<_> = pairs
        .iter()
        .map(|(a, b)| {
            (
                dpkg::DpkgVersion::parse(a).unwrap(),
                dpkg::DpkgVersion::parse(b).unwrap(),
            )
        })
        .collect();
    group.bench_function("ours: parsed beforehand", |bench| {
        bench.iter(|| {
            for (a, b) in &parsed {
                black_box(black_box(a).cmp(black_box(b)));
            }
        })
    });
    let lib = Dpkg::lock();
    let c_parsed: Vec<_> = c_pairs
        .iter()
        .filter_map(|(a, b)| match (lib.parse(a), lib.parse(b)) {
            (DpkgParse::Ok(x), DpkgParse::Ok(y)) => Some((x, y)),
            _ => None,
        })
        .collect();
    assert_eq!(c_parsed.len(), PAIRS);
    group.bench_function("libdpkg: parsed beforehand", |bench| {
        bench.iter(|| {
            for (a, b) in &c_parsed {
                black_box(lib.compare(black_box(a), black_box(b)));
            }
        })
    });
    group.finish();
}

#[cfg(oracle_libs)]
fn rpm_benches(c: &mut Criterion) {
    use patchwarden_oracle::ffi::{RpmEvr, rpm_vercmp};

    let real = column(
        &shared_data().join("vercmp/real-pairs/almalinux_osv_rpm.tsv"),
        &[1, 2],
    );
    let evr_pairs = pairs(Flavor::RpmEvr, real.clone(), |s| rpm::parse_ref(s).is_ok());
    let c_evr = cstrings(&evr_pairs);
    let segments: Vec<String> = real
        .iter()
        .flat_map(|e| e.split(['-', ':']).map(String::from))
        .collect();
    let ver_pairs = pairs(Flavor::RpmVercmp, segments, |_| true);
    let c_ver = cstrings(&ver_pairs);

    let mut group = c.benchmark_group("rpmvercmp");
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("ours", |bench| {
        bench.iter(|| {
            for (a, b) in &ver_pairs {
                black_box(rpm::vercmp(black_box(a), black_box(b)));
            }
        })
    });
    group.bench_function("librpm", |bench| {
        bench.iter(|| {
            for (a, b) in &c_ver {
                black_box(rpm_vercmp(black_box(a), black_box(b)));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("rpm EVR");
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("ours: strings to result", |bench| {
        bench.iter(|| {
            for (a, b) in &evr_pairs {
                black_box(rpm::compare(black_box(a), black_box(b)).ok());
            }
        })
    });
    group.bench_function("librpm: strings to result", |bench| {
        bench.iter(|| {
            for (a, b) in &c_evr {
                if let (Some(x), Some(y)) = (RpmEvr::parse(a), RpmEvr::parse(b)) {
                    black_box(x.compare(&y));
                }
            }
        })
    });
    let parsed: Vec<_> = evr_pairs
        .iter()
        .map(|(a, b)| {
            (
                rpm::RpmVersion::parse(a).unwrap(),
                rpm::RpmVersion::parse(b).unwrap(),
            )
        })
        .collect();
    group.bench_function("ours: parsed beforehand", |bench| {
        bench.iter(|| {
            for (a, b) in &parsed {
                black_box(black_box(a).cmp(black_box(b)));
            }
        })
    });
    let c_parsed: Vec<_> = c_evr
        .iter()
        .filter_map(|(a, b)| Some((RpmEvr::parse(a)?, RpmEvr::parse(b)?)))
        .collect();
    group.bench_function("librpm: parsed beforehand", |bench| {
        bench.iter(|| {
            for (a, b) in &c_parsed {
                black_box(black_box(a).compare(black_box(b)));
            }
        })
    });
    group.finish();
}

#[cfg(oracle_libs)]
criterion_group!(benches, dpkg_benches, rpm_benches);

#[cfg(not(oracle_libs))]
fn skipped(_: &mut Criterion) {
    patchwarden_oracle::require_oracles("benchmarks against libdpkg and librpm");
}
#[cfg(not(oracle_libs))]
criterion_group!(benches, skipped);

criterion_main!(benches);
