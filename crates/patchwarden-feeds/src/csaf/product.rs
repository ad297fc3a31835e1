//! Product tree → packages: following a product id through its relationships to an rpm
//! package on a CPE-named platform, in OSV's spelling of ecosystems and versions.

use super::validate::Tree;

/// A product resolved to a package on a platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Resolved {
    pub(super) ecosystem: String,
    pub(super) name: String,
    pub(super) purl: String,
    pub(super) version: Option<String>,
    pub(super) module: Option<String>,
}

/// Follows a product id through its relationships to a package on a CPE-named platform.
pub(super) fn product(t: &Tree<'_>, id: &str) -> Option<Resolved> {
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
pub(super) fn version_of(product_name: &str, package: &str, purl: &Purl<'_>) -> Option<String> {
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

pub(super) fn percent_decode(s: &str) -> String {
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
pub(super) struct Purl<'a> {
    pub(super) kind: &'a str,
    pub(super) namespace: Option<&'a str>,
    pub(super) name: &'a str,
    pub(super) version: Option<&'a str>,
    pub(super) qualifiers: &'a str,
}

impl<'a> Purl<'a> {
    pub(super) fn parse(s: &'a str) -> Option<Purl<'a>> {
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

    pub(super) fn qualifier(&self, key: &str) -> Option<&'a str> {
        self.qualifiers
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Which status an affected entry stands for.
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
