//! OSV records: one JSON file, a directory of them, or OSV's `all.zip` archives.
//!
//! OSV is already our model, so this parser is mostly a gatekeeper: it reads the record into
//! typed structures and refuses what a matcher could not use exactly —
//!
//! * an `affected` entry that names no package and has no `GIT` range;
//! * a range with no `introduced` event (the OSV linter's `nointroduced-…` case), with both
//!   `fixed` and `last_affected`, with an event that is not exactly one of `introduced`,
//!   `fixed`, `last_affected`, `limit`, or whose events are not distinct (`nondistinct-…`:
//!   introduced and fixed at the same commit, an empty range);
//! * an `ECOSYSTEM` or `SEMVER` event version that does not parse under the ecosystem's
//!   version scheme (`AlmaLinux:9` orders as rpm, `Debian:12` as dpkg …). Ecosystems whose
//!   ordering we do not know are kept unvalidated; the matcher cannot use them either.
//!
//! The vendor's own rating is lifted out of the record where it has one: Red Hat-style
//! `database_specific.severity`, the `Ubuntu` severity type, and the impact word that
//! AlmaLinux and Red Hat put at the front of the summary (`Important: kernel security update`).
//!
//! A CVE JSON 5 record met where OSV records are expected (osv.dev's test data mixes them) is
//! handed to [`crate::cve5`]; see that module for what such a record is to us.
//!
//! What the linter's `nopackage-…` case checks — that the package exists in its registry —
//! needs the registry and is not a parser's business: such a record is accepted here.

use std::io::{Read, Seek};

use patchwarden_core::advisory::{
    Advisory, Affected, CvssVersion, Event, FeedKind, PackageRef, Range, RangeKind, Reference,
    Scheme, Severity, SeverityKind, Source, VendorSeverity,
};
use serde::Deserialize;
use serde_json::Value;

use crate::read::for_each_zip_member;
use crate::{FeedError, Import, Limits, Reject, RejectReason, cve5, time};

/// Parses one OSV record (or a CVE JSON 5 record, see [`crate::cve5`]).
pub fn parse(bytes: &[u8], location: &str) -> Result<Advisory, Reject> {
    let raw: RawOsv = match serde_json::from_slice(bytes) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(Reject::new(location, peek_id(bytes), json_reason(bytes, e)));
        }
    };
    if raw.data_type.as_deref() == Some("CVE_RECORD") {
        return cve5::parse(bytes, location);
    }
    let id = raw.id.clone();
    convert(raw, location).map_err(|reason| Reject::new(location, id, reason))
}

/// Parses every `.json` member of an OSV `all.zip` archive, one member at a time.
pub fn parse_zip<R: Read + Seek>(
    reader: R,
    location: &str,
    limits: &Limits,
) -> Result<Import<Advisory>, FeedError> {
    let mut import = Import::default();
    let rejects = for_each_zip_member(reader, location, limits, |member, name, bytes| {
        if !name.ends_with(".json") {
            return;
        }
        match parse(&bytes, member) {
            Ok(a) => import.records.push(a),
            Err(r) => import.rejects.push(r),
        }
    })?;
    import.rejects.extend(rejects);
    Ok(import)
}

/// Says why bytes that failed to parse are not an OSV record, in the terms a person would use.
fn json_reason(bytes: &[u8], e: serde_json::Error) -> RejectReason {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return RejectReason::NotThisFeed(
            "not an OSV record: the document is a JSON array, an OSV record is an object".into(),
        );
    }
    RejectReason::Json(e)
}

/// The `id` of a document that failed to parse as a whole, when it has a readable one.
pub(crate) fn peek_id(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    serde_json::from_slice::<IdOnly>(bytes)
        .ok()
        .and_then(|d| d.id)
        .and_then(|v| v.as_str().map(String::from))
}

