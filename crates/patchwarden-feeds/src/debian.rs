//! The Debian security tracker's JSON (`security-tracker.debian.org/tracker/data/json`), into
//! the OSV model.
//!
//! The document maps **source** package → vulnerability id → per-release state:
//! `{"openssl": {"CVE-2023-5678": {"description": …, "releases": {"bookworm": {"status":
//! "resolved", "fixed_version": "3.0.13-1~deb12u1", "urgency": "low", …}}}}}`.
//!
//! Each vulnerability becomes one advisory `DEBIAN-<id>` (the id as alias), with one entry per
//! (source package, release) in ecosystem `Debian:<number>` (`bookworm` → `Debian:12`; `sid`
//! → `Debian:unstable`, which no OSV record uses but a host on unstable can):
//!
//! * `resolved` at a real version → `introduced 0`, `fixed <version>`;
//! * `resolved` at version `0` → the tracker's "not affected": the release never shipped a
//!   vulnerable version, a [`NotAffected`] statement;
//! * `open` and `undetermined` → `introduced 0` with no fix: every version is affected. The
//!   status is kept in `ecosystem_specific.status` so a policy can treat `undetermined`
//!   differently.
//!
//! The urgency (`high**`, `unimportant`, `not yet assigned` …) is the entry's
//! [`VendorSeverity`]; `nodsa` and its reason are kept in `ecosystem_specific`.
//!
//! Records are parsed one at a time from the raw document, so one malformed record (the
//! tracker has published `"releases": []` for a withdrawn entry) is rejected alone.

use std::collections::{BTreeMap, HashMap};

use patchwarden_core::advisory::{
    Advisory, Affected, Event, FeedKind, Justification, NotAffected, PackageRef, Range, RangeKind,
    Scheme, Source, VendorSeverity,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::{Import, Reject, RejectReason};

/// Debian's release code names and their OSV ecosystem version.
const RELEASES: &[(&str, &str)] = &[
    ("buzz", "1.1"),
    ("rex", "1.2"),
    ("bo", "1.3"),
    ("hamm", "2.0"),
    ("slink", "2.1"),
    ("potato", "2.2"),
    ("woody", "3.0"),
    ("sarge", "3.1"),
    ("etch", "4"),
    ("lenny", "5"),
    ("squeeze", "6"),
    ("wheezy", "7"),
    ("jessie", "8"),
    ("stretch", "9"),
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
    ("duke", "15"),
    ("sid", "unstable"),
];

/// The OSV ecosystem of a Debian release code name.
pub fn ecosystem_of(codename: &str) -> Option<String> {
    RELEASES
        .iter()
        .find(|(name, _)| *name == codename)
        .map(|(_, version)| format!("Debian:{version}"))
}

#[derive(Deserialize)]
struct RawRecord {
    description: Option<String>,
    scope: Option<String>,
    debianbug: Option<Value>,
    releases: Value,
}

#[derive(Deserialize)]
struct RawRelease {
    status: String,
    fixed_version: Option<String>,
    urgency: Option<String>,
    nodsa: Option<String>,
    nodsa_reason: Option<String>,
}

/// Parses the tracker's JSON document.
pub fn parse(bytes: &[u8], location: &str) -> Result<Import<Advisory>, Reject> {
    let doc: HashMap<String, HashMap<String, Box<RawValue>>> = serde_json::from_slice(bytes)
        .map_err(|e| Reject::new(location, None, RejectReason::Json(e)))?;
    let mut import = Import::default();
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    let mut packages: Vec<_> = doc.into_iter().collect();
    packages.sort_by(|a, b| a.0.cmp(&b.0));
    for (package, records) in packages {
        let mut records: Vec<_> = records.into_iter().collect();
        records.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, raw) in records {
            let here = format!("{location}#{package}/{id}");
            let parsed = serde_json::from_str::<RawRecord>(raw.get())
                .map_err(RejectReason::Json)
                .and_then(|r| record(&package, r, &mut import.rejects, &here));
            let (entries, statements, record) = match parsed {
                Ok(x) => x,
                Err(reason) => {
                    import.rejects.push(Reject::new(here, Some(id), reason));
                    continue;
                }
            };
            let advisory = by_id.entry(format!("DEBIAN-{id}")).or_insert_with(|| {
                let mut a = Advisory::new(
                    format!("DEBIAN-{id}"),
                    Source {
                        feed: FeedKind::DebianTracker,
                        location: location.into(),
                        document: None,
                    },
                );
                a.aliases.push(id.clone());
                a
            });
            if advisory.details.is_none() {
                advisory.details = record.description;
            }
            if advisory.database_specific.is_none()
                && (record.scope.is_some() || record.debianbug.is_some())
            {
                advisory.database_specific =
                    Some(json!({ "scope": record.scope, "debianbug": record.debianbug }));
            }
            advisory.affected.extend(entries);
            advisory.not_affected.extend(statements);
        }
    }
    import.records = by_id.into_values().collect();
    Ok(import)
}

