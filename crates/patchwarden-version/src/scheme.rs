//! The versioning schemes by name, the OSV ecosystems that use each, and a version of any
//! scheme.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::VersionError;
use crate::apk::{self, Rules};
use crate::dpkg::{self, DpkgVersion};
use crate::pep440::{self, Pep440Version};
use crate::rpm::{self, RpmVersion};
use crate::semver::{self, SemverVersion};

/// A versioning scheme: how one family of package managers orders versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Debian and Ubuntu: dpkg.
    Dpkg,
    /// Red Hat, AlmaLinux, Rocky, SUSE and other rpm distributions: rpm's EVR order.
    Rpm,
    /// Alpine 3.23 and later: apk-tools 3.x.
    Apk,
    /// Alpine 3.22 and earlier: apk-tools 2.x.
    Apk2,
    /// SemVer 2.0.0 as OSV's `SEMVER` ranges use it.
    Semver,
    /// Python packages: PEP 440.
    Pep440,
}

impl Scheme {
    /// Every scheme, in a stable order.
    pub const ALL: [Scheme; 6] = [
        Scheme::Dpkg,
        Scheme::Rpm,
        Scheme::Apk,
        Scheme::Apk2,
        Scheme::Semver,
        Scheme::Pep440,
    ];

    /// The scheme's name as the CLI and configuration spell it.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Rpm => "rpm",
            Scheme::Apk => "apk",
            Scheme::Apk2 => "apk2",
            Scheme::Semver => "semver",
            Scheme::Pep440 => "pep440",
        }
    }

    /// The scheme for an OSV ecosystem string such as `Debian:12`, `Ubuntu:22.04:LTS`,
    /// `Alpine:v3.19`, `AlmaLinux:9`, `Red Hat:enterprise_linux:9::appstream` or `PyPI`.
    ///
    /// Alpine releases up to v3.22 ship apk-tools 2.x and later ones 3.x, so the release picks
    /// [`Scheme::Apk2`] or [`Scheme::Apk`]; an Alpine ecosystem without a release (or `edge`)
    /// gets the current rules.
    pub fn from_osv_ecosystem(ecosystem: &str) -> Result<Scheme, UnknownEcosystem> {
        let (base, release) = match ecosystem.split_once(':') {
            Some((b, r)) => (b, Some(r)),
            None => (ecosystem, None),
        };
        Ok(match base {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "AlmaLinux" | "Rocky Linux" | "Red Hat" | "SUSE" | "openSUSE" | "openEuler"
            | "Mageia" | "Photon OS" | "Azure Linux" | "Oracle Linux" | "Amazon Linux"
            | "Fedora" | "CentOS" => Scheme::Rpm,
            "Alpine" => match release.and_then(alpine_release) {
                Some((3, minor)) if minor <= 22 => Scheme::Apk2,
                Some((major, _)) if major < 3 => Scheme::Apk2,
                _ => Scheme::Apk,
            },
            // These distributions build with apko/go-apk or a 2.x apk-tools.
            "Wolfi" | "Chainguard" | "MinimOS" | "Alpaquita" | "BellSoft Hardened Containers" => {
                Scheme::Apk2
            }
            "PyPI" => Scheme::Pep440,
            "npm" | "crates.io" | "Go" | "Hex" | "SwiftURL" | "Bitnami" | "Julia" | "GHC"
            | "ConanCenter" | "Bioconductor" => Scheme::Semver,
            _ => return Err(UnknownEcosystem(ecosystem.into())),
        })
    }

    /// Compares two version strings under this scheme.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Rpm => rpm::compare(a, b),
            Scheme::Apk => apk::compare(a, b, Rules::V3),
            Scheme::Apk2 => apk::compare(a, b, Rules::V2),
            Scheme::Semver => semver::compare(a, b),
            Scheme::Pep440 => pep440::compare(a, b),
        }
    }

    /// Parses a version under this scheme.
    pub fn parse(self, s: &str) -> Result<Version, VersionError> {
        Ok(match self {
            Scheme::Dpkg => Version::Dpkg(DpkgVersion::parse(s)?),
            Scheme::Rpm => Version::Rpm(RpmVersion::parse(s)?),
            Scheme::Apk | Scheme::Apk2 => {
                let rules = if self == Scheme::Apk {
                    Rules::V3
                } else {
                    Rules::V2
                };
                apk::validate(s, rules)?;
                Version::Apk(ApkVersion {
                    text: s.into(),
                    rules,
                })
            }
            Scheme::Semver => Version::Semver(SemverVersion::parse(s)?),
            Scheme::Pep440 => Version::Pep440(Pep440Version::parse(s)?),
        })
    }
}