#[derive(Deserialize)]
struct RawOsv {
    id: Option<String>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    related: Option<Vec<String>>,
    #[serde(default)]
    upstream: Option<Vec<String>>,
    published: Option<String>,
    modified: Option<String>,
    withdrawn: Option<String>,
    summary: Option<String>,
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
    #[serde(default)]
    affected: Option<Vec<RawAffected>>,
    #[serde(default)]
    references: Option<Vec<RawReference>>,
    database_specific: Option<Value>,
    #[serde(rename = "dataType")]
    data_type: Option<String>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
    #[serde(default)]
    ranges: Option<Vec<RawRange>>,
    #[serde(default)]
    versions: Option<Vec<String>>,
    ecosystem_specific: Option<Value>,
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: Option<String>,
    name: Option<String>,
    purl: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: Option<String>,
    repo: Option<String>,
    #[serde(default)]
    events: Option<Vec<RawEvent>>,
}

#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

#[derive(Deserialize)]
struct RawReference {
    #[serde(rename = "type")]
    kind: Option<String>,
    url: Option<String>,
}

fn invalid(msg: String) -> RejectReason {
    RejectReason::Invalid(msg)
}

fn convert(raw: RawOsv, location: &str) -> Result<Advisory, RejectReason> {
    let id = match raw.id {
        Some(id) if !id.trim().is_empty() => id,
        _ => return Err(invalid("the record has no id".into())),
    };
    let timestamp = |field: &str, v: Option<String>| {
        v.map(|s| time::strict(&s).map_err(|e| invalid(format!("`{field}`: {e}"))))
            .transpose()
    };
    let mut a = Advisory::new(
        id,
        Source {
            feed: FeedKind::Osv,
            location: location.into(),
            document: None,
        },
    );
    a.published = timestamp("published", raw.published)?;
    a.modified = timestamp("modified", raw.modified)?;
    a.withdrawn = timestamp("withdrawn", raw.withdrawn)?;
    a.aliases = raw.aliases.unwrap_or_default();
    a.related = raw.related.unwrap_or_default();
    a.upstream = raw.upstream.unwrap_or_default();
    a.summary = raw.summary;
    a.details = raw.details;
    a.severity = raw
        .severity
        .unwrap_or_default()
        .iter()
        .map(severity)
        .collect();
    a.references = raw
        .references
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| {
            Some(Reference {
                kind: r.kind.unwrap_or_default(),
                url: r.url?,
            })
        })
        .collect();
    for (i, raw_affected) in raw.affected.unwrap_or_default().into_iter().enumerate() {
        a.affected.push(affected(i, raw_affected)?);
    }
    a.vendor_severity = vendor_severity(&a, raw.database_specific.as_ref());
    a.database_specific = raw.database_specific;
    Ok(a)
}

/// One OSV severity entry, scored.
fn severity(s: &RawSeverity) -> Severity {
    match s.kind.as_str() {
        "CVSS_V2" => Severity::cvss(&s.score, Some(CvssVersion::V2)),
        "CVSS_V3" => Severity::cvss(&s.score, Some(CvssVersion::V3_1)),
        "CVSS_V4" => Severity::cvss(&s.score, Some(CvssVersion::V4)),
        "Ubuntu" => Severity::ubuntu(&s.score),
        other => Severity {
            kind: SeverityKind::Other(other.into()),
            vector: s.score.clone(),
            base_score: None,
            level: None,
            error: None,
        },
    }
}

fn affected(i: usize, raw: RawAffected) -> Result<Affected, RejectReason> {
    let package = match raw.package {
        Some(p) => {
            let ecosystem = p.ecosystem.unwrap_or_default();
            let name = p.name.unwrap_or_default();
            if ecosystem.trim().is_empty() || name.trim().is_empty() {
                return Err(invalid(format!(
                    "affected[{i}]: the package needs both an ecosystem and a name \
                     (ecosystem {ecosystem:?}, name {name:?})"
                )));
            }
            Some(PackageRef {
                ecosystem,
                name,
                purl: p.purl,
            })
        }
        None => None,
    };
    let what = match &package {
        Some(p) => format!("affected[{i}] ({} {})", p.ecosystem, p.name),
        None => format!("affected[{i}]"),
    };
    let scheme = package
        .as_ref()
        .and_then(|p| Scheme::from_osv_ecosystem(&p.ecosystem).ok());
    let mut ranges = Vec::new();
    for (j, r) in raw.ranges.unwrap_or_default().into_iter().enumerate() {
        ranges.push(range(&format!("{what} range {j}"), r, scheme)?);
    }
    if package.is_none() && !ranges.iter().any(|r| r.kind == RangeKind::Git) {
        return Err(invalid(format!(
            "{what} names no package and has no GIT range"
        )));
    }
    Ok(Affected {
        package,
        ranges,
        versions: raw.versions.unwrap_or_default(),
        severity: raw
            .severity
            .unwrap_or_default()
            .iter()
            .map(severity)
            .collect(),
        vendor_severity: None,
        remediations: Vec::new(),
        ecosystem_specific: raw.ecosystem_specific,
        database_specific: raw.database_specific,
    })
}

