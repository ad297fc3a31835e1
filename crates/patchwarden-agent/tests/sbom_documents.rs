//! SBOM input: Red Hat's real SPDX 2.2 SBOM of the UBI 9.2 image (605 rpm packages), checked
//! against the companion inventory that lists each package's name, epoch, version, release,
//! architecture and purl; and CycloneDX 1.4, 1.5 and 1.6 documents written here by hand from
//! the real package data of a Debian 12 host and an Alpine 3.18 image.

use std::path::{Path, PathBuf};

use patchwarden_agent::inventory::sbom::{
    self, SbomError, SbomFormat, SbomParseError, parse_sbom, read_sbom,
};
use patchwarden_core::inventory::{Manager, Package, PackageStatus};

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("inventories").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

#[test]
fn ubi9_spdx_matches_its_rpm_inventory() {
    let dir = shared_data().join("inventories/rpm");
    let sbom = read_sbom(&dir.join("ubi9-9.2-755.spdx.json")).unwrap();
    assert_eq!(sbom.format, SbomFormat::Spdx("SPDX-2.2".into()));
    assert_eq!(sbom.name.as_deref(), Some("ubi9-container"));
    // The five image entries are `pkg:oci` and not OS packages.
    assert_eq!(sbom.not_os_packages.get("oci"), Some(&5));
    assert_eq!(sbom.problems, Vec::<String>::new());
    // Red Hat's purls carry no `distro` qualifier: the SBOM does not say which OS it is.
    assert_eq!(sbom.os, None);

    let tsv = std::fs::read_to_string(dir.join("ubi9-9.2-755.rpm-inventory.tsv")).unwrap();
    let mut want: Vec<Package> = tsv
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "{l:?}");
            // The companion file keeps the purl's percent-encoding in names
            // (`libstdc%2B%2B`); the package is `libstdc++`, as its purl column decodes.
            let purl = sbom::parse_purl(f[5]).unwrap();
            assert_eq!(purl.name, f[0].replace("%2B", "+"), "{l:?}");
            Package {
                manager: Manager::Rpm,
                name: purl.name,
                version: format!("{}-{}", f[2], f[3]),
                arch: Some(f[4].into()),
                source_name: None,
                source_version: None,
                epoch: (!f[1].is_empty()).then(|| f[1].parse().unwrap()),
                module: None,
                status: PackageStatus::Installed,
            }
        })
        .collect();
    assert_eq!(want.len(), 605);
    let mut got = sbom.packages.clone();
    got.sort();
    want.sort();
    let missing: Vec<_> = want.iter().filter(|p| !got.contains(p)).collect();
    let extra: Vec<_> = got.iter().filter(|p| !want.contains(p)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    assert_eq!(got, want);
}

/// A CycloneDX document as Syft writes one for a Debian 12 host, with the versions of that
/// host's real `dpkg/status` (`shared/data/debian/debian12-host.status`).
fn debian_cyclonedx(spec: &str) -> String {
    format!(
        r#"{{
  "bomFormat": "CycloneDX",
  "specVersion": "{spec}",
  "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
  "version": 1,
  "metadata": {{
    "timestamp": "2026-11-20T10:00:00Z",
    "component": {{ "type": "container", "name": "registry.example/app:1.4", "version": "sha256:0f3c" }}
  }},
  "components": [
    {{ "type": "operating-system", "name": "debian", "version": "12",
       "description": "Debian GNU/Linux 12 (bookworm)" }},
    {{ "type": "library", "name": "libssl3", "version": "3.0.19-1~deb12u2",
       "purl": "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12" }},
    {{ "type": "library", "name": "bash", "version": "5.2.15-2+b8",
       "purl": "pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&upstream=bash%405.2.15-2&distro=debian-12" }},
    {{ "type": "library", "name": "zlib1g", "version": "1:1.2.13.dfsg-1",
       "purl": "pkg:deb/debian/zlib1g@1.2.13.dfsg-1?arch=amd64&epoch=1&upstream=zlib&distro=debian-12" }},
    {{ "type": "library", "name": "tzdata", "version": "2025b-0+deb12u2",
       "purl": "pkg:deb/debian/tzdata@2025b-0%2Bdeb12u2?arch=all&distro=debian-12",
       "components": [
         {{ "type": "library", "name": "libc6", "version": "2.36-9+deb12u14",
            "purl": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&upstream=glibc&distro=debian-12" }}
       ] }},
    {{ "type": "library", "name": "left-pad", "version": "1.3.0", "purl": "pkg:npm/left-pad@1.3.0" }},
    {{ "type": "file", "name": "/etc/passwd" }},
    {{ "type": "library", "name": "broken", "purl": "deb/debian/broken@1" }}
  ]
}}"#
    )
}

