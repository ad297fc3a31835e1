//! The traps that make vulnerability scanners wrong, one test each, named after the trap.
//! Advisories and packages are written by hand in the shape the real feeds and collectors
//! give them.

use expect_test::{Expect, expect};
use patchwarden_core::advisory::{
    Advisory, Affected, Event, FeedKind, NotAffected, PackageRef, Range, RangeKind, Source,
};
use patchwarden_core::inventory::{Manager, Package, PackageStatus};
use patchwarden_match::Index;

fn advisory(id: &str, eco: &str, name: &str, ranges: Vec<Range>) -> Advisory {
    let mut a = Advisory::new(
        id,
        Source {
            feed: FeedKind::Osv,
            location: format!("{id}.json"),
            document: None,
        },
    );
    let mut affected = Affected::new(PackageRef::new(eco, name));
    affected.ranges = ranges;
    a.affected.push(affected);
    a.published = Some("2024-03-01T00:00:00Z".parse().unwrap());
    a
}

fn fixed(v: &str) -> Vec<Range> {
    vec![Range::ecosystem("0", Some(v.to_owned()))]
}

fn range(events: Vec<Event>) -> Range {
    Range {
        kind: RangeKind::Ecosystem,
        repo: None,
        events,
    }
}

fn deb(name: &str, version: &str, source: Option<(&str, &str)>) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: Some("amd64".into()),
        source_name: Some(source.map_or(name, |s| s.0).into()),
        source_version: Some(source.map_or(version, |s| s.1).into()),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

fn rpm(name: &str, epoch: Option<u32>, version: &str, module: Option<&str>) -> Package {
    Package {
        manager: Manager::Rpm,
        name: name.into(),
        version: version.into(),
        arch: Some("x86_64".into()),
        source_name: Some(name.into()),
        source_version: Some(version.into()),
        epoch,
        module: module.map(String::from),
        status: PackageStatus::Installed,
    }
}

fn apk(name: &str, version: &str, origin: &str) -> Package {
    Package {
        manager: Manager::Apk,
        name: name.into(),
        version: version.into(),
        arch: Some("x86_64".into()),
        source_name: Some(origin.into()),
        source_version: Some(version.into()),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

/// Matches and prints one line per finding: vulnerability, package, installed → fixed,
/// sources, explanation; then problems.
fn check(advisories: Vec<Advisory>, host: &str, packages: &[Package], expect: Expect) {
    let (index, index_problems) = Index::build(advisories);
    let report = index.match_packages(host, packages);
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!(
            "{} {} {} -> {} {:?}\n  {}\n",
            f.vulnerability,
            f.package,
            f.installed,
            f.fixed.as_deref().unwrap_or("(no fix)"),
            f.advisories,
            f.explanation
        ));
    }
    for p in &index_problems {
        out.push_str(&format!("index problem: {p}\n"));
    }
    for p in &report.problems {
        out.push_str(&format!("match problem: {p}\n"));
    }
    if out.is_empty() {
        out.push_str("no findings\n");
    }
    expect.assert_eq(&out);
}

fn cve(mut a: Advisory, cve: &str) -> Advisory {
    a.upstream = vec![cve.into()];
    a
}

