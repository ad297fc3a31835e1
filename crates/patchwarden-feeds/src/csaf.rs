//! CSAF 2.0 documents (security advisories and VEX), into the OSV model.
//!
//! One document becomes one [`Advisory`] with the document's `tracking.id` as id (as OSV's own
//! Red Hat converter does: `RHSA-2024:4546` with its CVEs as `upstream`), published at
//! `initial_release_date` — the moment the fix became available, which starts SLA clocks.
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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use patchwarden_core::advisory::{
    Advisory, Affected, Event, FeedKind, Justification, NotAffected, PackageRef, Range, RangeKind,
    Reference, Remediation, RemediationCategory, Severity, Source, VendorSeverity, is_cve,
    vector_score,
};
use serde::Deserialize;
use serde_json::{Value, json};

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

// ---------------------------------------------------------------------------------------------
// The document as published. Required fields are required here, so serde names what is
// missing; everything we do not use is left out.

#[derive(Deserialize)]
struct RawCsaf {
    document: RawDocument,
    product_tree: Option<RawProductTree>,
    #[serde(default)]
    vulnerabilities: Option<Vec<RawVulnerability>>,
}

#[derive(Deserialize)]
struct RawDocument {
    category: String,
    csaf_version: String,
    publisher: RawPublisher,
    title: String,
    tracking: RawTracking,
    aggregate_severity: Option<RawText>,
    #[serde(default)]
    notes: Option<Vec<RawNote>>,
    #[serde(default)]
    references: Option<Vec<RawReference>>,
}

#[derive(Deserialize)]
struct RawPublisher {
    #[allow(dead_code)] // Required by the schema; its presence is the check.
    category: String,
    name: String,
    #[allow(dead_code)] // Required by the schema; its presence is the check.
    namespace: String,
}

#[derive(Deserialize)]
struct RawTracking {
    id: String,
    initial_release_date: String,
    current_release_date: String,
    status: String,
    #[allow(dead_code)] // Required by the schema; its presence is the check.
    version: String,
    revision_history: Vec<Value>,
}

#[derive(Deserialize)]
struct RawText {
    text: String,
}

#[derive(Deserialize)]
struct RawNote {
    category: String,
    text: String,
    title: Option<String>,
}

#[derive(Deserialize)]
struct RawReference {
    category: Option<String>,
    url: String,
}

#[derive(Deserialize, Default)]
struct RawProductTree {
    #[serde(default)]
    branches: Option<Vec<RawBranch>>,
    #[serde(default)]
    full_product_names: Option<Vec<RawProduct>>,
    #[serde(default)]
    relationships: Option<Vec<RawRelationship>>,
    #[serde(default)]
    product_groups: Option<Vec<RawGroup>>,
}

#[derive(Deserialize)]
struct RawBranch {
    category: String,
    name: String,
    #[serde(default)]
    branches: Option<Vec<RawBranch>>,
    product: Option<RawProduct>,
}

#[derive(Deserialize)]
struct RawProduct {
    name: String,
    product_id: String,
    product_identification_helper: Option<RawHelper>,
}

#[derive(Deserialize)]
struct RawHelper {
    cpe: Option<String>,
    purl: Option<String>,
}

#[derive(Deserialize)]
struct RawRelationship {
    category: String,
    full_product_name: RawProduct,
    product_reference: String,
    relates_to_product_reference: String,
}