fn deb(name: &str, version: &str, arch: &str, source: &str, source_version: &str) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: Some(arch.into()),
        source_name: Some(source.into()),
        source_version: Some(source_version.into()),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

#[test]
fn cyclonedx_1_4_to_1_6_from_a_debian_host() {
    for spec in ["1.4", "1.5", "1.6"] {
        let sbom = parse_sbom(debian_cyclonedx(spec).as_bytes()).unwrap();
        assert_eq!(sbom.format, SbomFormat::CycloneDx(spec.into()));
        assert_eq!(sbom.name.as_deref(), Some("registry.example/app:1.4"));
        assert_eq!(
            sbom.packages,
            [
                deb(
                    "libssl3",
                    "3.0.19-1~deb12u2",
                    "amd64",
                    "openssl",
                    "3.0.19-1~deb12u2"
                ),
                deb("bash", "5.2.15-2+b8", "amd64", "bash", "5.2.15-2"),
                deb(
                    "zlib1g",
                    "1:1.2.13.dfsg-1",
                    "amd64",
                    "zlib",
                    "1:1.2.13.dfsg-1"
                ),
                deb(
                    "tzdata",
                    "2025b-0+deb12u2",
                    "all",
                    "tzdata",
                    "2025b-0+deb12u2"
                ),
                deb(
                    "libc6",
                    "2.36-9+deb12u14",
                    "amd64",
                    "glibc",
                    "2.36-9+deb12u14"
                ),
            ]
        );
        let os = sbom.os.unwrap();
        assert_eq!(
            (
                os.id.as_str(),
                os.version_id.as_deref(),
                os.ecosystem.as_deref()
            ),
            ("debian", Some("12"), Some("Debian:12"))
        );
        assert_eq!(sbom.not_os_packages.get("npm"), Some(&1));
        assert_eq!(sbom.not_os_packages.get("none"), Some(&1));
        assert_eq!(sbom.problems.len(), 1);
        assert!(sbom.problems[0].contains("does not start with `pkg:`"));
    }
}

#[test]
fn cyclonedx_from_an_alpine_image_takes_the_os_from_the_distro_qualifier() {
    // The 15-package Alpine 3.18 image of `inventories/apk/scalibr-installed`, three of them.
    let doc = r#"{
      "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
      "components": [
        { "type": "library", "name": "musl", "version": "1.2.4-r0",
          "purl": "pkg:apk/alpine/musl@1.2.4-r0?arch=x86_64&upstream=musl&distro=alpine-3.18.4" },
        { "type": "library", "name": "libcrypto3", "version": "3.1.0-r4",
          "purl": "pkg:apk/alpine/libcrypto3@3.1.0-r4?arch=x86_64&upstream=openssl&distro=alpine-3.18.4" },
        { "type": "library", "name": "ssl_client", "version": "1.36.0-r9",
          "purl": "pkg:apk/alpine/ssl_client@1.36.0-r9?arch=x86_64&distro=alpine-3.18.4" }
      ]
    }"#;
    let sbom = parse_sbom(doc.as_bytes()).unwrap();
    let got: Vec<(&str, Option<&str>)> = sbom
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.source_name.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("musl", Some("musl")),
            ("libcrypto3", Some("openssl")),
            ("ssl_client", Some("ssl_client"))
        ]
    );
    assert!(sbom.packages.iter().all(|p| p.manager == Manager::Apk));
    let os = sbom.os.unwrap();
    assert_eq!(os.ecosystem.as_deref(), Some("Alpine:v3.18"));
    assert_eq!(os.version_id.as_deref(), Some("3.18.4"));
}

