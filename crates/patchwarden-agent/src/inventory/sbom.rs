//! Inventory from a software bill of materials: SPDX 2.x JSON and CycloneDX 1.4–1.6 JSON, for
//! hosts and images that Patchwarden cannot read directly but whose builders publish an SBOM.
//!
//! Only operating-system packages are taken, from their package URLs: `pkg:deb/…` (dpkg),
//! `pkg:rpm/…` and `pkg:apk/…`. Qualifiers fill in what the URL's version does not carry:
//! `arch`, rpm's `epoch`, the source package (`upstream`, as Syft writes it: `openssl`,
//! `glibc@2.36-9` or rpm's `openssl-3.0.7-24.el9.src.rpm`) and the operating system
//! (`distro=debian-12`, `rhel-9.2`, `alpine-3.19.1`, or a codename such as `bookworm`).
//! CycloneDX's `operating-system` component names the OS too, and wins over the qualifiers.
//! Components of other types (`pkg:npm`, `pkg:oci` …) are counted and left out.
//!
//! The document is read whole, up to [`MAX_SBOM_BYTES`]; serde's recursion limit bounds the
//! nesting of CycloneDX components.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use patchwarden_core::inventory::{Manager, OsInfo, Package, PackageStatus};
use serde::Deserialize;

use crate::facts::os_release::{EcosystemInput, osv_ecosystem};
use crate::root::{RootError, read_limited};

/// The largest SBOM read: the SBOMs of big images are tens of megabytes.
pub const MAX_SBOM_BYTES: u64 = 256 * 1024 * 1024;

/// Which kind of document it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SbomFormat {
    /// SPDX with its version (`SPDX-2.3`).
    Spdx(String),
    /// CycloneDX with its spec version (`1.5`).
    CycloneDx(String),
}

/// What an SBOM says about its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    pub format: SbomFormat,
    /// The document's subject (`ubi9-container`), when it names one.
    pub name: Option<String>,
    /// The operating system, when the SBOM names one.
    pub os: Option<OsInfo>,
    pub packages: Vec<Package>,
    /// Components left out because they are not OS packages, by package-URL type (`oci`,
    /// `npm` …; `none` for components without a package URL).
    pub not_os_packages: BTreeMap<String, u64>,
    /// Package URLs that could not be used, and why; and other things worth saying.
    pub problems: Vec<String>,
}

/// Why an SBOM could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(transparent)]
    Read(#[from] RootError),
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: SbomParseError,
    },
}

/// Why a document is not an SBOM we read.
#[derive(Debug, thiserror::Error)]
pub enum SbomParseError {
    #[error("not valid JSON of an SPDX or CycloneDX document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("neither SPDX (`spdxVersion`) nor CycloneDX (`bomFormat`)")]
    Unknown,
    #[error("{0} is not supported (SPDX 2.x and CycloneDX 1.4 to 1.6 are)")]
    Unsupported(String),
}

/// Why a package URL could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurlError {
    #[error("package URL {0:?} does not start with `pkg:`")]
    NoScheme(String),
    #[error("package URL {0:?} has no type and name")]
    NoName(String),
    #[error("package URL {0:?} has invalid percent-encoding")]
    BadEncoding(String),
}

/// A parsed package URL (<https://github.com/package-url/purl-spec>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    /// The type, lower case: `deb`, `rpm`, `apk`, `npm` …
    pub ty: String,
    pub namespace: Option<String>,
    pub name: String,
    pub version: Option<String>,
    /// Qualifier keys are lower case; values are decoded.
    pub qualifiers: BTreeMap<String, String>,
}

