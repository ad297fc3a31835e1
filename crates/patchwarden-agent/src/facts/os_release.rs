//! Which operating system a host runs, from `os-release` or the older files that came before
//! it (`lsb-release`, `redhat-release`, `alpine-release`), and the OSV ecosystem its advisories
//! are filed under.
//!
//! The parsers are pure functions from text to [`OsInfo`], tested on a hundred real files from
//! many distributions and releases. They are lenient as the distributions' own readers are:
//! leading blanks, comments, stray lines and unquoted or single-quoted values are accepted;
//! unknown keys are ignored.

use std::collections::BTreeMap;

use patchwarden_core::inventory::OsInfo;

/// Parses `os-release` (or `lsb-release`, which has the same syntax) into its key/value pairs.
/// Lines that are not `KEY=value` are skipped.
pub fn parse_key_values(text: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            continue;
        }
        fields.insert(key.to_string(), unquote(value.trim()));
    }
    fields
}

/// Removes shell-style quotes: `"…"` with backslash escapes, or `'…'` taken literally.
fn unquote(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return inner.to_string();
    }
    let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn non_empty(fields: &BTreeMap<String, String>, key: &str) -> Option<String> {
    fields
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(String::from)
}

/// [`OsInfo`] from the text of an `os-release` file.
pub fn from_os_release(text: &str) -> OsInfo {
    let f = parse_key_values(text);
    // The specification's default when ID is missing.
    let id = non_empty(&f, "ID")
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_else(|| "linux".into());
    let version_id = non_empty(&f, "VERSION_ID");
    let version = non_empty(&f, "VERSION");
    let codename = non_empty(&f, "VERSION_CODENAME")
        .or_else(|| non_empty(&f, "UBUNTU_CODENAME"))
        .or_else(|| {
            version
                .as_deref()
                .and_then(|v| codename_from_version(&id, v))
        });
    let pretty_name = non_empty(&f, "PRETTY_NAME").or_else(|| {
        let name = non_empty(&f, "NAME")?;
        Some(match &version {
            Some(v) => format!("{name} {v}"),
            None => name,
        })
    });
    let id_like = non_empty(&f, "ID_LIKE")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let ecosystem = osv_ecosystem(&EcosystemInput {
        id: &id,
        version_id: version_id.as_deref(),
        lts_hint: [version.as_deref(), non_empty(&f, "PRETTY_NAME").as_deref()]
            .into_iter()
            .flatten()
            .any(|s| s.contains("LTS")),
    });
    OsInfo {
        id,
        version_id,
        codename,
        pretty_name,
        id_like,
        ecosystem,
    }
}

/// Old Debian and Ubuntu releases have no `VERSION_CODENAME`, but name the release in
/// `VERSION`: `7 (wheezy)`, `Debian GNU/Linux 10 (buster)`, `18.04.3 LTS (Bionic Beaver)`,
/// `14.04.6 LTS, Trusty Tahr`. Ubuntu's codename is the first word of the release name.
fn codename_from_version(id: &str, version: &str) -> Option<String> {
    let name = match (version.find('('), version.rfind(')')) {
        (Some(open), Some(close)) if open < close => version.get(open + 1..close)?,
        _ => version.split_once(", ").map(|(_, n)| n)?,
    };
    let word = match id {
        "debian" if !name.contains(' ') => name,
        "ubuntu" => name.split_whitespace().next()?,
        _ => return None,
    };
    let word = word.to_ascii_lowercase();
    word.bytes()
        .all(|b| b.is_ascii_lowercase())
        .then_some(word)
        .filter(|w| !w.is_empty())
}

