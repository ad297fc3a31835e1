//! The Alpine security database (secdb JSON), into the OSV model.
//!
//! A secdb file is one release and repository (`v3.10`, `main`) listing, per package, the
//! versions that fixed which vulnerabilities:
//! `{"pkg": {"name": "ansible", "secfixes": {"2.8.4-r0": ["CVE-2019-10206", …]}}}`.
//! Package names are **origins** (source packages), as the matcher expects for Alpine.
//!
//! Each vulnerability becomes one advisory per file, with OSV's id form `ALPINE-<id>`, its own
//! id as alias, and one `affected` entry per package in ecosystem `Alpine:v3.X`: `introduced 0`,
//! `fixed <version>`. Entries as published need care:
//!
//! * one string may name several ids of the same issue (`"CVE-2016-9932 XSA-200"`): the first
//!   is the vulnerability, the rest aliases;
//! * ids other than CVEs occur (`XSA-207`) and are kept as they are;
//! * the fixed version `0` means the package was never vulnerable: a [`NotAffected`]
//!   statement, not a range;
//! * `packages` may be `null` (an empty repository) and `secfixes` absent.
//!
//! A fixed version that apk would not accept (the archive has typos such as `1.11-20-r0`), or
//! one that names no vulnerability, rejects that one (package, version) entry.

use std::collections::BTreeMap;

use patchwarden_core::advisory::{
    Advisory, Affected, FeedKind, Justification, NotAffected, PackageRef, Range, Scheme, Source,
};
use serde::Deserialize;

use crate::{Import, Reject, RejectReason};

#[derive(Deserialize)]
struct RawSecdb {
    distroversion: String,
    reponame: Option<String>,
    #[serde(default)]
    packages: Option<Vec<RawPackage>>,
}

#[derive(Deserialize)]
struct RawPackage {
    pkg: RawPkg,
}

#[derive(Deserialize)]
struct RawPkg {
    name: String,
    #[serde(default)]
    secfixes: Option<BTreeMap<String, Option<Vec<String>>>>,
}

/// Parses one secdb file.
pub fn parse(bytes: &[u8], location: &str) -> Result<Import<Advisory>, Reject> {
    let raw: RawSecdb = serde_json::from_slice(bytes)
        .map_err(|e| Reject::new(location, None, RejectReason::Json(e)))?;
    let release = raw.distroversion.trim();
    let ecosystem = format!(
        "Alpine:{}",
        if release.starts_with('v') {
            release.to_owned()
        } else {
            format!("v{release}")
        }
    );
    let scheme = Scheme::from_osv_ecosystem(&ecosystem).map_err(|e| {
        Reject::new(
            location,
            None,
            RejectReason::Invalid(format!("distroversion {release:?}: {e}")),
        )
    })?;
    let document = format!("{release}/{}", raw.reponame.as_deref().unwrap_or(""));
    let source = Source {
        feed: FeedKind::AlpineSecdb,
        location: location.into(),
        document: Some(document),
    };

    let mut import = Import::default();
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for package in raw.packages.unwrap_or_default() {
        let name = package.pkg.name;
        for (version, ids) in package.pkg.secfixes.unwrap_or_default() {
            let here = format!("{location}#{name}@{version}");
            let never_vulnerable = version.trim() == "0";
            if !never_vulnerable && let Err(e) = scheme.parse(&version) {
                import.rejects.push(Reject::new(
                    here,
                    None,
                    RejectReason::Invalid(format!(
                        "fixed version {version:?} is not a valid {scheme} version: {e}"
                    )),
                ));
                continue;
            }
            let ids = ids.unwrap_or_default();
            if ids.is_empty() {
                import.rejects.push(Reject::new(
                    here,
                    None,
                    RejectReason::Invalid(
                        "the fixed version names no vulnerability, so there is nothing to match"
                            .into(),
                    ),
                ));
                continue;
            }
            for entry in ids {
                let mut names = entry.split_whitespace();
                let Some(first) = names.next() else {
                    import.rejects.push(Reject::new(
                        here.clone(),
                        None,
                        RejectReason::Invalid("an empty vulnerability id".into()),
                    ));
                    continue;
                };
                let id = format!("ALPINE-{first}");
                let advisory = by_id.entry(id.clone()).or_insert_with(|| {
                    let mut a = Advisory::new(id, source.clone());
                    a.aliases.push(first.to_owned());
                    a
                });
                for alias in names {
                    if !advisory.aliases.iter().any(|a| a == alias) {
                        advisory.aliases.push(alias.to_owned());
                    }
                }
                let package = PackageRef::new(ecosystem.clone(), name.clone());
                if never_vulnerable {
                    advisory.not_affected.push(NotAffected {
                        package,
                        version: None,
                        justification: Some(Justification::NeverVulnerable),
                        statement: Some("secfixes lists the fix as version 0".into()),
                    });
                } else {
                    let mut affected = Affected::new(package);
                    affected
                        .ranges
                        .push(Range::ecosystem("0", Some(version.clone())));
                    advisory.affected.push(affected);
                }
            }
        }
    }
    import.records = by_id.into_values().collect();
    Ok(import)
}