/// Parses a package URL as the specification says: scheme, then `#subpath` and `?qualifiers`
/// from the right, then `@version`, then the type, name and namespace.
pub fn parse_purl(s: &str) -> Result<Purl, PurlError> {
    let rest = s
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("pkg:"))
        .and_then(|_| s.get(4..))
        .ok_or_else(|| PurlError::NoScheme(s.into()))?;
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let bad = || PurlError::BadEncoding(s.into());
    let mut qualifiers = BTreeMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v).ok_or_else(bad)?;
        if !v.is_empty() {
            qualifiers.insert(k.to_ascii_lowercase(), v);
        }
    }
    let rest = rest.trim_start_matches('/');
    let (path, version) = match rest.rsplit_once('@') {
        Some((p, v)) => (p, Some(percent_decode(v).ok_or_else(bad)?)),
        None => (rest, None),
    };
    let path = path.trim_end_matches('/');
    let (ty, path) = path
        .split_once('/')
        .ok_or_else(|| PurlError::NoName(s.into()))?;
    let (namespace, name) = match path.rsplit_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, path),
    };
    let name = percent_decode(name).ok_or_else(bad)?;
    if ty.is_empty() || name.is_empty() {
        return Err(PurlError::NoName(s.into()));
    }
    let namespace = match namespace {
        Some(ns) => Some(
            ns.split('/')
                .map(percent_decode)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?
                .join("/"),
        ),
        None => None,
    };
    Ok(Purl {
        ty: ty.to_ascii_lowercase(),
        namespace,
        name,
        version: version.filter(|v| !v.is_empty()),
        qualifiers,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a package URL gives: an OS package, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromPurl {
    Package(Package),
    /// Not an OS package type: the type.
    NotOs(String),
    /// An OS package type without a version.
    NoVersion,
}

/// The [`Package`] a package URL names, when it is a deb, rpm or apk.
pub fn package_from_purl(p: &Purl) -> FromPurl {
    let manager = match p.ty.as_str() {
        "deb" => Manager::Dpkg,
        "rpm" => Manager::Rpm,
        "apk" => Manager::Apk,
        other => return FromPurl::NotOs(other.into()),
    };
    let Some(version) = p.version.clone() else {
        return FromPurl::NoVersion;
    };
    let q = |k: &str| p.qualifiers.get(k).map(String::as_str);
    let arch = q("arch").map(String::from);
    let upstream = q("upstream");
    let (version, epoch, source_name, source_version) = match manager {
        Manager::Dpkg => {
            // dpkg versions carry their epoch; an `epoch` qualifier adds it when the version
            // does not.
            let version = match q("epoch") {
                Some(e) if !version.contains(':') && e != "0" => format!("{e}:{version}"),
                _ => version,
            };
            let (sn, sv) = match upstream.map(split_upstream) {
                Some((n, v)) => (n.to_string(), v.unwrap_or(&version).to_string()),
                None => (p.name.clone(), version.clone()),
            };
            (version, None, Some(sn), Some(sv))
        }
        Manager::Rpm => {
            // The version is `version-release`; an `E:` prefix is accepted as the epoch too.
            let (prefix_epoch, version) = match version.split_once(':') {
                Some((e, v)) if e.bytes().all(|b| b.is_ascii_digit()) && !e.is_empty() => {
                    (e.parse::<u32>().ok(), v.to_string())
                }
                _ => (None, version),
            };
            let epoch = q("epoch").and_then(|e| e.parse().ok()).or(prefix_epoch);
            let (sn, sv) = match upstream {
                Some(u) => match source_rpm(u) {
                    Some((n, v)) => (Some(n.to_string()), Some(v.to_string())),
                    None => (Some(u.to_string()), None),
                },
                None => (None, None),
            };
            (version, epoch, sn, sv)
        }
        Manager::Apk => {
            let sn = upstream.or(q("origin")).unwrap_or(&p.name).to_string();
            (version.clone(), None, Some(sn), Some(version))
        }
    };
    FromPurl::Package(Package {
        manager,
        name: p.name.clone(),
        version,
        arch,
        source_name,
        source_version,
        epoch,
        module: None,
        status: PackageStatus::Installed,
    })
}

/// `glibc`, `glibc@2.36-9` or `glibc (2.36-9)` → name and version.
fn split_upstream(u: &str) -> (&str, Option<&str>) {
    if let Some((n, v)) = u.split_once('@') {
        return (n.trim(), Some(v.trim()).filter(|v| !v.is_empty()));
    }
    if let Some((n, v)) = u.split_once(" (") {
        return (n.trim(), v.strip_suffix(')').map(str::trim));
    }
    (u.trim(), None)
}

/// `openssl-3.0.7-24.el9.src.rpm` → (`openssl`, `3.0.7-24.el9`): a source rpm's file name is
/// `name-version-release.src.rpm`, and names may contain hyphens, versions and releases not.
fn source_rpm(u: &str) -> Option<(&str, &str)> {
    let base = u
        .strip_suffix(".src.rpm")
        .or_else(|| u.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = base.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    let vr = base.get(name.len() + 1..)?;
    (!name.is_empty()).then_some((name, vr))
}

/// The OS a `distro` qualifier names: `debian-12`, `ubuntu-22.04`, `rhel-9.2`,
/// `alpine-3.19.1`; or a bare codename (`bookworm`) under the purl's namespace (`debian`).
pub fn os_from_distro(distro: &str, namespace: Option<&str>) -> Option<OsInfo> {
    let distro = distro.trim();
    let (id, version_id, codename) = match distro.rsplit_once('-') {
        Some((id, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => {
            (id.to_ascii_lowercase(), Some(v.to_string()), None)
        }
        _ => (
            namespace?.to_ascii_lowercase(),
            None,
            Some(distro.to_ascii_lowercase()),
        ),
    };
    if id.is_empty() {
        return None;
    }
    // Red Hat's purls use `redhat` as the namespace and `rhel` in the distro qualifier.
    let id = if id == "redhat" { "rhel".into() } else { id };
    let ecosystem = osv_ecosystem(&EcosystemInput {
        id: &id,
        version_id: version_id.as_deref(),
        lts_hint: false,
    });
    Some(OsInfo {
        id,
        version_id,
        codename,
        pretty_name: None,
        id_like: Vec::new(),
        ecosystem,
    })
}

#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "spdxVersion")]
    spdx_version: Option<String>,
    #[serde(rename = "bomFormat")]
    bom_format: Option<String>,
    #[serde(rename = "specVersion")]
    spec_version: Option<String>,
    name: Option<String>,
    #[serde(default)]
    packages: Vec<SpdxPackage>,
    #[serde(default)]
    components: Vec<Component>,
    metadata: Option<CdxMetadata>,
}

#[derive(Debug, Deserialize)]
struct SpdxPackage {
    #[serde(rename = "externalRefs", default)]
    external_refs: Vec<SpdxRef>,
}

#[derive(Debug, Deserialize)]
struct SpdxRef {
    #[serde(rename = "referenceType")]
    reference_type: Option<String>,
    #[serde(rename = "referenceLocator")]
    reference_locator: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CdxMetadata {
    component: Option<Component>,
}

#[derive(Debug, Deserialize)]
struct Component {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    version: Option<String>,
    purl: Option<String>,
    #[serde(default)]
    components: Vec<Component>,
}

/// Parses an SBOM document.
pub fn parse_sbom(bytes: &[u8]) -> Result<Sbom, SbomParseError> {
    let doc: Document = serde_json::from_slice(bytes)?;
    let mut sbom = Sbom {
        format: SbomFormat::Spdx(String::new()),
        name: None,
        os: None,
        packages: Vec::new(),
        not_os_packages: BTreeMap::new(),
        problems: Vec::new(),
    };
    // Every package URL with what it belongs to, in document order.
    let mut purls: Vec<Option<String>> = Vec::new();
    let mut os_component = None;
    if let Some(v) = doc.spdx_version {
        if !v.starts_with("SPDX-2.") {
            return Err(SbomParseError::Unsupported(v));
        }
        sbom.format = SbomFormat::Spdx(v);
        sbom.name = doc.name;
        for p in doc.packages {
            let purl = p
                .external_refs
                .into_iter()
                .find(|r| r.reference_type.as_deref() == Some("purl"))
                .and_then(|r| r.reference_locator);
            purls.push(purl);
        }
    } else if doc.bom_format.as_deref() == Some("CycloneDX") {
        let v = doc.spec_version.unwrap_or_default();
        if !matches!(v.as_str(), "1.4" | "1.5" | "1.6") {
            return Err(SbomParseError::Unsupported(format!("CycloneDX {v:?}")));
        }
        sbom.format = SbomFormat::CycloneDx(v);
        let mut stack: Vec<Component> = doc.components.into_iter().rev().collect();
        if let Some(subject) = doc.metadata.and_then(|m| m.component) {
            sbom.name = subject.name.clone();
            stack.push(subject);
        }
        let mut first = true;
        while let Some(c) = stack.pop() {
            // The metadata component (the subject) is an image or a host, never a package
            // of itself, unless it is the operating system.
            let is_subject = std::mem::take(&mut first) && sbom.name.is_some();
            if c.kind.as_deref() == Some("operating-system") {
                os_component.get_or_insert((c.name.clone(), c.version.clone()));
            } else if !is_subject {
                purls.push(c.purl.clone());
            }
            stack.extend(c.components.into_iter().rev());
        }
    } else {
        return Err(SbomParseError::Unknown);
    }

    let mut distros: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    for purl in purls {
        let Some(purl) = purl else {
            *sbom.not_os_packages.entry("none".into()).or_default() += 1;
            continue;
        };
        let parsed = match parse_purl(&purl) {
            Ok(p) => p,
            Err(e) => {
                sbom.problems.push(e.to_string());
                continue;
            }
        };
        match package_from_purl(&parsed) {
            FromPurl::Package(p) => {
                if let Some(d) = parsed.qualifiers.get("distro") {
                    *distros
                        .entry((d.clone(), parsed.namespace.clone()))
                        .or_default() += 1;
                }
                sbom.packages.push(p);
            }
            FromPurl::NotOs(ty) => *sbom.not_os_packages.entry(ty).or_default() += 1,
            FromPurl::NoVersion => sbom
                .problems
                .push(format!("package URL {purl:?} has no version: left out")),
        }
    }

    sbom.os = match os_component {
        Some((Some(name), version)) => {
            let id = name.to_ascii_lowercase();
            let ecosystem = osv_ecosystem(&EcosystemInput {
                id: &id,
                version_id: version.as_deref(),
                lts_hint: false,
            });
            Some(OsInfo {
                id,
                version_id: version,
                ecosystem,
                ..OsInfo::default()
            })
        }
        _ => {
            if distros.len() > 1 {
                sbom.problems.push(format!(
                    "packages name {} distributions in their `distro` qualifiers; the most \
                     common one is taken",
                    distros.len()
                ));
            }
            distros
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .and_then(|((d, ns), _)| os_from_distro(&d, ns.as_deref()))
        }
    };
    Ok(sbom)
}

/// Reads and parses the SBOM at `path` (a path on this machine, not under a root).
pub fn read_sbom(path: &Path) -> Result<Sbom, SbomError> {
    let file = File::open(path).map_err(|source| RootError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = file.metadata().map_err(|source| RootError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(RootError::NotAFile {
            path: path.to_path_buf(),
        }
        .into());
    }
    let bytes = read_limited(path, file, MAX_SBOM_BYTES)?;
    parse_sbom(&bytes).map_err(|source| SbomError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_parse_per_the_specification() {
        let p = parse_purl(
            "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12#sub/path",
        )
        .unwrap();
        assert_eq!(p.ty, "deb");
        assert_eq!(p.namespace.as_deref(), Some("debian"));
        assert_eq!(p.name, "openssl");
        assert_eq!(p.version.as_deref(), Some("3.0.11-1~deb12u2"));
        assert_eq!(p.qualifiers.get("arch").map(String::as_str), Some("amd64"));
        let p = parse_purl("PKG:Deb/debian/libc6@1%3A2.36-9?UPSTREAM=glibc%402.36-9").unwrap();
        assert_eq!(p.version.as_deref(), Some("1:2.36-9"));
        assert_eq!(
            p.qualifiers.get("upstream").map(String::as_str),
            Some("glibc@2.36-9")
        );
        assert!(matches!(parse_purl("deb/x@1"), Err(PurlError::NoScheme(_))));
        assert!(matches!(parse_purl("pkg:deb"), Err(PurlError::NoName(_))));
        assert!(matches!(
            parse_purl("pkg:deb/a@1%zz"),
            Err(PurlError::BadEncoding(_))
        ));
        assert!(matches!(
            parse_purl("pkg:deb/a@1%e9"),
            Err(PurlError::BadEncoding(_))
        ));
    }

    #[test]
    fn source_rpms_split_into_name_and_version() {
        assert_eq!(
            source_rpm("openssl-3.0.7-24.el9.src.rpm"),
            Some(("openssl", "3.0.7-24.el9"))
        );
        assert_eq!(
            source_rpm("python-setuptools-53.0.0-12.el9.src.rpm"),
            Some(("python-setuptools", "53.0.0-12.el9"))
        );
        assert_eq!(source_rpm("openssl"), None);
        assert_eq!(source_rpm("a.src.rpm"), None);
    }

    #[test]
    fn distro_qualifiers() {
        let os = os_from_distro("debian-12", Some("debian")).unwrap();
        assert_eq!(os.ecosystem.as_deref(), Some("Debian:12"));
        let os = os_from_distro("bookworm", Some("debian")).unwrap();
        assert_eq!(
            (os.id.as_str(), os.codename.as_deref()),
            ("debian", Some("bookworm"))
        );
        let os = os_from_distro("rhel-9.2", Some("redhat")).unwrap();
        assert_eq!(os.ecosystem.as_deref(), Some("Red Hat:enterprise_linux:9"));
        let os = os_from_distro("alpine-3.19.1", Some("alpine")).unwrap();
        assert_eq!(os.ecosystem.as_deref(), Some("Alpine:v3.19"));
        assert_eq!(os_from_distro("x", None), None);
    }
}