fn range(what: &str, raw: RawRange, scheme: Option<Scheme>) -> Result<Range, RejectReason> {
    let kind = match raw.kind.as_deref() {
        Some("ECOSYSTEM") => RangeKind::Ecosystem,
        Some("SEMVER") => RangeKind::Semver,
        Some("GIT") => RangeKind::Git,
        Some(other) => {
            return Err(invalid(format!(
                "{what}: unknown range type {other:?} (OSV knows ECOSYSTEM, SEMVER, GIT)"
            )));
        }
        None => return Err(invalid(format!("{what}: the range has no type"))),
    };
    if kind == RangeKind::Git && raw.repo.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(invalid(format!("{what}: a GIT range needs a repo")));
    }
    let mut events = Vec::new();
    for (k, e) in raw.events.unwrap_or_default().into_iter().enumerate() {
        let set: Vec<Event> = [
            e.introduced.map(Event::Introduced),
            e.fixed.map(Event::Fixed),
            e.last_affected.map(Event::LastAffected),
            e.limit.map(Event::Limit),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut set = set.into_iter();
        match (set.next(), set.next()) {
            (Some(event), None) => events.push(event),
            _ => {
                return Err(invalid(format!(
                    "{what}: event {k} must be exactly one of introduced, fixed, \
                     last_affected, limit"
                )));
            }
        }
    }
    if events.is_empty() {
        return Err(invalid(format!("{what}: the range has no events")));
    }
    if !events.iter().any(|e| matches!(e, Event::Introduced(_))) {
        return Err(invalid(format!(
            "{what}: the range has no introduced event"
        )));
    }
    let has_fixed = events.iter().any(|e| matches!(e, Event::Fixed(_)));
    let has_last = events.iter().any(|e| matches!(e, Event::LastAffected(_)));
    if has_fixed && has_last {
        return Err(invalid(format!(
            "{what}: the range has both fixed and last_affected events"
        )));
    }
    for (k, e) in events.iter().enumerate() {
        if let Some(dup) = events.get(k + 1..).and_then(|rest| {
            rest.iter()
                .find(|other| other.version() == e.version() && e.version() != "0")
        }) {
            return Err(invalid(format!(
                "{what}: the events are not distinct: {:?} appears in {e:?} and {dup:?}",
                e.version()
            )));
        }
    }
    let check = match kind {
        RangeKind::Ecosystem => scheme,
        RangeKind::Semver => Some(Scheme::Semver),
        RangeKind::Git => None,
    };
    if let Some(scheme) = check {
        for e in &events {
            let v = e.version();
            let open = matches!(e, Event::Introduced(_)) && v == "0"
                || matches!(e, Event::Limit(_)) && v == "*";
            if !open && let Err(err) = scheme.parse(v) {
                return Err(invalid(format!(
                    "{what}: {v:?} is not a valid {scheme} version: {err}"
                )));
            }
        }
    }
    Ok(Range {
        kind,
        repo: raw.repo,
        events,
    })
}

