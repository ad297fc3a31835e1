//! CSAF 2.0 documents (security advisories and VEX), into the OSV model.
//!
//! One document becomes one [`Advisory`] with the document's `tracking.id` as id (as OSV's own
//! Red Hat converter does: `RHSA-2024:4546` with its CVEs as `upstream`), published at
//! `initial_release_date` — the moment the fix became available, which starts SLA clocks.
//! A VEX document (`CVE-2024-2961`) is first released when the CVE is, not when each fix
//! ships; its `fixed` entries point at the fixing RHSAs in their `vendor_fix` remediations,
//! and the RHSA itself, grouped with the CVE, carries the fix's release time.
//!
//! **Product tree → packages.** A product status names product ids such as
//! `AppStream-8.6.0.Z.AUS:git-lfs-0:2.13.3-3.el8_6.1.x86_64`: a relationship putting a
//! component (a branch product with an rpm purl) into a platform (a branch product with a
//! CPE), possibly through a module (`…:python39:3.9:…:PyYAML-…`, a relationship into a
//! relationship). [`product`] follows that chain to
//!
//! * the ecosystem, from the platform's CPE in OSV's spelling:
//!   `cpe:/a:redhat:rhel_aus:8.6::appstream` → `Red Hat:rhel_aus:8.6::appstream`;
//! * the package name, from the component's purl (`pkg:rpm/redhat/git-lfs@…`);
//! * the version as Red Hat writes it in the product name, epoch included
//!   (`0:2.13.3-3.el8_6.1`), else from the purl's version and `epoch` qualifier;
//! * the rpm module, when the component sits inside one (`ecosystem_specific.rpm_module`).
//!
//! Products that do not resolve to an rpm package on a CPE-named platform (container images,
//! the fictitious products of the OASIS examples) cannot be matched against a host's
//! packages; they are counted in `database_specific.unmapped_products`.
//!
//! **Statuses.** `fixed`/`first_fixed` → a range `introduced 0`, `fixed <version>`;
//! `known_affected`/`first_affected`/`last_affected` → `introduced 0` with no fix (every
//! version affected), with the remediations that apply (`no_fix_planned`, `workaround` …);
//! `known_not_affected` → a [`NotAffected`] statement with the VEX justification flag and the
//! impact statement; `under_investigation` says nothing yet and is not mapped. Entries keep,
//! in `database_specific.cves`, which of the document's vulnerabilities they are about, since
//! one document may fix a package for one CVE and leave it affected by another.
//!
//! **Validation** ([`validate`]): the checks of CSAF's mandatory tests (§6.1) that protect
//! what we read — every referenced product and group id defined (6.1.1, 6.1.4) and defined
//! once (6.1.2, 6.1.5), no circular relationship (6.1.3), no product in contradicting
//! statuses (6.1.6), one score per CVSS version per product (6.1.7), stated base scores that
//! match their vectors (6.1.9), each CVE once (6.1.23), remediations and flags that name
//! products (6.1.29, 6.1.32), one VEX justification per product (6.1.33), the profile rules of
//! security advisories and VEX (6.1.27.x), purls that are purls (6.1.13), and the fields the
//! schema requires. Checks about revision histories, languages and translations do not
//! change what a matcher sees and are not made; `tests/csaf.rs` lists which of the OASIS
//! failing examples are still accepted because of that.

mod product;
mod raw;
mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use patchwarden_core::advisory::{
    Advisory, Affected, Event, FeedKind, Justification, NotAffected, PackageRef, Range, RangeKind,
    Reference, Remediation, RemediationCategory, Severity, Source, VendorSeverity, is_cve,
};
use serde_json::{Value, json};

pub use product::ecosystem_of_cpe;
use product::{Resolved, product};
use raw::RawCsaf;
use validate::{expand, invalid, tree, validate};

use crate::{Reject, RejectReason, time};

/// Parses and validates one CSAF document.
pub fn parse(bytes: &[u8], location: &str) -> Result<Advisory, Reject> {
    let raw: RawCsaf = serde_json::from_slice(bytes)
        .map_err(|e| Reject::new(location, peek_tracking_id(bytes), RejectReason::Json(e)))?;
    let id = raw.document.tracking.id.clone();
    validate(&raw)
        .and_then(|()| convert(&raw, location))
        .map_err(|reason| Reject::new(location, Some(id), reason))
}

fn peek_tracking_id(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("document")?
        .get("tracking")?
        .get("id")?
        .as_str()
        .map(String::from)
}

/// Which status an affected entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Fixed,
    Affected,
}