#[test]
fn debian_advisories_name_source_packages() {
    check(
        vec![cve(
            advisory(
                "DSA-5532-1",
                "Debian:12",
                "openssl",
                fixed("3.0.11-1~deb12u2"),
            ),
            "CVE-2023-5363",
        )],
        "Debian:12",
        &[
            deb(
                "libssl3",
                "3.0.11-1~deb12u1",
                Some(("openssl", "3.0.11-1~deb12u1")),
            ),
            deb("openssl", "3.0.11-1~deb12u1", None),
            deb(
                "libssl-dev",
                "3.0.11-1~deb12u2",
                Some(("openssl", "3.0.11-1~deb12u2")),
            ),
        ],
        expect![[r#"
            CVE-2023-5363 libssl3 3.0.11-1~deb12u1 -> 3.0.11-1~deb12u2 ["DSA-5532-1"]
              openssl 3.0.11-1~deb12u1 < 3.0.11-1~deb12u2 fixed in DSA-5532-1 (Debian:12, source openssl)
            CVE-2023-5363 openssl 3.0.11-1~deb12u1 -> 3.0.11-1~deb12u2 ["DSA-5532-1"]
              openssl 3.0.11-1~deb12u1 < 3.0.11-1~deb12u2 fixed in DSA-5532-1 (Debian:12, source openssl)
        "#]],
    );
}

#[test]
fn binnmu_binary_versions_are_not_source_versions() {
    check(
        vec![
            cve(
                advisory("DSA-1", "Debian:12", "zlib", fixed("1:1.2.13.dfsg-1")),
                "CVE-2024-0001",
            ),
            cve(
                advisory("DSA-2", "Debian:12", "gcc-defaults", fixed("1.204")),
                "CVE-2024-0002",
            ),
        ],
        "Debian:12",
        &[
            // A binNMU: the binary is +b1, the source is exactly the fixed version.
            deb(
                "zlib1g",
                "1:1.2.13.dfsg-1+b1",
                Some(("zlib", "1:1.2.13.dfsg-1")),
            ),
            // A binary versioned apart from its source.
            deb("cpp", "4:12.2.0-3", Some(("gcc-defaults", "1.203"))),
        ],
        expect![[r#"
            CVE-2024-0002 cpp 1.203 -> 1.204 ["DSA-2"]
              gcc-defaults 1.203 (binary cpp 4:12.2.0-3) < 1.204 fixed in DSA-2 (Debian:12, source gcc-defaults)
        "#]],
    );
}

#[test]
fn epochs_outrank_everything_else() {
    check(
        vec![
            cve(
                advisory("DSA-3", "Debian:12", "a", fixed("2.1-1")),
                "CVE-2024-0003",
            ),
            cve(
                advisory("DSA-4", "Debian:12", "b", fixed("1:2.1-1")),
                "CVE-2024-0004",
            ),
        ],
        "Debian:12",
        &[deb("a", "1:2.0-1", None), deb("b", "2.5-1", None)],
        expect![[r#"
            CVE-2024-0004 b 2.5-1 -> 1:2.1-1 ["DSA-4"]
              b 2.5-1 < 1:2.1-1 fixed in DSA-4 (Debian:12, source b)
        "#]],
    );
}

#[test]
fn tilde_backports_sort_before_their_base_version() {
    check(
        vec![cve(
            advisory("DSA-5", "Debian:12", "curl", fixed("7.88.1-10+deb12u5")),
            "CVE-2024-0005",
        )],
        "Debian:12",
        &[deb("curl", "7.88.1-10+deb12u5~bpo12+1", None)],
        expect![[r#"
            CVE-2024-0005 curl 7.88.1-10+deb12u5~bpo12+1 -> 7.88.1-10+deb12u5 ["DSA-5"]
              curl 7.88.1-10+deb12u5~bpo12+1 < 7.88.1-10+deb12u5 fixed in DSA-5 (Debian:12, source curl)
        "#]],
    );
}

#[test]
fn another_release_says_nothing_about_this_host() {
    check(
        vec![cve(
            advisory("DLA-1", "Debian:11", "curl", fixed("7.74.0-1.3+deb11u12")),
            "CVE-2024-0006",
        )],
        "Debian:12",
        &[deb("curl", "7.74.0-1.3+deb11u1", None)],
        expect!["no findings\n"],
    );
}

#[test]
fn withdrawn_advisories_produce_nothing() {
    let mut a = cve(
        advisory("DSA-6", "Debian:12", "curl", fixed("9")),
        "CVE-2024-0007",
    );
    a.withdrawn = Some("2024-03-02T00:00:00Z".parse().unwrap());
    check(
        vec![a],
        "Debian:12",
        &[deb("curl", "1", None)],
        expect!["no findings\n"],
    );
}

#[test]
fn not_affected_statements_suppress_findings() {
    let affected = advisory(
        "CVE-2024-0008",
        "Debian:12",
        "glibc",
        vec![range(vec![Event::Introduced("0".into())])],
    );
    let mut vex = Advisory::new(
        "DEBIAN-CVE-2024-0008",
        Source {
            feed: FeedKind::DebianTracker,
            location: "t".into(),
            document: None,
        },
    );
    vex.aliases = vec!["CVE-2024-0008".into()];
    vex.not_affected.push(NotAffected {
        package: PackageRef::new("Debian:12", "glibc"),
        version: None,
        justification: None,
        statement: Some("vulnerable code not present".into()),
    });
    check(
        vec![affected, vex],
        "Debian:12",
        &[deb(
            "libc6",
            "2.36-9+deb12u4",
            Some(("glibc", "2.36-9+deb12u4")),
        )],
        expect!["no findings\n"],
    );
}

#[test]
fn one_cve_through_three_advisories_is_one_finding_with_three_sources() {
    let mut cve_record = advisory(
        "CVE-2024-0009",
        "AlmaLinux:9",
        "openssl",
        fixed("1:3.0.7-27.el9"),
    );
    cve_record.published = Some("2024-01-10T00:00:00Z".parse().unwrap());
    let mut alsa = advisory(
        "ALSA-2024:1",
        "AlmaLinux:9",
        "openssl",
        fixed("1:3.0.7-25.el9"),
    );
    alsa.related = vec!["CVE-2024-0009".into()];
    alsa.published = Some("2024-02-01T00:00:00Z".parse().unwrap());
    let mut alsa2 = advisory(
        "ALSA-2024:2",
        "AlmaLinux:9",
        "openssl",
        fixed("1:3.0.7-25.el9"),
    );
    alsa2.related = vec!["CVE-2024-0009".into()];
    alsa2.published = Some("2024-01-20T00:00:00Z".parse().unwrap());
    let (index, _) = Index::build(vec![cve_record, alsa, alsa2]);
    let report = index.match_packages(
        "AlmaLinux:9",
        &[rpm("openssl", Some(1), "3.0.7-24.el9", None)],
    );
    assert_eq!(report.findings.len(), 1, "{report:#?}");
    let f = &report.findings[0];
    assert_eq!(
        f.advisories,
        ["ALSA-2024:1", "ALSA-2024:2", "CVE-2024-0009"]
    );
    // The lowest fix above the installed version, available since the earliest advisory
    // that offers it.
    assert_eq!(f.fixed.as_deref(), Some("1:3.0.7-25.el9"));
    assert_eq!(
        f.available_at,
        Some("2024-01-20T00:00:00Z".parse().unwrap())
    );
    assert_eq!(
        f.published_at,
        Some("2024-01-10T00:00:00Z".parse().unwrap())
    );
    assert_eq!(
        f.explanation,
        "openssl 1:3.0.7-24.el9 < 1:3.0.7-25.el9 fixed in ALSA-2024:2 (AlmaLinux:9)"
    );
}

#[test]
fn rhel_module_streams_only_fix_their_own_stream() {
    let mut a = advisory(
        "ALSA-2024:3",
        "AlmaLinux:8",
        "nodejs",
        fixed("1:18.19.0-1.module_el8.9.0+3729+9d5c8a0d"),
    );
    a.summary = Some("Moderate: nodejs:18 security update".into());
    a.related = vec!["CVE-2024-0010".into()];
    check(
        vec![a],
        "AlmaLinux:8",
        &[
            rpm(
                "nodejs",
                Some(1),
                "16.20.2-4.module_el8.9.0+3700+6f5e0c9a",
                Some("nodejs:16:8090020231019:a7f3a1e0"),
            ),
            rpm(
                "nodejs-full-i18n",
                Some(1),
                "18.18.2-1.module_el8.9.0+3700+6f5e0c9a",
                Some("nodejs:18:8090020231019:a7f3a1e0"),
            ),
        ],
        expect![[r#"
            no findings
        "#]],
    );
}

#[test]
fn rhel_module_streams_match_the_same_stream() {
    let mut a = advisory(
        "ALSA-2024:3",
        "AlmaLinux:8",
        "nodejs",
        fixed("1:18.19.0-1.module_el8.9.0+3729+9d5c8a0d"),
    );
    a.summary = Some("Moderate: nodejs:18 security update".into());
    a.related = vec!["CVE-2024-0010".into()];
    check(
        vec![a],
        "AlmaLinux:8",
        &[rpm(
            "nodejs",
            Some(1),
            "18.18.2-1.module_el8.9.0+3700+6f5e0c9a",
            Some("nodejs:18:8090020231019:a7f3a1e0"),
        )],
        expect![[r#"
            CVE-2024-0010 nodejs 1:18.18.2-1.module_el8.9.0+3700+6f5e0c9a -> 1:18.19.0-1.module_el8.9.0+3729+9d5c8a0d ["ALSA-2024:3"]
              nodejs 1:18.18.2-1.module_el8.9.0+3700+6f5e0c9a < 1:18.19.0-1.module_el8.9.0+3729+9d5c8a0d fixed in ALSA-2024:3 (AlmaLinux:8)
        "#]],
    );
}

#[test]
fn a_missing_rpm_epoch_is_zero() {
    check(
        vec![
            cve(
                advisory(
                    "ALSA-2024:4",
                    "AlmaLinux:9",
                    "zlib",
                    fixed("0:1.2.11-41.el9"),
                ),
                "CVE-2024-0011",
            ),
            cve(
                advisory("ALSA-2024:5", "AlmaLinux:9", "bzip2", fixed("1.0.8-9.el9")),
                "CVE-2024-0012",
            ),
        ],
        "AlmaLinux:9",
        &[
            rpm("zlib", None, "1.2.11-40.el9", None),
            rpm("bzip2", Some(1), "1.0.8-8.el9", None),
        ],
        expect![[r#"
            CVE-2024-0011 zlib 1.2.11-40.el9 -> 0:1.2.11-41.el9 ["ALSA-2024:4"]
              zlib 1.2.11-40.el9 < 0:1.2.11-41.el9 fixed in ALSA-2024:4 (AlmaLinux:9)
        "#]],
    );
}

#[test]
fn alpine_advisories_name_origins() {
    check(
        vec![cve(
            advisory("ALPINE-1", "Alpine:v3.19", "openssl", fixed("3.1.4-r1")),
            "CVE-2024-0013",
        )],
        "Alpine:v3.19",
        &[
            apk("libcrypto3", "3.1.4-r0", "openssl"),
            apk("libssl3", "3.1.4-r1", "openssl"),
        ],
        expect![[r#"
            CVE-2024-0013 libcrypto3 3.1.4-r0 -> 3.1.4-r1 ["ALPINE-1"]
              openssl 3.1.4-r0 < 3.1.4-r1 fixed in ALPINE-1 (Alpine:v3.19, origin openssl)
        "#]],
    );
}

#[test]
fn removed_packages_with_config_files_left_are_not_exposed() {
    let mut gone = deb("curl", "7.0-1", None);
    gone.status = PackageStatus::ConfigFiles;
    let mut half = deb("wget", "1.0-1", None);
    half.status = PackageStatus::HalfInstalled;
    check(
        vec![
            cve(
                advisory("DSA-7", "Debian:12", "curl", fixed("8.0-1")),
                "CVE-2024-0014",
            ),
            cve(
                advisory("DSA-8", "Debian:12", "wget", fixed("2.0-1")),
                "CVE-2024-0015",
            ),
        ],
        "Debian:12",
        &[gone, half],
        expect![[r#"
            CVE-2024-0015 wget 1.0-1 -> 2.0-1 ["DSA-8"]
              wget 1.0-1 < 2.0-1 fixed in DSA-8 (Debian:12, source wget)
        "#]],
    );
}

#[test]
fn lowest_fix_above_the_installed_version_across_ranges() {
    let ranges = vec![
        range(vec![
            Event::Introduced("0".into()),
            Event::Fixed("1.5-1".into()),
        ]),
        range(vec![
            Event::Introduced("2.0-1".into()),
            Event::Fixed("2.3-1".into()),
        ]),
        range(vec![
            Event::Introduced("2.0-1".into()),
            Event::Fixed("2.2-1".into()),
        ]),
    ];
    check(
        vec![cve(
            advisory("DSA-9", "Debian:12", "x", ranges),
            "CVE-2024-0016",
        )],
        "Debian:12",
        &[
            deb("x", "2.1-1", None),
            deb("y", "1.6-1", Some(("x", "1.6-1"))),
        ],
        expect![[r#"
            CVE-2024-0016 x 2.1-1 -> 2.2-1 ["DSA-9"]
              x 2.1-1 < 2.2-1 fixed in DSA-9 (Debian:12, source x)
        "#]],
    );
}

#[test]
fn unfixed_last_affected_and_listed_versions() {
    let mut listed = advisory("DSA-10", "Debian:12", "c", vec![]);
    listed.affected[0].versions = vec!["3.0-1".into()];
    check(
        vec![
            cve(
                advisory(
                    "DSA-11",
                    "Debian:12",
                    "a",
                    vec![range(vec![Event::Introduced("1.0".into())])],
                ),
                "CVE-2024-0017",
            ),
            cve(
                advisory(
                    "DSA-12",
                    "Debian:12",
                    "b",
                    vec![range(vec![
                        Event::Introduced("0".into()),
                        Event::LastAffected("2.0-1".into()),
                    ])],
                ),
                "CVE-2024-0018",
            ),
            cve(listed, "CVE-2024-0019"),
        ],
        "Debian:12",
        &[
            deb("a", "1.5-1", None),
            deb("b", "2.0-1", None),
            deb("c", "3.0-1", None),
            deb("d", "3.0-1", Some(("b", "2.0-2"))),
        ],
        expect![[r#"
            CVE-2024-0017 a 1.5-1 -> (no fix) ["DSA-11"]
              a 1.5-1 is affected since 1.0 per DSA-11 (Debian:12, source a); no fixed version is published
            CVE-2024-0018 b 2.0-1 -> (no fix) ["DSA-12"]
              b 2.0-1 is affected in every version per DSA-12 (Debian:12, source b); no fixed version is published
            CVE-2024-0019 c 3.0-1 -> (no fix) ["DSA-10"]
              c 3.0-1 is listed as affected per DSA-10 (Debian:12, source c); no fixed version is published
        "#]],
    );
}

#[test]
fn versions_that_cannot_be_ordered_are_reported_not_matched() {
    check(
        vec![
            cve(
                advisory("DSA-13", "Debian:12", "a", fixed("not a version")),
                "CVE-2024-0020",
            ),
            cve(
                advisory("DSA-14", "Debian:12", "b", fixed("2.0-1")),
                "CVE-2024-0021",
            ),
        ],
        "Debian:12",
        &[deb("a", "1.0-1", None), deb("b", ":1.0", None)],
        expect![[r#"
            index problem: DSA-13: Debian:12 a: invalid dpkg version "not a version": version string has embedded spaces
            match problem: b :1.0: epoch in version is empty
        "#]],
    );
}

#[test]
fn packages_of_another_manager_never_answer_a_distribution_advisory() {
    // A Debian host with an rpm database (for building rpms) keeps its rpm packages out of
    // Debian's advisories, and the other way round.
    check(
        vec![cve(
            advisory("DSA-15", "Debian:12", "zlib", fixed("1:1.2.13.dfsg-2")),
            "CVE-2024-0022",
        )],
        "Debian:12",
        &[rpm("zlib", None, "1.2.11-40.el9", None)],
        expect!["no findings\n"],
    );
}

#[test]
fn sboms_that_leave_epochs_out_compare_with_the_fix_epoch() {
    // Red Hat's SBOMs write `pkg:rpm/redhat/openssl-libs@3.0.7-27.el9`: the real package is
    // 1:3.0.7-27.el9, already past the fix 1:3.0.7-25.el9. Read as epoch 0 it would look older.
    let advisories = || {
        vec![cve(
            advisory(
                "ALSA-2024:6",
                "AlmaLinux:9",
                "openssl-libs",
                fixed("1:3.0.7-25.el9"),
            ),
            "CVE-2024-0023",
        )]
    };
    let packages = [
        rpm("openssl-libs", None, "3.0.7-27.el9", None),
        rpm("openssl-libs", None, "3.0.7-24.el9", None),
    ];
    let (index, _) = Index::build(advisories());
    let options = patchwarden_match::MatchOptions {
        rpm_epoch_unknown: true,
    };
    let report = index.match_packages_with("AlmaLinux:9", &packages, options);
    assert_eq!(report.findings.len(), 1, "{report:#?}");
    assert_eq!(report.findings[0].installed, "3.0.7-24.el9");
    assert_eq!(
        report.findings[0].explanation,
        "openssl-libs 3.0.7-24.el9 (epoch unknown, compared as 1:3.0.7-24.el9) < 1:3.0.7-25.el9 fixed in ALSA-2024:6 (AlmaLinux:9)"
    );
    // From a package database an absent epoch is 0, and both are older than the fix.
    let (index, _) = Index::build(advisories());
    assert_eq!(
        index
            .match_packages("AlmaLinux:9", &packages)
            .findings
            .len(),
        2
    );
}