/// [`OsInfo`] from `/etc/lsb-release` (`DISTRIB_ID`, `DISTRIB_RELEASE`, `DISTRIB_CODENAME`,
/// `DISTRIB_DESCRIPTION`), which Ubuntu hosts older than os-release have.
pub fn from_lsb_release(text: &str) -> Option<OsInfo> {
    let f = parse_key_values(text);
    let id = non_empty(&f, "DISTRIB_ID")?.to_ascii_lowercase();
    let version_id = non_empty(&f, "DISTRIB_RELEASE");
    let pretty_name = non_empty(&f, "DISTRIB_DESCRIPTION");
    let ecosystem = osv_ecosystem(&EcosystemInput {
        id: &id,
        version_id: version_id.as_deref(),
        lts_hint: pretty_name.as_deref().is_some_and(|p| p.contains("LTS")),
    });
    Some(OsInfo {
        codename: non_empty(&f, "DISTRIB_CODENAME").map(|c| c.to_ascii_lowercase()),
        id,
        version_id,
        pretty_name,
        id_like: Vec::new(),
        ecosystem,
    })
}

/// [`OsInfo`] from the one line of `/etc/redhat-release` (`Red Hat Enterprise Linux Server
/// release 7.4 (Maipo)`, `CentOS Linux release 7.9.2009 (Core)`, `Rocky Linux release 9.2
/// (Blue Onyx)` …). `None` when the line names no release.
pub fn from_redhat_release(text: &str) -> Option<OsInfo> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let (name, rest) = line.split_once(" release ")?;
    let version_id = rest.split_whitespace().next()?.to_string();
    // The distributions that ship this file, by the name they write in it.
    const NAMES: &[(&str, &str)] = &[
        ("Red Hat Enterprise Linux", "rhel"),
        ("CentOS Stream", "centos"),
        ("CentOS", "centos"),
        ("Rocky Linux", "rocky"),
        ("AlmaLinux", "almalinux"),
        ("Oracle Linux", "ol"),
        ("Fedora", "fedora"),
    ];
    let id = NAMES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, id)| (*id).to_string())
        .unwrap_or_else(|| {
            name.split_whitespace()
                .next()
                .unwrap_or(name)
                .to_lowercase()
        });
    let ecosystem = osv_ecosystem(&EcosystemInput {
        id: &id,
        version_id: Some(&version_id),
        lts_hint: false,
    });
    Some(OsInfo {
        id,
        version_id: Some(version_id),
        codename: None,
        pretty_name: Some(line.to_string()),
        id_like: Vec::new(),
        ecosystem,
    })
}

/// [`OsInfo`] from `/etc/alpine-release`, which holds just the version (`3.19.1`).
pub fn from_alpine_release(text: &str) -> Option<OsInfo> {
    let version = text.lines().next()?.trim();
    if version.is_empty() {
        return None;
    }
    let minor = major_minor(version);
    Some(OsInfo {
        id: "alpine".into(),
        version_id: Some(version.into()),
        codename: None,
        pretty_name: Some(match &minor {
            Some((major, minor)) => format!("Alpine Linux v{major}.{minor}"),
            None => format!("Alpine Linux {version}"),
        }),
        id_like: Vec::new(),
        ecosystem: osv_ecosystem(&EcosystemInput {
            id: "alpine",
            version_id: Some(version),
            lts_hint: false,
        }),
    })
}

/// What the OSV ecosystem of an operating system depends on.
#[derive(Debug, Clone, Copy)]
pub struct EcosystemInput<'a> {
    /// os-release `ID`, lower case.
    pub id: &'a str,
    pub version_id: Option<&'a str>,
    /// Whether the release calls itself LTS (Ubuntu writes it in `VERSION`).
    pub lts_hint: bool,
}