#[derive(Deserialize)]
struct RawGroup {
    group_id: String,
    product_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawVulnerability {
    cve: Option<String>,
    #[serde(default)]
    ids: Option<Vec<Value>>,
    #[serde(default)]
    notes: Option<Vec<RawNote>>,
    #[serde(default)]
    product_status: Option<RawProductStatus>,
    #[serde(default)]
    remediations: Option<Vec<RawRemediation>>,
    /// CSAF 2.0.
    #[serde(default)]
    scores: Option<Vec<RawScore>>,
    /// CSAF 2.1.
    #[serde(default)]
    metrics: Option<Vec<RawMetric>>,
    #[serde(default)]
    threats: Option<Vec<RawThreat>>,
    #[serde(default)]
    flags: Option<Vec<RawFlag>>,
}

#[derive(Deserialize, Default)]
struct RawProductStatus {
    #[serde(default)]
    first_affected: Option<Vec<String>>,
    #[serde(default)]
    first_fixed: Option<Vec<String>>,
    #[serde(default)]
    fixed: Option<Vec<String>>,
    #[serde(default)]
    known_affected: Option<Vec<String>>,
    #[serde(default)]
    known_not_affected: Option<Vec<String>>,
    #[serde(default)]
    last_affected: Option<Vec<String>>,
    #[serde(default)]
    recommended: Option<Vec<String>>,
    #[serde(default)]
    under_investigation: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawRemediation {
    category: String,
    details: Option<String>,
    url: Option<String>,
    #[serde(default)]
    product_ids: Option<Vec<String>>,
    #[serde(default)]
    group_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawScore {
    #[serde(default)]
    products: Vec<String>,
    cvss_v2: Option<RawCvss>,
    cvss_v3: Option<RawCvss>,
    cvss_v4: Option<RawCvss>,
}

#[derive(Deserialize)]
struct RawMetric {
    #[serde(default)]
    products: Vec<String>,
    content: RawMetricContent,
}

#[derive(Deserialize)]
struct RawMetricContent {
    cvss_v2: Option<RawCvss>,
    cvss_v3: Option<RawCvss>,
    cvss_v4: Option<RawCvss>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCvss {
    vector_string: Option<String>,
    base_score: Option<f64>,
}

#[derive(Deserialize)]
struct RawThreat {
    category: String,
    details: String,
    #[serde(default)]
    product_ids: Option<Vec<String>>,
    #[serde(default)]
    group_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawFlag {
    label: String,
    #[serde(default)]
    product_ids: Option<Vec<String>>,
    #[serde(default)]
    group_ids: Option<Vec<String>>,
}

impl RawVulnerability {
    /// `(version, products, cvss)` for every score, CSAF 2.0 `scores` and 2.1 `metrics` alike.
    fn cvss(&self) -> Vec<(u8, &[String], &RawCvss)> {
        let mut out = Vec::new();
        for s in self.scores.iter().flatten() {
            let p = s.products.as_slice();
            out.extend(s.cvss_v2.as_ref().map(|c| (2, p, c)));
            out.extend(s.cvss_v3.as_ref().map(|c| (3, p, c)));
            out.extend(s.cvss_v4.as_ref().map(|c| (4, p, c)));
        }
        for m in self.metrics.iter().flatten() {
            let p = m.products.as_slice();
            out.extend(m.content.cvss_v2.as_ref().map(|c| (2, p, c)));
            out.extend(m.content.cvss_v3.as_ref().map(|c| (3, p, c)));
            out.extend(m.content.cvss_v4.as_ref().map(|c| (4, p, c)));
        }
        out
    }
}

impl RawProductStatus {
    /// `(status name, product ids)` for every status list.
    fn lists(&self) -> [(&'static str, &[String]); 8] {
        fn l(v: &Option<Vec<String>>) -> &[String] {
            v.as_deref().unwrap_or(&[])
        }
        [
            ("first_affected", l(&self.first_affected)),
            ("first_fixed", l(&self.first_fixed)),
            ("fixed", l(&self.fixed)),
            ("known_affected", l(&self.known_affected)),
            ("known_not_affected", l(&self.known_not_affected)),
            ("last_affected", l(&self.last_affected)),
            ("recommended", l(&self.recommended)),
            ("under_investigation", l(&self.under_investigation)),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

fn invalid(test: &str, msg: String) -> RejectReason {
    RejectReason::Invalid(format!("CSAF {test}: {msg}"))
}

/// The product tree's definitions: product id → product, relationship id → (component,
/// platform), group id → members.
#[derive(Default)]
struct Tree<'a> {
    products: HashMap<&'a str, &'a RawProduct>,
    relationships: HashMap<&'a str, (&'a str, &'a str)>,
    groups: HashMap<&'a str, &'a [String]>,
}

fn tree(raw: &RawCsaf) -> Result<Tree<'_>, RejectReason> {
    let mut t = Tree::default();
    let Some(pt) = &raw.product_tree else {
        return Ok(t);
    };
    let mut defined: Vec<&RawProduct> = Vec::new();
    let mut stack: Vec<&RawBranch> = pt.branches.iter().flatten().collect();
    // Iterative walk: a hostile document can nest branches deeper than the stack allows.
    while let Some(b) = stack.pop() {
        if b.category.is_empty() || b.name.is_empty() {
            return Err(invalid(
                "schema",
                "a branch needs a category and a name".into(),
            ));
        }
        defined.extend(b.product.as_ref());
        stack.extend(b.branches.iter().flatten());
    }
    defined.extend(pt.full_product_names.iter().flatten());
    for p in defined {
        // Red Hat's VEX documents repeat some branch products word for word; a repetition
        // that says the same thing is harmless, a different definition under the same id is
        // ambiguous and refused.
        if let Some(previous) = t.products.insert(&p.product_id, p)
            && !same_product(previous, p)
        {
            return Err(invalid(
                "6.1.2",
                format!(
                    "product id {:?} is defined more than once, differently",
                    p.product_id
                ),
            ));
        }
    }
    for r in pt.relationships.iter().flatten() {
        let id = r.full_product_name.product_id.as_str();
        if t.products.insert(id, &r.full_product_name).is_some() {
            return Err(invalid(
                "6.1.2",
                format!("product id {id:?} is defined more than once"),
            ));
        }
        t.relationships
            .insert(id, (&r.product_reference, &r.relates_to_product_reference));
        if r.category.is_empty() {
            return Err(invalid(
                "schema",
                format!("relationship {id:?} has no category"),
            ));
        }
    }
    for g in pt.product_groups.iter().flatten() {
        if t.groups.insert(&g.group_id, &g.product_ids).is_some() {
            return Err(invalid(
                "6.1.5",
                format!("group id {:?} is defined more than once", g.group_id),
            ));
        }
    }
    Ok(t)
}

fn same_product(a: &RawProduct, b: &RawProduct) -> bool {
    let helper = |p: &RawProduct| {
        p.product_identification_helper
            .as_ref()
            .map(|h| (h.cpe.clone(), h.purl.clone()))
    };
    a.name == b.name && helper(a) == helper(b)
}

/// Checks the mandatory tests that protect what we read (see the module documentation).
fn validate(raw: &RawCsaf) -> Result<(), RejectReason> {
    let doc = &raw.document;
    if !matches!(doc.csaf_version.as_str(), "2.0" | "2.1") {
        return Err(invalid(
            "schema",
            format!("csaf_version {:?} is not 2.0 or 2.1", doc.csaf_version),
        ));
    }
    for (what, v) in [
        ("document.category", &doc.category),
        ("document.title", &doc.title),
        ("document.publisher.name", &doc.publisher.name),
        ("document.tracking.id", &doc.tracking.id),
    ] {
        if v.trim().is_empty() {
            return Err(invalid("schema", format!("{what} is empty")));
        }
    }
    if !matches!(doc.tracking.status.as_str(), "draft" | "final" | "interim") {
        return Err(invalid(
            "schema",
            format!(
                "tracking.status {:?} is not draft, final or interim",
                doc.tracking.status
            ),
        ));
    }
    if doc.tracking.revision_history.is_empty() {
        return Err(invalid(
            "schema",
            "tracking.revision_history is empty".into(),
        ));
    }
    for (what, d) in [
        ("initial_release_date", &doc.tracking.initial_release_date),
        ("current_release_date", &doc.tracking.current_release_date),
    ] {
        time::strict(d).map_err(|e| invalid("schema", format!("tracking.{what}: {e}")))?;
    }

    let t = tree(raw)?;
    // The `what` of an error is only spelled out when there is an error: documents name
    // tens of thousands of products.
    let product = |test: &str, id: &str, what: &dyn Fn() -> String| -> Result<(), RejectReason> {
        if t.products.contains_key(id) {
            Ok(())
        } else {
            Err(invalid(
                test,
                format!(
                    "{} names product id {id:?}, which the product tree does not define",
                    what()
                ),
            ))
        }
    };
    let group = |id: &str, what: &dyn Fn() -> String| -> Result<(), RejectReason> {
        if t.groups.contains_key(id) {
            Ok(())
        } else {
            Err(invalid(
                "6.1.4",
                format!(
                    "{} names group id {id:?}, which the product tree does not define",
                    what()
                ),
            ))
        }
    };
    for (id, members) in &t.groups {
        for m in members.iter() {
            product("6.1.1", m, &|| format!("product group {id:?}"))?;
        }
    }
    for (id, (component, platform)) in &t.relationships {
        product("6.1.1", component, &|| format!("relationship {id:?}"))?;
        product("6.1.1", platform, &|| format!("relationship {id:?}"))?;
    }
    circular(&t)?;
    for p in t.products.values() {
        if let Some(purl) = p
            .product_identification_helper
            .as_ref()
            .and_then(|h| h.purl.as_deref())
            && Purl::parse(purl).is_none()
        {
            return Err(invalid(
                "6.1.13",
                format!(
                    "product {:?} has the purl {purl:?}, which is not a purl",
                    p.product_id
                ),
            ));
        }
    }

    let vulns = raw.vulnerabilities.as_deref().unwrap_or(&[]);
    let mut cves = HashSet::new();
    for (i, v) in vulns.iter().enumerate() {
        let here = format!("vulnerabilities[{i}]");
        if let Some(cve) = &v.cve
            && !cves.insert(cve.as_str())
        {
            return Err(invalid(
                "6.1.23",
                format!("{cve} appears in more than one vulnerability"),
            ));
        }
        let mut status_of: HashMap<&str, &str> = HashMap::new();
        if let Some(ps) = &v.product_status {
            for (status, ids) in ps.lists() {
                for id in ids {
                    product("6.1.1", id, &|| format!("{here}.product_status.{status}"))?;
                    let class = match status {
                        "first_affected" | "known_affected" | "last_affected" => "affected",
                        "known_not_affected" => "not affected",
                        "first_fixed" | "fixed" => "fixed",
                        "under_investigation" => "under investigation",
                        _ => continue,
                    };
                    if let Some(prev) = status_of.insert(id, class)
                        && prev != class
                    {
                        return Err(invalid(
                            "6.1.6",
                            format!("{here}: product {id:?} is both {prev} and {class}"),
                        ));
                    }
                }
            }
        }
        for (j, r) in v.remediations.iter().flatten().enumerate() {
            let (p, g) = (r.product_ids.as_deref(), r.group_ids.as_deref());
            if p.is_none_or(<[String]>::is_empty) && g.is_none_or(<[String]>::is_empty) {
                return Err(invalid(
                    "6.1.29",
                    format!("{here}.remediations[{j}] names no product and no group"),
                ));
            }
            for id in p.unwrap_or(&[]) {
                product("6.1.1", id, &|| format!("{here}.remediations[{j}]"))?;
            }
            for id in g.unwrap_or(&[]) {
                group(id, &|| format!("{here}.remediations[{j}]"))?;
            }
        }
        for (j, th) in v.threats.iter().flatten().enumerate() {
            for id in th.product_ids.iter().flatten() {
                product("6.1.1", id, &|| format!("{here}.threats[{j}]"))?;
            }
            for id in th.group_ids.iter().flatten() {
                group(id, &|| format!("{here}.threats[{j}]"))?;
            }
        }
        let mut justified: HashSet<String> = HashSet::new();
        for (j, f) in v.flags.iter().flatten().enumerate() {
            let (p, g) = (f.product_ids.as_deref(), f.group_ids.as_deref());
            if p.is_none_or(<[String]>::is_empty) && g.is_none_or(<[String]>::is_empty) {
                return Err(invalid(
                    "6.1.32",
                    format!("{here}.flags[{j}] names no product and no group"),
                ));
            }
            for id in p.unwrap_or(&[]) {
                product("6.1.1", id, &|| format!("{here}.flags[{j}]"))?;
            }
            for id in g.unwrap_or(&[]) {
                group(id, &|| format!("{here}.flags[{j}]"))?;
            }
            for id in expand(&t, p, g) {
                if !justified.insert(id.clone()) {
                    return Err(invalid(
                        "6.1.33",
                        format!("{here}: product {id:?} has more than one VEX justification"),
                    ));
                }
            }
        }
        let mut scored: HashSet<(u8, &str)> = HashSet::new();
        for (version, products, cvss) in v.cvss() {
            for id in products {
                product("6.1.1", id, &|| format!("{here} score"))?;
                if !scored.insert((version, id)) {
                    return Err(invalid(
                        "6.1.7",
                        format!("{here}: product {id:?} has more than one CVSS v{version} score"),
                    ));
                }
            }
            if let (Some(vector), Some(stated)) = (&cvss.vector_string, cvss.base_score)
                && let Ok((_, score)) = vector_score(vector)
                && (score.as_f64() - stated).abs() > 0.05
            {
                return Err(invalid(
                    "6.1.9",
                    format!(
                        "{here}: baseScore {stated} does not match {vector}, which scores {score}"
                    ),
                ));
            }
        }
    }
    profile(raw, &t)
}

/// The product ids a list of products and groups stands for.
fn expand(t: &Tree<'_>, products: Option<&[String]>, groups: Option<&[String]>) -> Vec<String> {
    let mut out: Vec<String> = products.unwrap_or(&[]).to_vec();
    for g in groups.unwrap_or(&[]) {
        out.extend(
            t.groups
                .get(g.as_str())
                .copied()
                .unwrap_or(&[])
                .iter()
                .cloned(),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// 6.1.3: a relationship must not, through its references, lead back to itself.
fn circular(t: &Tree<'_>) -> Result<(), RejectReason> {
    for start in t.relationships.keys() {
        let mut stack: Vec<&str> = vec![start];
        let mut seen: HashSet<&str> = HashSet::new();
        while let Some(id) = stack.pop() {
            if let Some((component, platform)) = t.relationships.get(id) {
                for next in [*component, *platform] {
                    if next == *start {
                        return Err(invalid(
                            "6.1.3",
                            format!("relationship {start:?} refers back to itself"),
                        ));
                    }
                    if seen.insert(next) {
                        stack.push(next);
                    }
                }
            }
        }
    }
    Ok(())
}

/// 6.1.27.x (CSAF 2.0 numbering): what the profiles require. Informational advisories and
/// incident responses need descriptive notes and an external reference; informational
/// advisories have no vulnerabilities; security advisories and VEX need a product tree and
/// vulnerabilities, each with notes and a product status; VEX adds its own rules below.
fn profile(raw: &RawCsaf, t: &Tree<'_>) -> Result<(), RejectReason> {
    let doc = &raw.document;
    let vulns = raw.vulnerabilities.as_deref().unwrap_or(&[]);
    let category = doc.category.as_str();
    if matches!(
        category,
        "csaf_informational_advisory" | "csaf_security_incident_response"
    ) {
        let notes = doc.notes.as_deref().unwrap_or(&[]);
        if !notes.iter().any(|n| {
            matches!(
                n.category.as_str(),
                "description" | "details" | "general" | "summary"
            )
        }) {
            return Err(invalid(
                "6.1.27.1",
                format!(
                    "a {category} needs a note of category description, details, general or \
                     summary"
                ),
            ));
        }
        let refs = doc.references.as_deref().unwrap_or(&[]);
        if !refs
            .iter()
            .any(|r| r.category.as_deref() == Some("external"))
        {
            return Err(invalid(
                "6.1.27.2",
                format!("a {category} needs an external reference"),
            ));
        }
        if category == "csaf_informational_advisory" && !vulns.is_empty() {
            return Err(invalid(
                "6.1.27.3",
                "an informational advisory must not have vulnerabilities".into(),
            ));
        }
        return Ok(());
    }
    if !matches!(category, "csaf_security_advisory" | "csaf_vex") {
        return Ok(());
    }
    if raw.product_tree.is_none() {
        return Err(invalid(
            "6.1.27.4",
            format!("a {category} needs a product tree"),
        ));
    }
    if vulns.is_empty() {
        return Err(invalid(
            "6.1.27.11",
            format!("a {category} needs vulnerabilities"),
        ));
    }
    for (i, v) in vulns.iter().enumerate() {
        let here = format!("vulnerabilities[{i}]");
        if v.notes.as_deref().is_none_or(<[RawNote]>::is_empty) {
            return Err(invalid("6.1.27.5", format!("{here} needs notes")));
        }
        if v.product_status.is_none() {
            return Err(invalid(
                "6.1.27.6",
                format!("{here} needs a product status"),
            ));
        }
        if category != "csaf_vex" {
            continue;
        }
        // VEX.
        let ps = v.product_status.as_ref();
        let has = |list: Option<&Vec<String>>| list.is_some_and(|l| !l.is_empty());
        if !ps.is_some_and(|ps| {
            has(ps.fixed.as_ref())
                || has(ps.known_affected.as_ref())
                || has(ps.known_not_affected.as_ref())
                || has(ps.under_investigation.as_ref())
        }) {
            return Err(invalid(
                "6.1.27.7",
                format!(
                    "{here} needs fixed, known_affected, known_not_affected or \
                     under_investigation products"
                ),
            ));
        }
        if v.cve.is_none() && v.ids.as_deref().is_none_or(<[Value]>::is_empty) {
            return Err(invalid("6.1.27.8", format!("{here} needs a cve or ids")));
        }
        let Some(ps) = ps else { continue };
        let mut impact: HashSet<String> = HashSet::new();
        for f in v.flags.iter().flatten() {
            impact.extend(expand(t, f.product_ids.as_deref(), f.group_ids.as_deref()));
        }
        for th in v
            .threats
            .iter()
            .flatten()
            .filter(|th| th.category == "impact")
        {
            impact.extend(expand(
                t,
                th.product_ids.as_deref(),
                th.group_ids.as_deref(),
            ));
        }
        for id in ps.known_not_affected.iter().flatten() {
            if !impact.contains(id) {
                return Err(invalid(
                    "6.1.27.9",
                    format!("{here}: not-affected product {id:?} has no impact statement"),
                ));
            }
        }
        let mut action: HashSet<String> = HashSet::new();
        for r in v.remediations.iter().flatten() {
            action.extend(expand(t, r.product_ids.as_deref(), r.group_ids.as_deref()));
        }
        for id in ps.known_affected.iter().flatten() {
            if !action.contains(id) {
                return Err(invalid(
                    "6.1.27.10",
                    format!("{here}: affected product {id:?} has no action statement"),
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Conversion.

/// A product resolved to a package on a platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Resolved {
    ecosystem: String,
    name: String,
    purl: String,
    version: Option<String>,
    module: Option<String>,
}

/// Follows a product id through its relationships to a package on a CPE-named platform.
fn product(t: &Tree<'_>, id: &str) -> Option<Resolved> {
    let (component, mut platform) = *t.relationships.get(id)?;
    let comp = t.products.get(component)?;
    let purl_text = comp
        .product_identification_helper
        .as_ref()?
        .purl
        .as_deref()?;
    let purl = Purl::parse(purl_text)?;
    if purl.kind != "rpm" {
        return None;
    }
    let mut module = None;
    let mut ecosystem = None;
    // Platforms nest at most a few levels (platform → module → package); the bound keeps a
    // hostile chain from looping even though validation refuses cycles.
    for _ in 0..8 {
        if let Some((inner, outer)) = t.relationships.get(platform) {
            // A relationship as platform: a module (or layered product) inside a platform.
            if module.is_none()
                && let Some(m) = t
                    .products
                    .get(inner)
                    .and_then(|p| p.product_identification_helper.as_ref()?.purl.as_deref())
                    .and_then(Purl::parse)
                    .filter(|p| p.kind == "rpmmod")
            {
                module = Some(match m.version {
                    Some(v) => format!("{}:{v}", m.name),
                    None => m.name.to_owned(),
                });
            }
            platform = outer;
            continue;
        }
        let cpe = t
            .products
            .get(platform)?
            .product_identification_helper
            .as_ref()?
            .cpe
            .as_deref()?;
        ecosystem = ecosystem_of_cpe(cpe);
        break;
    }
    let name = purl.name.to_owned();
    let version = version_of(&comp.name, &name, &purl);
    Some(Resolved {
        ecosystem: ecosystem?,
        purl: format!("pkg:rpm/{}/{name}", purl.namespace.unwrap_or("redhat")),
        name,
        version,
        module,
    })
}

/// OSV's spelling of a Red Hat platform CPE: `cpe:/a:redhat:rhel_aus:8.6::appstream` →
/// `Red Hat:rhel_aus:8.6::appstream` (CPE 2.3 `cpe:2.3:o:redhat:enterprise_linux:9:*:…` alike,
/// with its trailing wildcards dropped).
pub fn ecosystem_of_cpe(cpe: &str) -> Option<String> {
    let rest = if let Some(r) = cpe.strip_prefix("cpe:/") {
        r.split_once(':')?.1
    } else if let Some(r) = cpe.strip_prefix("cpe:2.3:") {
        r.split_once(':')?.1
    } else {
        return None;
    };
    let (vendor, product) = rest.split_once(':')?;
    if vendor != "redhat" {
        return None;
    }
    let mut parts: Vec<&str> = product.split(':').collect();
    while parts.last().is_some_and(|p| *p == "*" || *p == "-") {
        parts.pop();
    }
    let joined = parts.join(":").replace(":*", ":");
    (!joined.is_empty()).then(|| format!("Red Hat:{joined}"))
}

/// The EVR of a component: from its name as Red Hat writes it (`git-lfs-0:2.13.3-3.el8_6.1.x86_64`),
/// else from the purl (`@2.13.3-3.el8_6.1?epoch=1`).
fn version_of(product_name: &str, package: &str, purl: &Purl<'_>) -> Option<String> {
    let from_name = product_name
        .strip_prefix(package)
        .and_then(|r| r.strip_prefix('-'))
        .map(|evr_arch| match purl.qualifier("arch") {
            Some(arch) => evr_arch
                .strip_suffix(arch)
                .and_then(|r| r.strip_suffix('.'))
                .unwrap_or(evr_arch),
            None => evr_arch,
        })
        .filter(|evr| evr.contains(':') && evr.contains('-'));
    if let Some(evr) = from_name {
        return Some(evr.to_owned());
    }
    let version = purl.version.map(percent_decode)?;
    Some(match purl.qualifier("epoch") {
        Some(e) => format!("{e}:{version}"),
        None => version,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A package URL, as far as we need it.
struct Purl<'a> {
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    version: Option<&'a str>,
    qualifiers: &'a str,
}

impl<'a> Purl<'a> {
    fn parse(s: &'a str) -> Option<Purl<'a>> {
        let rest = s.strip_prefix("pkg:")?;
        let rest = rest.split('#').next().unwrap_or(rest);
        let (path, qualifiers) = rest.split_once('?').unwrap_or((rest, ""));
        let (path, version) = match path.rsplit_once('@') {
            Some((p, v)) => (p, Some(v)),
            None => (path, None),
        };
        let (kind, rest) = path.split_once('/')?;
        let (namespace, name) = match rest.rsplit_once('/') {
            Some((ns, n)) => (Some(ns), n),
            None => (None, rest),
        };
        let valid_kind = !kind.is_empty()
            && kind
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'+' || b == b'-');
        (valid_kind && !name.is_empty()).then_some(Purl {
            kind,
            namespace,
            name,
            version,
            qualifiers,
        })
    }

    fn qualifier(&self, key: &str) -> Option<&'a str> {
        self.qualifiers
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn red_hat_cpes_become_osv_ecosystems() {
        for (cpe, want) in [
            (
                "cpe:/a:redhat:rhel_aus:8.6::appstream",
                Some("Red Hat:rhel_aus:8.6::appstream"),
            ),
            (
                "cpe:/o:redhat:enterprise_linux:6",
                Some("Red Hat:enterprise_linux:6"),
            ),
            (
                "cpe:2.3:o:redhat:enterprise_linux:9:*:*:*:*:*:*:*",
                Some("Red Hat:enterprise_linux:9"),
            ),
            ("cpe:/a:example:product:1", None),
            ("not a cpe", None),
            ("cpe:/", None),
        ] {
            assert_eq!(ecosystem_of_cpe(cpe).as_deref(), want, "{cpe}");
        }
    }

    #[test]
    fn versions_come_from_the_product_name_or_the_purl() {
        let p = Purl::parse("pkg:rpm/redhat/git-lfs@2.13.3-3.el8_6.1?arch=x86_64").unwrap();
        assert_eq!(
            version_of("git-lfs-0:2.13.3-3.el8_6.1.x86_64", "git-lfs", &p).as_deref(),
            Some("0:2.13.3-3.el8_6.1")
        );
        let p = Purl::parse(
            "pkg:rpm/redhat/python39-wheel@0.35.1-4.module%2Bel8.5.0%2B12204%2B54860423?arch=noarch&epoch=1",
        )
        .unwrap();
        assert_eq!(
            version_of("python39-wheel", "python39-wheel", &p).as_deref(),
            Some("1:0.35.1-4.module+el8.5.0+12204+54860423")
        );
        assert!(Purl::parse("pkg:").is_none());
        assert!(Purl::parse("pkg:rpm/").is_none());
        assert!(Purl::parse("rpm/redhat/x").is_none());
        assert_eq!(percent_decode("a%2Bb%2"), "a+b%2");
        assert_eq!(percent_decode("%zz%e2%82%ac"), "%zz€");
    }
}