struct RecordText {
    description: Option<String>,
    scope: Option<String>,
    debianbug: Option<Value>,
}

type Converted = (Vec<Affected>, Vec<NotAffected>, RecordText);

fn record(
    package: &str,
    raw: RawRecord,
    rejects: &mut Vec<Reject>,
    here: &str,
) -> Result<Converted, RejectReason> {
    let releases: BTreeMap<String, RawRelease> = match raw.releases {
        Value::Object(map) => {
            let mut out = BTreeMap::new();
            for (name, value) in map {
                let release = serde_json::from_value::<RawRelease>(value)
                    .map_err(|e| RejectReason::Invalid(format!("release {name:?}: {e}")))?;
                out.insert(name, release);
            }
            out
        }
        Value::Array(list) if list.is_empty() => BTreeMap::new(),
        other => {
            return Err(RejectReason::Invalid(format!(
                "`releases` must be an object of releases, found {}",
                kind_of(&other)
            )));
        }
    };
    let mut affected = Vec::new();
    let mut not_affected = Vec::new();
    for (codename, rel) in releases {
        let Some(ecosystem) = ecosystem_of(&codename) else {
            rejects.push(Reject::new(
                format!("{here}/{codename}"),
                None,
                RejectReason::Invalid(format!("unknown Debian release code name {codename:?}")),
            ));
            continue;
        };
        let package_ref = PackageRef::new(ecosystem, package);
        let fixed = rel.fixed_version.as_deref().map(str::trim);
        let mut specific = serde_json::Map::new();
        specific.insert("status".into(), json!(rel.status));
        if let Some(u) = &rel.urgency {
            specific.insert("urgency".into(), json!(u));
        }
        if let Some(n) = &rel.nodsa {
            specific.insert("nodsa".into(), json!(n));
        }
        if let Some(n) = &rel.nodsa_reason {
            specific.insert("nodsa_reason".into(), json!(n));
        }
        match (rel.status.as_str(), fixed) {
            ("resolved", Some("0")) | ("not-affected", _) => not_affected.push(NotAffected {
                package: package_ref,
                version: None,
                justification: Some(Justification::NeverVulnerable),
                statement: Some(format!(
                    "not affected in {codename} (Debian security tracker)"
                )),
            }),
            ("resolved", Some(version)) => {
                if let Err(e) = Scheme::Dpkg.parse(version) {
                    rejects.push(Reject::new(
                        format!("{here}/{codename}"),
                        None,
                        RejectReason::Invalid(format!(
                            "fixed_version {version:?} is not a valid dpkg version: {e}"
                        )),
                    ));
                    continue;
                }
                let mut a = Affected::new(package_ref);
                a.ranges
                    .push(Range::ecosystem("0", Some(version.to_owned())));
                a.vendor_severity = rel.urgency.as_deref().map(VendorSeverity::debian);
                a.ecosystem_specific = Some(Value::Object(specific));
                affected.push(a);
            }
            ("open" | "undetermined", _) => {
                let mut a = Affected::new(package_ref);
                a.ranges.push(Range {
                    kind: RangeKind::Ecosystem,
                    repo: None,
                    events: vec![Event::Introduced("0".into())],
                });
                a.vendor_severity = rel.urgency.as_deref().map(VendorSeverity::debian);
                a.ecosystem_specific = Some(Value::Object(specific));
                affected.push(a);
            }
            (status, _) => rejects.push(Reject::new(
                format!("{here}/{codename}"),
                None,
                RejectReason::Invalid(format!(
                    "status {status:?} with fixed_version {fixed:?} is not one the tracker uses"
                )),
            )),
        }
    }
    Ok((
        affected,
        not_affected,
        RecordText {
            description: raw.description,
            scope: raw.scope,
            debianbug: raw.debianbug,
        },
    ))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a non-empty array",
        Value::Object(_) => "an object",
    }
}