/// `"1.19"` / `"v3.19"` / `"3.19.1"` → (3, 19).
fn alpine_release(r: &str) -> Option<(u32, u32)> {
    let r = r.strip_prefix('v').unwrap_or(r);
    let mut it = r.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = UnknownScheme;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownScheme(s.into()))
    }
}

/// A scheme name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown version scheme {0:?} (expected one of dpkg, rpm, apk, apk2, semver, pep440)")]
pub struct UnknownScheme(pub String);

/// An OSV ecosystem whose versions we cannot order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no version ordering is known for the ecosystem {0:?}")]
pub struct UnknownEcosystem(pub String);

/// A validated apk version; comparison re-reads the text, as apk does.
#[derive(Clone)]
pub struct ApkVersion {
    text: Box<str>,
    rules: Rules,
}

impl ApkVersion {
    /// The version as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Orders two versions. Both were validated, so apk's comparison always decides.
    fn cmp(&self, other: &ApkVersion) -> Ordering {
        apk::compare(&self.text, &other.text, self.rules).unwrap_or(Ordering::Equal)
    }
}

impl fmt::Debug for ApkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApkVersion({:?}, {:?})", self.text, self.rules)
    }
}

/// A parsed version of any scheme.
#[derive(Debug, Clone)]
pub enum Version {
    Dpkg(DpkgVersion),
    Rpm(RpmVersion),
    Apk(ApkVersion),
    Semver(SemverVersion),
    Pep440(Pep440Version),
}

impl Version {
    /// The scheme this version belongs to.
    pub fn scheme(&self) -> Scheme {
        match self {
            Version::Dpkg(_) => Scheme::Dpkg,
            Version::Rpm(_) => Scheme::Rpm,
            Version::Apk(v) if v.rules == Rules::V2 => Scheme::Apk2,
            Version::Apk(_) => Scheme::Apk,
            Version::Semver(_) => Scheme::Semver,
            Version::Pep440(_) => Scheme::Pep440,
        }
    }

    /// The version as it was written.
    pub fn as_str(&self) -> &str {
        match self {
            Version::Dpkg(v) => v.as_str(),
            Version::Rpm(v) => v.as_str(),
            Version::Apk(v) => v.as_str(),
            Version::Semver(v) => v.as_str(),
            Version::Pep440(v) => v.as_str(),
        }
    }

    /// Orders two versions of the same scheme; `None` across schemes, which have no order.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        Some(match (self, other) {
            (Version::Dpkg(a), Version::Dpkg(b)) => a.cmp(b),
            (Version::Rpm(a), Version::Rpm(b)) => a.cmp(b),
            (Version::Apk(a), Version::Apk(b)) if a.rules == b.rules => a.cmp(b),
            (Version::Semver(a), Version::Semver(b)) => a.cmp(b),
            (Version::Pep440(a), Version::Pep440(b)) => a.cmp(b),
            _ => return None,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.compare(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osv_ecosystems_map_to_schemes() {
        let cases = [
            ("Debian:12", Scheme::Dpkg),
            ("Ubuntu:22.04:LTS", Scheme::Dpkg),
            ("Ubuntu:Pro:18.04:LTS", Scheme::Dpkg),
            ("Alpine:v3.19", Scheme::Apk2),
            ("Alpine:v3.22", Scheme::Apk2),
            ("Alpine:v3.23", Scheme::Apk),
            ("Alpine", Scheme::Apk),
            ("AlmaLinux:9", Scheme::Rpm),
            ("Rocky Linux:9", Scheme::Rpm),
            ("Red Hat:enterprise_linux:9::appstream", Scheme::Rpm),
            ("SUSE:Linux Enterprise Server 15 SP5", Scheme::Rpm),
            ("openSUSE:Leap 15.5", Scheme::Rpm),
            ("PyPI", Scheme::Pep440),
            ("crates.io", Scheme::Semver),
            ("Go", Scheme::Semver),
        ];
        for (eco, scheme) in cases {
            assert_eq!(Scheme::from_osv_ecosystem(eco), Ok(scheme), "{eco}");
        }
        assert!(Scheme::from_osv_ecosystem("Maven").is_err());
        assert!(Scheme::from_osv_ecosystem("").is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in Scheme::ALL {
            assert_eq!(s.name().parse::<Scheme>(), Ok(s));
        }
        assert!("deb".parse::<Scheme>().is_err());
    }

    #[test]
    fn versions_of_different_schemes_do_not_order() {
        let a = Scheme::Dpkg.parse("1.0").unwrap();
        let b = Scheme::Rpm.parse("1.0").unwrap();
        assert_eq!(a.compare(&b), None);
        assert_ne!(a, b);
    }
}
