//! Validation: the checks of CSAF's mandatory tests (§6.1) that protect what we read.
//!
//! See the parent module's documentation for the list; each failure names its test number.

use std::collections::{HashMap, HashSet};

use patchwarden_core::advisory::vector_score;
use serde_json::Value;

use super::product::Purl;
use super::raw::{RawBranch, RawCsaf, RawNote, RawProduct};
use crate::{RejectReason, time};

pub(super) fn invalid(test: &str, msg: String) -> RejectReason {
    RejectReason::Invalid(format!("CSAF {test}: {msg}"))
}

/// The product tree's definitions: product id → product, relationship id → (component,
/// platform), group id → members.
#[derive(Default)]
pub(super) struct Tree<'a> {
    pub(super) products: HashMap<&'a str, &'a RawProduct>,
    pub(super) relationships: HashMap<&'a str, (&'a str, &'a str)>,
    pub(super) groups: HashMap<&'a str, &'a [String]>,
}

pub(super) fn tree(raw: &RawCsaf) -> Result<Tree<'_>, RejectReason> {
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

pub(super) fn same_product(a: &RawProduct, b: &RawProduct) -> bool {
    let helper = |p: &RawProduct| {
        p.product_identification_helper
            .as_ref()
            .map(|h| (h.cpe.clone(), h.purl.clone()))
    };
    a.name == b.name && helper(a) == helper(b)
}

/// Checks the mandatory tests that protect what we read (see the module documentation).
pub(super) fn validate(raw: &RawCsaf) -> Result<(), RejectReason> {
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
pub(super) fn expand(
    t: &Tree<'_>,
    products: Option<&[String]>,
    groups: Option<&[String]>,
) -> Vec<String> {
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
///
/// One depth-first walk over the relationships, iterative and with three colours (unseen, on
/// the current path, done), so a hostile document with a long chain costs linear time and no
/// stack.
pub(super) fn circular(t: &Tree<'_>) -> Result<(), RejectReason> {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        OnPath,
        Done,
    }
    let mut colour: HashMap<&str, Colour> = HashMap::new();
    let mut starts: Vec<&str> = t.relationships.keys().copied().collect();
    starts.sort_unstable();
    for start in starts {
        if colour.contains_key(start) {
            continue;
        }
        // (node, how many of its references have been followed)
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        colour.insert(start, Colour::OnPath);
        while let Some((id, next)) = stack.pop() {
            let refs = t
                .relationships
                .get(id)
                .map(|(component, platform)| [*component, *platform]);
            match refs.and_then(|r| r.get(next).copied()) {
                Some(child) => {
                    stack.push((id, next + 1));
                    match colour.get(child) {
                        Some(Colour::OnPath) => {
                            return Err(invalid(
                                "6.1.3",
                                format!("relationship {child:?} refers back to itself"),
                            ));
                        }
                        Some(Colour::Done) => {}
                        None => {
                            colour.insert(child, Colour::OnPath);
                            stack.push((child, 0));
                        }
                    }
                }
                None => {
                    colour.insert(id, Colour::Done);
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
pub(super) fn profile(raw: &RawCsaf, t: &Tree<'_>) -> Result<(), RejectReason> {
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