/// The OSV ecosystem that advisories for this operating system are filed under, spelled as
/// OSV spells it: `Debian:12`, `Ubuntu:22.04:LTS`, `Ubuntu:23.10`, `Alpine:v3.19`,
/// `AlmaLinux:9`, `Rocky Linux:9`, `openSUSE:Leap 15.5`, `SUSE:Linux Enterprise Server 15 SP5`,
/// `Mageia:9`, `Wolfi`, `Chainguard`.
///
/// Red Hat files advisories per repository (`Red Hat:enterprise_linux:9::appstream`,
/// `…::baseos`), so a RHEL host gets the prefix `Red Hat:enterprise_linux:9` that all of its
/// repositories' ecosystems start with.
///
/// `None` when OSV has no ecosystem for the system (Fedora, CentOS, Oracle Linux), or when the
/// release is not known (Debian testing has no `VERSION_ID`, Alpine edge is not a release).
pub fn osv_ecosystem(input: &EcosystemInput<'_>) -> Option<String> {
    let version = input.version_id.map(str::trim).filter(|v| !v.is_empty());
    let major = || {
        let v = version?;
        let m = v.split('.').next()?;
        (!m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())).then(|| m.to_string())
    };
    match input.id {
        "debian" => Some(format!("Debian:{}", major()?)),
        "ubuntu" => {
            let (year, month) = major_minor(version?)?;
            // LTS releases are the April releases of even years (6.06 was the first, in June).
            let lts = input.lts_hint || (year % 2 == 0 && month == 4 && year >= 8);
            let base = format!("{year}.{month:02}");
            Some(if lts {
                format!("Ubuntu:{base}:LTS")
            } else {
                format!("Ubuntu:{base}")
            })
        }
        "alpine" => {
            let (major, minor) = major_minor(version?)?;
            Some(format!("Alpine:v{major}.{minor}"))
        }
        "almalinux" => Some(format!("AlmaLinux:{}", major()?)),
        "rocky" => Some(format!("Rocky Linux:{}", major()?)),
        "rhel" => Some(format!("Red Hat:enterprise_linux:{}", major()?)),
        "opensuse-leap" => Some(format!("openSUSE:Leap {}", version?)),
        "sles" => {
            let v = version?;
            Some(match v.split_once('.') {
                Some((major, sp)) if sp != "0" => {
                    format!("SUSE:Linux Enterprise Server {major} SP{sp}")
                }
                Some((major, _)) => format!("SUSE:Linux Enterprise Server {major}"),
                None => format!("SUSE:Linux Enterprise Server {v}"),
            })
        }
        "mageia" => Some(format!("Mageia:{}", version?)),
        "wolfi" => Some("Wolfi".into()),
        "chainguard" => Some("Chainguard".into()),
        _ => None,
    }
}

/// `3.19.1` → (3, 19); `22.04` → (22, 4). `None` unless both parts are plain numbers (Alpine
/// edge's `3.19_alpha20230901` is not a release).
fn major_minor(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_the_shell() {
        let f = parse_key_values(
            "A=\"x \\\"y\\\" \\$z\"\nB='lit\\eral'\nC=plain\n# D=comment\nbad line\nlower=no\n",
        );
        assert_eq!(f.get("A").map(String::as_str), Some("x \"y\" $z"));
        assert_eq!(f.get("B").map(String::as_str), Some("lit\\eral"));
        assert_eq!(f.get("C").map(String::as_str), Some("plain"));
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn ubuntu_lts_is_known_without_the_word() {
        let eco = |v| {
            osv_ecosystem(&EcosystemInput {
                id: "ubuntu",
                version_id: Some(v),
                lts_hint: false,
            })
        };
        assert_eq!(eco("24.04").as_deref(), Some("Ubuntu:24.04:LTS"));
        assert_eq!(eco("23.10").as_deref(), Some("Ubuntu:23.10"));
        assert_eq!(eco("21.04").as_deref(), Some("Ubuntu:21.04"));
    }

    #[test]
    fn sles_service_packs() {
        let eco = |v| {
            osv_ecosystem(&EcosystemInput {
                id: "sles",
                version_id: Some(v),
                lts_hint: false,
            })
        };
        assert_eq!(
            eco("15.5").as_deref(),
            Some("SUSE:Linux Enterprise Server 15 SP5")
        );
        assert_eq!(
            eco("15").as_deref(),
            Some("SUSE:Linux Enterprise Server 15")
        );
    }
}