/// The vendor's own rating, where the record carries one.
fn vendor_severity(a: &Advisory, database_specific: Option<&Value>) -> Option<VendorSeverity> {
    let ecosystem_base = a
        .affected
        .iter()
        .find_map(|x| x.package.as_ref())
        .map(|p| p.ecosystem.split(':').next().unwrap_or("").to_owned());
    // GitHub rates its GHSA records itself (`database_specific.severity: "MODERATE"`); other
    // records carry their distribution's rating.
    let vendor = if a.id.starts_with("GHSA-") {
        "GitHub".to_owned()
    } else {
        ecosystem_base.clone().unwrap_or_else(|| "unknown".into())
    };
    if let Some(text) = database_specific
        .and_then(|d| d.get("severity"))
        .and_then(Value::as_str)
    {
        return Some(VendorSeverity::red_hat(&vendor, text));
    }
    if let Some(s) = a.severity.iter().find(|s| s.kind == SeverityKind::Ubuntu) {
        return Some(VendorSeverity::ubuntu(&s.vector));
    }
    // AlmaLinux, Rocky and Red Hat title their advisories "Important: …".
    let rpm = a.affected.iter().any(|x| x.scheme() == Some(Scheme::Rpm));
    let word = a.summary.as_deref()?.split_once(": ")?.0;
    (rpm && matches!(word, "Critical" | "Important" | "Moderate" | "Low"))
        .then(|| VendorSeverity::red_hat(&vendor, word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(json: &str) -> String {
        match parse(json.as_bytes(), "t.json") {
            Ok(a) => format!("accepted {}", a.id),
            Err(r) => r.to_string(),
        }
    }

    #[test]
    fn malformed_records_say_why() {
        expect_test::expect![[r#"
            t.json: the record has no id
            t.json: is not valid JSON for this feed: invalid type: integer `5`, expected a string at line 1 column 7
            t.json: not an OSV record: the document is a JSON array, an OSV record is an object
            t.json (X-1): `modified`: "yesterday" is not an RFC 3339 timestamp: failed to parse four digit integer as year: invalid digit, expected 0-9 but got y
            t.json (X-1): affected[0]: the package needs both an ecosystem and a name (ecosystem "PyPI", name "")
            t.json (X-1): affected[0] (AlmaLinux:9 x) range 0: "1.0 beta-1" is not a valid rpm version: invalid rpm version "1.0 beta-1": version string has embedded spaces
            t.json (X-1): affected[0] (PyPI x) range 0: event 0 must be exactly one of introduced, fixed, last_affected, limit
            t.json (X-1): affected[0] (PyPI x) range 0: the range has both fixed and last_affected events
            t.json (X-1): affected[0] (PyPI x) range 0: unknown range type "SEMVERISH" (OSV knows ECOSYSTEM, SEMVER, GIT)
            t.json (X-1): affected[0] range 0: a GIT range needs a repo
            t.json (X-1): affected[0] names no package and has no GIT range
        "#]]
        .assert_eq(
            &[
                r#"{"modified":"2024-01-01T00:00:00Z"}"#,
                r#"{"id":5}"#,
                r#"[{"id":"X-1"}]"#,
                r#"{"id":"X-1","modified":"yesterday"}"#,
                r#"{"id":"X-1","affected":[{"package":{"ecosystem":"PyPI","name":""}}]}"#,
                r#"{"id":"X-1","affected":[{"package":{"ecosystem":"AlmaLinux:9","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0 beta-1"}]}]}]}"#,
                r#"{"id":"X-1","affected":[{"package":{"ecosystem":"PyPI","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0","fixed":"1"}]}]}]}"#,
                r#"{"id":"X-1","affected":[{"package":{"ecosystem":"PyPI","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1"},{"last_affected":"2"}]}]}]}"#,
                r#"{"id":"X-1","affected":[{"package":{"ecosystem":"PyPI","name":"x"},"ranges":[{"type":"SEMVERISH","events":[{"introduced":"0"}]}]}]}"#,
                r#"{"id":"X-1","affected":[{"ranges":[{"type":"GIT","events":[{"introduced":"0"}]}]}]}"#,
                r#"{"id":"X-1","affected":[{"versions":["1"]}]}"#,
            ]
            .map(reject)
            .join("\n")
            .lines()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
        );
    }

    #[test]
    fn introduced_zero_and_limit_star_are_open_ends() {
        let a = parse(
            br#"{"id":"X-2","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
                "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]}]}"#,
            "t.json",
        );
        assert!(a.is_ok(), "{a:?}");
    }
}