#[test]
fn rpm_purls_with_epoch_and_source_rpm() {
    let doc = r#"{
      "spdxVersion": "SPDX-2.3", "name": "alma9-host",
      "packages": [
        { "name": "openssl-libs", "externalRefs": [
          { "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
            "referenceLocator": "pkg:rpm/almalinux/openssl-libs@3.0.7-27.el9?arch=x86_64&epoch=1&upstream=openssl-3.0.7-27.el9.src.rpm&distro=almalinux-9.4" } ] },
        { "name": "bash", "externalRefs": [
          { "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
            "referenceLocator": "pkg:rpm/almalinux/bash@5.1.8-9.el9?arch=x86_64&upstream=bash-5.1.8-9.el9.src.rpm&distro=almalinux-9.4" } ] },
        { "name": "no-refs" }
      ]
    }"#;
    let sbom = parse_sbom(doc.as_bytes()).unwrap();
    let ssl = &sbom.packages[0];
    assert_eq!(ssl.epoch, Some(1));
    assert_eq!(ssl.version, "3.0.7-27.el9");
    assert_eq!(ssl.full_version(), "1:3.0.7-27.el9");
    assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
    assert_eq!(ssl.source_version.as_deref(), Some("3.0.7-27.el9"));
    assert_eq!(sbom.packages[1].epoch, None);
    assert_eq!(sbom.not_os_packages.get("none"), Some(&1));
    assert_eq!(
        sbom.os.and_then(|o| o.ecosystem).as_deref(),
        Some("AlmaLinux:9")
    );
}

#[test]
fn documents_we_do_not_read_are_clear_errors() {
    let cases: [(&str, &str); 6] = [
        ("", "not valid JSON"),
        ("[1, 2]", "not valid JSON"),
        (r#"{"hello": "world"}"#, "neither SPDX"),
        (
            r#"{"spdxVersion": "SPDX-3.0"}"#,
            "SPDX-3.0 is not supported",
        ),
        (
            r#"{"bomFormat": "CycloneDX", "specVersion": "1.2"}"#,
            "CycloneDX \"1.2\" is not supported",
        ),
        (
            r#"{"spdxVersion": "SPDX-2.3", "packages": 7}"#,
            "not valid JSON",
        ),
    ];
    for (doc, want) in cases {
        let err = parse_sbom(doc.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(want), "{doc:?}: {err}");
    }
    // Deep nesting is refused by serde's recursion limit, not by the stack.
    let deep = format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{}{}]}}"#,
        r#"{"type":"library","components":["#.repeat(10_000),
        "]}".repeat(10_000)
    );
    assert!(matches!(
        parse_sbom(deep.as_bytes()),
        Err(SbomParseError::Json(_))
    ));
}

#[test]
fn files_are_read_with_their_name_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_sbom(&dir.path().join("missing.json")).unwrap_err();
    assert!(err.to_string().contains("missing.json"), "{err}");
    let err = read_sbom(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is not a regular file"), "{err}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"\x00\x01garbage").unwrap();
    let err = read_sbom(&bad).unwrap_err();
    assert!(matches!(err, SbomError::Parse { .. }));
    assert!(
        err.to_string().starts_with(&bad.display().to_string()),
        "{err}"
    );
    assert_eq!(sbom::MAX_SBOM_BYTES, 256 * 1024 * 1024);
}
