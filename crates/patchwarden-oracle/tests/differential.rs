//! Differential tests: our dpkg and rpm ordering against the real libdpkg and librpm, in
//! process, on at least a million generated pairs per flavour per run. Zero disagreements.
//!
//! The seed changes every run (so each run explores new pairs) and is printed; set
//! `PATCHWARDEN_ORACLE_SEED` to replay a run and `PATCHWARDEN_ORACLE_PAIRS` to change the count.

#![cfg(oracle_libs)]

use std::ffi::CString;
use std::path::{Path, PathBuf};

use patchwarden_oracle::ffi::{self, Dpkg, DpkgParse, RpmEvr};
use patchwarden_oracle::generate::{Flavor, Generator};
use patchwarden_version::{Reason, dpkg, rpm};

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

fn seed(flavor: &str) -> u64 {
    let seed = match std::env::var("PATCHWARDEN_ORACLE_SEED") {
        Ok(s) => s.parse().expect("PATCHWARDEN_ORACLE_SEED is a number"),
        #[allow(clippy::disallowed_methods)] // a fresh seed per run; it is printed for replay
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    eprintln!("{flavor}: seed {seed} (replay with PATCHWARDEN_ORACLE_SEED={seed})");
    seed
}

fn pairs() -> usize {
    std::env::var("PATCHWARDEN_ORACLE_PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// Real Debian versions: every distinct version in the bookworm archive lists.
fn debian_versions() -> Vec<String> {
    let mut out = Vec::new();
    for f in [
        "bookworm-main-amd64.tsv",
        "bookworm-security-main-amd64.tsv",
        "bookworm-updates-main-amd64.tsv",
    ] {
        let text = std::fs::read_to_string(shared_data().join("debian").join(f)).unwrap();
        out.extend(
            text.lines()
                .skip(1)
                .filter_map(|l| l.split('\t').nth(1))
                .map(String::from),
        );
    }
    out.sort();
    out.dedup();
    assert!(out.len() > 20_000, "{}", out.len());
    out
}

/// Real rpm EVRs from AlmaLinux's advisories.
fn alma_evrs() -> Vec<String> {
    let path = shared_data().join("vercmp/real-pairs/almalinux_osv_rpm.tsv");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<String> = text
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split('\t')
                .skip(1)
                .take(2)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The version libdpkg parsed, if it could (with or without a warning).
fn parsed<'a>(p: &DpkgParse<'a>) -> Option<ffi::DpkgParsed<'a>> {
    match p {
        DpkgParse::Ok(v) | DpkgParse::Warning(v, _) => Some(*v),
        DpkgParse::Error(_) => None,
    }
}

/// Collects disagreements and fails with the first few and the seed.
struct Report {
    what: &'static str,
    seed: u64,
    compared: usize,
    failures: Vec<String>,
    failure_count: usize,
}

impl Report {
    fn new(what: &'static str, seed: u64) -> Report {
        Report {
            what,
            seed,
            compared: 0,
            failures: Vec::new(),
            failure_count: 0,
        }
    }
    fn fail(&mut self, line: String) {
        self.failure_count += 1;
        if self.failures.len() < 25 {
            self.failures.push(line);
        }
    }
    fn finish(self, stats: &str) {
        eprintln!(
            "{}: {} pairs, {} disagreements; {stats}",
            self.what, self.compared, self.failure_count
        );
        assert!(
            self.failure_count == 0,
            "{}: {} of {} pairs disagree with the C library (seed {}):\n{}",
            self.what,
            self.failure_count,
            self.compared,
            self.seed,
            self.failures.join("\n")
        );
    }
}

#[test]
fn dpkg_agrees_with_libdpkg() {
    let seed = seed("dpkg");
    let mut generator = Generator::new(seed, Flavor::Dpkg, debian_versions());
    let mut lib = Dpkg::lock();
    let mut report = Report::new("dpkg vs libdpkg", seed);
    let (mut ok, mut warned, mut refused) = (0usize, 0usize, 0usize);
    let mut orders = [0usize; 3];
    for i in 0..pairs() {
        if i % 50_000 == 0 {
            lib.free_all();
        }
        let (a, b) = generator.pair();
        let (Ok(ca), Ok(cb)) = (CString::new(a.as_str()), CString::new(b.as_str())) else {
            continue;
        };
        report.compared += 1;
        let (pa, pb) = (lib.parse(&ca), lib.parse(&cb));
        // Validity: dpkg's error ⇔ we cannot parse; dpkg's warning ⇔ we parse but `validate`
        // refuses; clean ⇔ both accept.
        for (s, p) in [(&a, &pa), (&b, &pb)] {
            let ours = (dpkg::parse_ref(s).is_ok(), dpkg::validate(s).is_ok());
            let theirs = match p {
                DpkgParse::Ok(_) => (true, true),
                DpkgParse::Warning(..) => (true, false),
                DpkgParse::Error(_) => (false, false),
            };
            match theirs {
                (true, true) => ok += 1,
                (true, false) => warned += 1,
                _ => refused += 1,
            }
            if ours != theirs {
                report.fail(format!("  validity of {s:?}: ours {ours:?}, libdpkg {p:?}"));
            }
        }
        if let (Some(va), Some(vb)) = (parsed(&pa), parsed(&pb)) {
            let theirs = lib.compare(&va, &vb);
            orders[(theirs as i8 + 1) as usize] += 1;
            let ours = dpkg::compare(&a, &b);
            if ours != Ok(theirs) {
                report.fail(format!(
                    "  {a:?} vs {b:?}: ours {ours:?}, libdpkg {theirs:?}"
                ));
            }
        }
    }
    report.finish(&format!(
        "versions clean {ok}, warned {warned}, refused {refused}; orders <{} ={} >{}",
        orders[0], orders[1], orders[2]
    ));
}

#[test]
fn rpmvercmp_agrees_with_librpm() {
    let seed = seed("rpmvercmp");
    let real: Vec<String> = alma_evrs()
        .iter()
        .flat_map(|e| e.split(['-', ':']).map(String::from).collect::<Vec<_>>())
        .collect();
    let mut generator = Generator::new(seed, Flavor::RpmVercmp, real);
    let mut report = Report::new("rpmvercmp vs librpm", seed);
    let mut orders = [0usize; 3];
    for _ in 0..pairs() {
        let (a, b) = generator.pair();
        let (Ok(ca), Ok(cb)) = (CString::new(a.as_str()), CString::new(b.as_str())) else {
            continue;
        };
        report.compared += 1;
        let theirs = ffi::rpm_vercmp(&ca, &cb);
        orders[(theirs as i8 + 1) as usize] += 1;
        let ours = rpm::vercmp(&a, &b);
        if ours != theirs {
            report.fail(format!(
                "  {a:?} vs {b:?}: ours {ours:?}, librpm {theirs:?}"
            ));
        }
    }
    report.finish(&format!(
        "orders <{} ={} >{}",
        orders[0], orders[1], orders[2]
    ));
}

#[test]
fn rpm_evr_agrees_with_librpm() {
    let seed = seed("rpm EVR");
    let mut generator = Generator::new(seed, Flavor::RpmEvr, alma_evrs());
    let mut report = Report::new("rpm EVR vs librpm rpmverCmp", seed);
    let mut orders = [0usize; 3];
    let mut refused = 0usize;
    for _ in 0..pairs() {
        let (a, b) = generator.pair();
        let (Ok(ca), Ok(cb)) = (CString::new(a.as_str()), CString::new(b.as_str())) else {
            continue;
        };
        report.compared += 1;
        let (Some(ra), Some(rb)) = (RpmEvr::parse(&ca), RpmEvr::parse(&cb)) else {
            // rpm gives no object for the empty string; we refuse it too.
            if rpm::compare(&a, &b).is_ok() {
                report.fail(format!(
                    "  {a:?} vs {b:?}: rpm cannot parse it, we compared"
                ));
            }
            continue;
        };
        let theirs = ra.compare(&rb);
        orders[(theirs as i8 + 1) as usize] += 1;
        match rpm::compare(&a, &b) {
            Ok(ours) if ours == theirs => {}
            // We refuse exactly what no rpm header holds: an empty version, white space and
            // control characters. Anything else refused is a bug.
            Err(e)
                if matches!(
                    e.reason,
                    Reason::VersionEmpty | Reason::EmbeddedSpace | Reason::ControlCharacter(_)
                ) =>
            {
                refused += 1
            }
            ours => report.fail(format!(
                "  {a:?} vs {b:?}: ours {ours:?}, librpm {theirs:?}"
            )),
        }
    }
    report.finish(&format!(
        "orders <{} ={} >{}; refused {refused} (empty version)",
        orders[0], orders[1], orders[2]
    ));
}