fn convert(raw: &RawCsaf, location: &str) -> Result<Advisory, RejectReason> {
    let doc = &raw.document;
    let t = tree(raw)?;
    let mut a = Advisory::new(
        doc.tracking.id.clone(),
        Source {
            feed: FeedKind::Csaf,
            location: location.into(),
            document: Some(doc.tracking.id.clone()),
        },
    );
    a.published =
        Some(time::strict(&doc.tracking.initial_release_date).map_err(|e| invalid("schema", e))?);
    a.modified =
        Some(time::strict(&doc.tracking.current_release_date).map_err(|e| invalid("schema", e))?);
    a.summary = Some(doc.title.clone());
    a.details = doc
        .notes
        .iter()
        .flatten()
        .find(|n| n.category == "general" || n.title.as_deref() == Some("Details"))
        .or_else(|| doc.notes.iter().flatten().find(|n| n.category == "summary"))
        .map(|n| n.text.clone());
    a.vendor_severity = doc
        .aggregate_severity
        .as_ref()
        .map(|s| VendorSeverity::red_hat(&doc.publisher.name, &s.text));
    a.references = doc
        .references
        .iter()
        .flatten()
        .map(|r| Reference {
            kind: r.category.clone().unwrap_or_default(),
            url: r.url.clone(),
        })
        .collect();

    let vulns = raw.vulnerabilities.as_deref().unwrap_or(&[]);
    let mut entries: BTreeMap<(Resolved, Status), (Vec<Remediation>, BTreeSet<String>)> =
        BTreeMap::new();
    let mut unmapped: BTreeSet<&str> = BTreeSet::new();
    for (i, v) in vulns.iter().enumerate() {
        let vid = v
            .cve
            .clone()
            .unwrap_or_else(|| format!("vulnerabilities[{i}]"));
        if let Some(cve) = &v.cve
            && cve != &a.id
            && !a.upstream.contains(cve)
        {
            a.upstream.push(cve.clone());
        }
        for (_, _, cvss) in v.cvss() {
            if let Some(vector) = &cvss.vector_string
                && a.severity.iter().all(|s| &s.vector != vector)
            {
                a.severity.push(Severity::cvss(vector, None));
            }
        }
        let Some(ps) = &v.product_status else {
            continue;
        };
        // Index remediations, justifications and impact statements by product once: Red Hat
        // VEX documents name tens of thousands of products per vulnerability.
        let remediations: Vec<Remediation> = v
            .remediations
            .iter()
            .flatten()
            .map(|r| Remediation {
                category: RemediationCategory::from_csaf(&r.category),
                details: r.details.clone(),
                url: r.url.clone(),
            })
            .collect();
        let mut remediations_by_product: HashMap<String, Vec<usize>> = HashMap::new();
        for (k, r) in v.remediations.iter().flatten().enumerate() {
            for id in expand(&t, r.product_ids.as_deref(), r.group_ids.as_deref()) {
                remediations_by_product.entry(id).or_default().push(k);
            }
        }
        let mut justification: HashMap<String, Justification> = HashMap::new();
        for f in v.flags.iter().flatten() {
            if let Some(j) = Justification::from_csaf_label(&f.label) {
                for id in expand(&t, f.product_ids.as_deref(), f.group_ids.as_deref()) {
                    justification.entry(id).or_insert(j);
                }
            }
        }
        let mut impact: HashMap<String, &str> = HashMap::new();
        for th in v
            .threats
            .iter()
            .flatten()
            .filter(|th| th.category == "impact")
        {
            for id in expand(&t, th.product_ids.as_deref(), th.group_ids.as_deref()) {
                impact.entry(id).or_insert(&th.details);
            }
        }
        for (status, ids) in ps.lists() {
            let kind = match status {
                "fixed" | "first_fixed" => Status::Fixed,
                "known_affected" | "first_affected" | "last_affected" => Status::Affected,
                "known_not_affected" => {
                    for id in ids {
                        let Some(r) = product(&t, id) else {
                            unmapped.insert(id);
                            continue;
                        };
                        a.not_affected.push(NotAffected {
                            package: PackageRef {
                                ecosystem: r.ecosystem,
                                name: r.name,
                                purl: Some(r.purl),
                            },
                            version: r.version,
                            justification: justification.get(id.as_str()).copied(),
                            statement: impact.get(id.as_str()).map(|s| format!("{vid}: {s}")),
                        });
                    }
                    continue;
                }
                _ => continue,
            };
            for id in ids {
                let Some(r) = product(&t, id) else {
                    unmapped.insert(id);
                    continue;
                };
                if kind == Status::Fixed && r.version.is_none() {
                    unmapped.insert(id);
                    continue;
                }
                let entry = entries.entry((r, kind)).or_default();
                for &k in remediations_by_product
                    .get(id.as_str())
                    .into_iter()
                    .flatten()
                {
                    if let Some(rem) = remediations.get(k)
                        && !entry.0.contains(rem)
                    {
                        entry.0.push(rem.clone());
                    }
                }
                entry.1.insert(vid.clone());
            }
        }
    }
    for ((r, status), (remediations, cves)) in entries {
        let mut affected = Affected::new(PackageRef {
            ecosystem: r.ecosystem,
            name: r.name,
            purl: Some(r.purl),
        });
        affected.ranges.push(match (status, r.version) {
            (Status::Fixed, Some(v)) => Range::ecosystem("0", Some(v)),
            _ => Range {
                kind: RangeKind::Ecosystem,
                repo: None,
                events: vec![Event::Introduced("0".into())],
            },
        });
        affected.remediations = remediations;
        let mut specific = serde_json::Map::new();
        if let Some(m) = r.module {
            specific.insert("rpm_module".into(), json!(m));
        }
        if status == Status::Affected {
            specific.insert("status".into(), json!("known_affected"));
        }
        if !specific.is_empty() {
            affected.ecosystem_specific = Some(Value::Object(specific));
        }
        affected.database_specific = Some(json!({ "cves": cves }));
        a.affected.push(affected);
    }
    a.not_affected.sort_by(|x, y| x.package.cmp(&y.package));
    a.not_affected.dedup();
    if !unmapped.is_empty() {
        a.database_specific = Some(json!({ "unmapped_products": unmapped.len() }));
    }
    if is_cve(&a.id) {
        a.upstream.retain(|u| u != &a.id);
    }
    Ok(a)
}
