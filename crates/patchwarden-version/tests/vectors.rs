//! The version-ordering vectors of dpkg, rpm and apk-tools, of osv-scalibr and claircore, and
//! real version pairs labelled by the real tools: every one must pass.
//!
//! The upstream suites live in `tests/upstream/` (see its README for where each came from);
//! the larger sets are read from the workplace's `shared/data/vercmp/`.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use patchwarden_version::apk::{self, Rules};
use patchwarden_version::{Scheme, dpkg, rpm};

/// `shared/data`: `$PATCHWARDEN_SHARED_DATA`, or `../shared/data` beside the checkout.
fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("vercmp").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

fn upstream(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/upstream")
        .join(name)
}

/// The rows of a TSV file after its header line.
fn rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

fn ordering(label: &str) -> Ordering {
    match label.trim() {
        "-1" => Ordering::Less,
        "0" => Ordering::Equal,
        "1" => Ordering::Greater,
        other => panic!("bad label {other:?}"),
    }
}

/// Checks `a op b` both ways round with `cmp`; returns the failures as readable lines.
fn check_pairs(
    what: &str,
    pairs: impl IntoIterator<Item = (String, String, Ordering)>,
    cmp: impl Fn(&str, &str) -> Result<Ordering, String>,
) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    for (a, b, want) in pairs {
        for (x, y, want) in [(&a, &b, want), (&b, &a, want.reverse())] {
            n += 1;
            match cmp(x, y) {
                Ok(got) if got == want => {}
                got => failures.push(format!("  {x:?} vs {y:?}: want {want:?}, got {got:?}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{what}: {} of {n} comparisons wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}

fn triples(path: &Path) -> Vec<(String, String, Ordering)> {
    rows(path)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), ordering(&r[2])))
        .collect()
}

fn scheme(s: Scheme) -> impl Fn(&str, &str) -> Result<Ordering, String> {
    move |a, b| s.compare(a, b).map_err(|e| e.to_string())
}

#[test]
fn dpkg_upstream_suite() {
    check_pairs(
        "dpkg.tsv",
        triples(&upstream("dpkg.tsv")),
        scheme(Scheme::Dpkg),
    );
    for r in rows(&upstream("dpkg_notequal.tsv")) {
        assert_ne!(dpkg::compare(&r[0], &r[1]), Ok(Ordering::Equal), "{r:?}");
    }
}

/// Every version that dpkg's `parseversion` rejects (with an error or a warning) we reject.
#[test]
fn dpkg_rejects_what_parseversion_rejects() {
    let text = std::fs::read_to_string(upstream("dpkg_invalid.txt")).unwrap();
    let mut n = 0;
    for line in text.split('\n').skip(1) {
        assert!(dpkg::validate(line).is_err(), "{line:?} should be invalid");
        n += 1;
    }
    assert!(n > 60);
    for r in rows(&upstream("dpkg_invalid_vs_dpkg_cli.tsv")) {
        let version = r[0].replace("\\t", "\t");
        match r[2].as_str() {
            "error" => {
                assert!(
                    dpkg::parse_ref(&version).is_err() && dpkg::validate(&version).is_err(),
                    "{version:?} ({}) should be invalid",
                    r[3]
                );
            }
            "warning" => {
                assert!(
                    dpkg::validate(&version).is_err(),
                    "{version:?} ({}) should be invalid",
                    r[3]
                );
            }
            // The dpkg command line reads an empty argument as "no version", which sorts
            // first; its library's `parseversion` rejects the empty string, and so do we.
            "accepted" => assert_eq!(version, ""),
            other => panic!("unknown kind {other}"),
        }
    }
}

#[test]
fn dpkg_osv_scalibr_and_real_pairs() {
    let data = shared_data().join("vercmp");
    let mut n = 0;
    for f in [
        "osv-scalibr/debian-versions.tsv",
        "osv-scalibr/debian-versions-generated.tsv",
    ] {
        n += check_pairs(f, triples(&data.join(f)), scheme(Scheme::Dpkg));
    }
    for f in [
        "real-pairs/debian_bookworm_aptlists_dpkg.tsv",
        "real-pairs/ubuntu_uct_dpkg.tsv",
    ] {
        let pairs = rows(&data.join(f))
            .into_iter()
            .map(|r| (r[1].clone(), r[2].clone(), ordering(&r[3])));
        n += check_pairs(f, pairs, scheme(Scheme::Dpkg));
    }
    assert!(
        n > 2 * (30 + 14_000 + 6_000 + 1_500),
        "only {n} comparisons: a file is short"
    );
}

#[test]
fn rpm_upstream_suites() {
    let vercmp = |a: &str, b: &str| Ok(rpm::vercmp(a, b));
    check_pairs("rpm.tsv", triples(&upstream("rpm.tsv")), vercmp);
    check_pairs(
        "rpm_oddities_documented.tsv",
        triples(&upstream("rpm_oddities_documented.tsv")),
        vercmp,
    );
    check_pairs(
        "rpm_evr.tsv",
        triples(&upstream("rpm_evr.tsv")),
        scheme(Scheme::Rpm),
    );
}

#[test]
fn rpm_osv_scalibr_claircore_and_real_pairs() {
    let data = shared_data().join("vercmp");
    check_pairs(
        "claircore rpmvercmp",
        triples(&data.join("claircore/rpm_rpmvercmp.tsv")),
        |a, b| Ok(rpm::vercmp(a, b)),
    );
    // claircore's compare suite mixes EVRs with whole NEVRAs whose names and architectures it
    // orders by its own rules; the EVR rows are rpm's, and those are checked here.
    let evr_rows: Vec<_> = triples(&data.join("claircore/rpm_compare.tsv"))
        .into_iter()
        .filter(|(a, b, _)| {
            [a, b]
                .iter()
                .all(|s| s.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    assert_eq!(evr_rows.len(), 6, "{evr_rows:?}");
    check_pairs(
        "claircore rpm_compare (EVR rows)",
        evr_rows,
        scheme(Scheme::Rpm),
    );
    check_pairs(
        "osv-scalibr redhat",
        triples(&data.join("osv-scalibr/redhat-versions.tsv")),
        scheme(Scheme::Rpm),
    );
    let alma = rows(&data.join("real-pairs/almalinux_osv_rpm.tsv"))
        .into_iter()
        .map(|r| (r[1].clone(), r[2].clone(), ordering(&r[3])));
    let n = check_pairs("AlmaLinux real pairs", alma, scheme(Scheme::Rpm));
    assert_eq!(n, 24_000);
}

#[test]
fn apk_upstream_suites() {
    assert_eq!(
        check_apk("apk.tsv (3.x)", triples(&upstream("apk.tsv")), Rules::V3),
        0
    );
    assert_eq!(
        check_apk(
            "apk_v2.14.tsv (2.x)",
            triples(&upstream("apk_v2.14.tsv")),
            Rules::V2
        ),
        0
    );
    for r in rows(&upstream("apk_validity.tsv")) {
        let valid = apk::validate(&r[0], Rules::V3).is_ok();
        assert_eq!(valid, r[1] == "valid", "{:?} should be {}", r[0], r[1]);
    }
    for r in rows(&upstream("apk_fuzzy_ops.tsv")) {
        assert_eq!(
            apk::matches(&r[0], &r[1], &r[2], Rules::V3),
            Ok(true),
            "{r:?}"
        );
    }
}

/// Checks apk pairs where `expected` is what apk-tools answers. We must give the same answer,
/// or refuse — and we may refuse only when one of the two is not a valid apk version (apk's
/// answer then rests on a part it does not accept). Returns how many were refused.
fn check_apk(what: &str, pairs: Vec<(String, String, Ordering)>, rules: Rules) -> usize {
    let mut failures = Vec::new();
    let mut refused = 0;
    for (a, b, want) in pairs {
        for (x, y, want) in [(&a, &b, want), (&b, &a, want.reverse())] {
            match apk::compare(x, y, rules) {
                Ok(got) if got == want => {}
                Ok(got) => failures.push(format!("  {x:?} vs {y:?}: want {want:?}, got {got:?}")),
                Err(_) if apk::validate(x, rules).is_err() || apk::validate(y, rules).is_err() => {
                    refused += 1;
                }
                Err(e) => {
                    failures.push(format!("  {x:?} vs {y:?}: refused two valid versions: {e}"))
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{what}: {} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    refused
}

/// osv-scalibr's Alpine fixtures disagree with apk-tools on a few pairs; apk's answer (from the
/// `disagreements_*` files, produced by apk-tools' own `version.c`) is the truth.
fn alpine_fixture(
    data: &Path,
    fixture: &str,
    disagreements: Option<&str>,
) -> Vec<(String, String, Ordering)> {
    let mut pairs = triples(&data.join(fixture));
    if let Some(d) = disagreements {
        for r in rows(&data.join(d)) {
            let row = pairs
                .iter_mut()
                .find(|(a, b, _)| *a == r[0] && *b == r[1])
                .unwrap_or_else(|| panic!("{r:?} not in {fixture}"));
            row.2 = ordering(&r[3]);
        }
    }
    pairs
}

#[test]
fn apk_osv_scalibr_and_real_pairs() {
    let data = shared_data().join("vercmp");
    let s = "osv-scalibr/";
    let v2 = check_apk(
        "alpine-versions (2.x)",
        alpine_fixture(
            &data,
            &format!("{s}alpine-versions.tsv"),
            Some(&format!(
                "{s}disagreements_alpine-versions_vs_apkvercmp-v2.tsv"
            )),
        ),
        Rules::V2,
    );
    let v3 = check_apk(
        "alpine-versions (3.x)",
        alpine_fixture(
            &data,
            &format!("{s}alpine-versions.tsv"),
            Some(&format!(
                "{s}disagreements_alpine-versions_vs_apkvercmp-v3.tsv"
            )),
        ),
        Rules::V3,
    );
    let g2 = check_apk(
        "alpine-versions-generated (2.x)",
        alpine_fixture(&data, &format!("{s}alpine-versions-generated.tsv"), None),
        Rules::V2,
    );
    let g3 = check_apk(
        "alpine-versions-generated (3.x)",
        alpine_fixture(
            &data,
            &format!("{s}alpine-versions-generated.tsv"),
            Some(&format!(
                "{s}disagreements_alpine-versions-generated_vs_apkvercmp-v3.tsv"
            )),
        ),
        Rules::V3,
    );
    let real = rows(&data.join("real-pairs/alpine_secdb_apk.tsv"));
    let r2 = check_apk(
        "secdb real pairs (2.x)",
        real.iter()
            .map(|r| (r[1].clone(), r[2].clone(), ordering(&r[3])))
            .collect(),
        Rules::V2,
    );
    let r3 = check_apk(
        "secdb real pairs (3.x)",
        real.iter()
            .map(|r| (r[1].clone(), r[2].clone(), ordering(&r[4])))
            .collect(),
        Rules::V3,
    );
    // The refusals are pairs with a version apk itself would not accept (osv-scalibr's
    // deliberately odd fixtures; typos in the secdb such as "1.18.-r2"). Pin the counts so a
    // change in them is seen.
    assert_eq!(
        (v2, v3, g2, g3, r2, r3),
        (24, 64, 0, 64, 6, 8),
        "refusals (v2, v3, gen v2, gen v3, real v2, real v3)"
    );
}

#[test]
fn semver_vectors() {
    let data = shared_data().join("vercmp");
    check_pairs(
        "osv-scalibr semver",
        triples(&data.join("osv-scalibr/semver-versions.tsv")),
        scheme(Scheme::Semver),
    );
    check_pairs(
        "node-semver compare",
        triples(&data.join("semver/node-semver-compare.tsv")),
        scheme(Scheme::Semver),
    );
}

#[test]
fn pep440_vectors() {
    let data = shared_data().join("vercmp");
    check_pairs(
        "osv-scalibr pypi",
        triples(&data.join("osv-scalibr/pypi-versions.tsv")),
        scheme(Scheme::Pep440),
    );
    check_pairs(
        "osv-scalibr pypi generated",
        triples(&data.join("osv-scalibr/pypi-versions-generated.tsv")),
        scheme(Scheme::Pep440),
    );
}
