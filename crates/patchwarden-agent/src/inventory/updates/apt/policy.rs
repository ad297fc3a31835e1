//! Parsers for what apt and dpkg print about a root: `apt-cache policy` (the package files
//! with their `Release` data, and each package's installed version, candidate and version
//! table), `apt-cache show` records, `apt-config dump`, and `dpkg-query -W` lines.
//!
//! They are pure functions from the C-locale text to values. Lines that fit none of the
//! shapes apt prints are refused with a [`UpdatesError::Malformed`] naming the line, so a
//! changed apt is noticed instead of silently misread; lines apt adds that we do not need
//! (`origin …` host names, `Pinned packages:` entries) are skipped on purpose.

use super::super::UpdatesError;

/// The `Release` data of one package file, as `apt-cache policy` prints it on its `release`
/// line (`v=12.5,o=Debian,a=stable,n=bookworm,l=Debian,c=main,b=amd64`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// `o=`: the `Origin:` field (`Debian`, `Ubuntu` …).
    pub origin: Option<String>,
    /// `l=`: the `Label:` field (`Debian-Security` …).
    pub label: Option<String>,
    /// `a=`: the archive, the `Suite:` field (`stable-security`, `jammy-updates` …).
    pub archive: Option<String>,
    /// `n=`: the `Codename:` field (`bookworm-security`, `jammy` …).
    pub codename: Option<String>,
    /// `v=`: the `Version:` field (`12.5`).
    pub version: Option<String>,
    /// `c=`: the component (`main`).
    pub component: Option<String>,
    /// `b=`: the architecture.
    pub arch: Option<String>,
    /// The host the file comes from (`origin deb.debian.org`), when apt prints one.
    pub site: Option<String>,
}

/// One package file of `apt-cache policy`'s "Package files:" list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// The file's default pin priority (500, 100 for not-automatic-but-upgrades, 1 …).
    pub priority: i32,
    /// apt's description of the file (`file:/srv/repo bookworm-security/main amd64 Packages`
    /// or `/var/lib/dpkg/status`): the key by which the version tables refer to it.
    pub description: String,
    pub release: ReleaseInfo,
}

/// Parses the output of `apt-cache policy` without arguments.
pub fn parse_package_files(text: &str) -> Result<Vec<PackageFile>, UpdatesError> {
    const WHAT: &str = "apt-cache policy";
    let mut files: Vec<PackageFile> = Vec::new();
    let mut in_files = false;
    let mut seen_header = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line == "Package files:" {
            in_files = true;
            seen_header = true;
            continue;
        }
        if line == "Pinned packages:" {
            in_files = false;
            continue;
        }
        if !in_files || line.trim().is_empty() {
            // The "Pinned packages:" list repeats what the version tables already say.
            continue;
        }
        if let Some(rest) = line.strip_prefix("     ") {
            let Some(file) = files.last_mut() else {
                return Err(UpdatesError::malformed(
                    WHAT,
                    n,
                    "a detail line before any package file",
                    line,
                ));
            };
            if let Some(fields) = rest.strip_prefix("release ") {
                file.release = parse_release_line(fields)
                    .map_err(|reason| UpdatesError::malformed(WHAT, n, reason, line))?;
            } else if let Some(site) = rest.strip_prefix("origin ") {
                file.release.site = Some(site.trim().to_owned());
            } else {
                return Err(UpdatesError::malformed(
                    WHAT,
                    n,
                    "expected `release …` or `origin …`",
                    line,
                ));
            }
        } else if let Some(rest) = line.strip_prefix(' ') {
            let (priority, description) = split_priority(rest).ok_or_else(|| {
                UpdatesError::malformed(WHAT, n, "expected `<priority> <package file>`", line)
            })?;
            files.push(PackageFile {
                priority,
                description: description.to_owned(),
                release: ReleaseInfo::default(),
            });
        } else {
            return Err(UpdatesError::malformed(
                WHAT,
                n,
                "unexpected line in the package file list",
                line,
            ));
        }
    }
    if !seen_header {
        return Err(UpdatesError::malformed(
            WHAT,
            1,
            "no `Package files:` header",
            text.lines().next().unwrap_or(""),
        ));
    }
    Ok(files)
}

/// `v=12,o=Debian,a=stable,…` → a [`ReleaseInfo`]. Release fields do not contain commas in
/// practice (apt itself would print them ambiguously), so splitting on commas is sound.
fn parse_release_line(fields: &str) -> Result<ReleaseInfo, String> {
    let mut r = ReleaseInfo::default();
    for field in fields.trim().split(',') {
        let Some((key, value)) = field.split_once('=') else {
            return Err(format!("release field {field:?} has no `=`"));
        };
        let value = Some(value.to_owned());
        match key {
            "o" => r.origin = value,
            "l" => r.label = value,
            "a" => r.archive = value,
            "n" => r.codename = value,
            "v" => r.version = value,
            "c" => r.component = value,
            "b" => r.arch = value,
            // Fields a later apt may add are not ours to refuse.
            _ => {}
        }
    }
    Ok(r)
}

/// `500 rest` → (500, "rest"); priorities may be negative.
fn split_priority(s: &str) -> Option<(i32, &str)> {
    let (num, rest) = s.split_once(' ')?;
    let priority = num.parse().ok()?;
    (!rest.is_empty()).then_some((priority, rest))
}

/// One version in a package's version table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub version: String,
    /// The version's pin priority, after pinning.
    pub priority: i32,
    /// `Phased-Update-Percentage`, when apt marks the version `(phased N%)`.
    pub phased: Option<u8>,
    /// Whether this is the installed version (`***`).
    pub installed: bool,
    /// The package files that offer this version, by their description.
    pub files: Vec<String>,
}

/// One package's block of `apt-cache policy <names>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePolicy {
    /// The name as apt prints it: `name` for the native architecture (and `all`),
    /// `name:arch` for a foreign one.
    pub name: String,
    pub installed: Option<String>,
    pub candidate: Option<String>,
    pub versions: Vec<VersionEntry>,
}

/// Parses the output of `apt-cache policy name…`.
pub fn parse_package_policies(text: &str) -> Result<Vec<PackagePolicy>, UpdatesError> {
    const WHAT: &str = "apt-cache policy (packages)";
    let mut out: Vec<PackagePolicy> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let bad = |reason: &str| UpdatesError::malformed(WHAT, n, reason, line);
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let name = line
                .strip_suffix(':')
                .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
                .ok_or_else(|| bad("expected a package heading `name:`"))?;
            out.push(PackagePolicy {
                name: name.to_owned(),
                installed: None,
                candidate: None,
                versions: Vec::new(),
            });
            continue;
        }
        let Some(pkg) = out.last_mut() else {
            return Err(bad("an indented line before any package heading"));
        };
        if let Some(source) = line.strip_prefix("        ") {
            let entry = pkg
                .versions
                .last_mut()
                .ok_or_else(|| bad("a package file before any version"))?;
            let (_, description) = split_priority(source)
                .ok_or_else(|| bad("expected `<priority> <package file>`"))?;
            entry.files.push(description.to_owned());
        } else if let Some(rest) = line.strip_prefix(" *** ") {
            pkg.versions.push(
                parse_version_line(rest, true)
                    .ok_or_else(|| bad("expected `*** <version> <priority>`"))?,
            );
        } else if let Some(rest) = line.strip_prefix("     ") {
            pkg.versions.push(
                parse_version_line(rest, false)
                    .ok_or_else(|| bad("expected `<version> <priority>`"))?,
            );
        } else if let Some(rest) = line.strip_prefix("  ") {
            let (key, value) = rest
                .split_once(':')
                .ok_or_else(|| bad("expected `Key: value`"))?;
            let value = value.trim();
            let version = (value != "(none)" && !value.is_empty()).then(|| value.to_owned());
            match key {
                "Installed" => pkg.installed = version,
                "Candidate" => pkg.candidate = version,
                // "Version table:" introduces the lines above; other keys an apt may print
                // (older ones had "Package pin:") are not needed.
                _ => {}
            }
        } else {
            return Err(bad("unexpected indentation"));
        }
    }
    Ok(out)
}

/// `1.0-2 500` or `1.0-2 500 (phased 10%)`.
fn parse_version_line(rest: &str, installed: bool) -> Option<VersionEntry> {
    let mut words = rest.split(' ');
    let version = words.next().filter(|v| !v.is_empty())?;
    let priority = words.next()?.parse().ok()?;
    let phased = match (words.next(), words.next(), words.next()) {
        (None, _, _) => None,
        (Some("(phased"), Some(pct), None) => {
            let pct: u8 = pct.strip_suffix("%)")?.parse().ok()?;
            if pct > 100 {
                return None;
            }
            Some(pct)
        }
        _ => return None,
    };
    Some(VersionEntry {
        version: version.to_owned(),
        priority,
        phased,
        installed,
        files: Vec::new(),
    })
}

/// A package as `dpkg-query -W -f "$DPKG_QUERY_FORMAT"` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    pub name: String,
    pub arch: String,
    pub version: String,
    /// dpkg's selection is `hold`: apt will not change the package.
    pub held: bool,
}

/// The `dpkg-query` format [`parse_dpkg_query`] reads: name, architecture, version and the
/// abbreviated status (want, status, error flag).
pub const DPKG_QUERY_FORMAT: &str =
    "${Package}\\t${Architecture}\\t${Version}\\t${db:Status-Abbrev}\\n";

/// Parses `dpkg-query -W -f "$DPKG_QUERY_FORMAT"`, keeping the packages whose files are on
/// the host: everything but `not-installed` and `config-files`, which is what apt counts as
/// installed (a package with a current version).
pub fn parse_dpkg_query(text: &str) -> Result<Vec<InstalledPackage>, UpdatesError> {
    const WHAT: &str = "dpkg-query";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, arch, version, abbrev] = fields.as_slice() else {
            return Err(UpdatesError::malformed(
                WHAT,
                n,
                "expected four tab-separated fields",
                line,
            ));
        };
        let mut status = abbrev.chars();
        let (Some(want), Some(state)) = (status.next(), status.next()) else {
            return Err(UpdatesError::malformed(
                WHAT,
                n,
                "the status abbreviation is too short",
                line,
            ));
        };
        if !"uihrp".contains(want) || !"ncHUFWti".contains(state) {
            return Err(UpdatesError::malformed(
                WHAT,
                n,
                "unknown status abbreviation",
                line,
            ));
        }
        if name.is_empty() || (state != 'n' && state != 'c' && version.is_empty()) {
            return Err(UpdatesError::malformed(
                WHAT,
                n,
                "a package without a name or version",
                line,
            ));
        }
        if state == 'n' || state == 'c' {
            continue;
        }
        out.push(InstalledPackage {
            name: (*name).to_owned(),
            arch: (*arch).to_owned(),
            version: (*version).to_owned(),
            held: want == 'h',
        });
    }
    Ok(out)
}

/// The source package of one binary version, from `apt-cache show name=version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOf {
    pub package: String,
    pub version: String,
    pub source: String,
    pub source_version: String,
}

/// Parses the deb822 records of `apt-cache show`: `Package`, `Version` and `Source`
/// (`src`, or `src (version)` when the source version differs; absent when both equal the
/// binary's).
pub fn parse_show_sources(text: &str) -> Result<Vec<SourceOf>, UpdatesError> {
    const WHAT: &str = "apt-cache show";
    let mut out = Vec::new();
    let mut fields: (Option<&str>, Option<&str>, Option<&str>) = (None, None, None);
    let mut start = 1;
    let mut finish = |f: &mut (Option<&str>, Option<&str>, Option<&str>),
                      line: usize|
     -> Result<(), UpdatesError> {
        let taken = std::mem::take(f);
        match taken {
            (None, None, None) => Ok(()),
            (Some(package), Some(version), source) => {
                let (source, source_version) = match source {
                    None => (package, version),
                    Some(s) => match s.split_once(' ') {
                        None => (s, version),
                        Some((name, v)) => {
                            let v = v.trim().strip_prefix('(').and_then(|v| v.strip_suffix(')'));
                            let v = v.ok_or_else(|| {
                                UpdatesError::malformed(
                                    WHAT,
                                    line,
                                    "Source is not `name (version)`",
                                    s,
                                )
                            })?;
                            (name, v)
                        }
                    },
                };
                out.push(SourceOf {
                    package: package.to_owned(),
                    version: version.to_owned(),
                    source: source.to_owned(),
                    source_version: source_version.to_owned(),
                });
                Ok(())
            }
            _ => Err(UpdatesError::malformed(
                WHAT,
                line,
                "a record without Package or Version",
                "",
            )),
        }
    };
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            finish(&mut fields, start)?;
            start = i + 2;
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(UpdatesError::malformed(
                WHAT,
                i + 1,
                "expected `Field: value`",
                line,
            ));
        };
        match key {
            "Package" => fields.0 = Some(value.trim()),
            "Version" => fields.1 = Some(value.trim()),
            "Source" => fields.2 = Some(value.trim()),
            _ => {}
        }
    }
    finish(&mut fields, start)?;
    Ok(out)
}

/// Reads one value from `apt-config dump` (`Key "value";` lines); `None` when unset.
pub fn config_value<'a>(dump: &'a str, key: &str) -> Option<&'a str> {
    dump.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(" \"")?;
        rest.strip_suffix("\";")
    })
}

/// apt's reading of a boolean option.
pub fn config_bool(dump: &str, key: &str) -> bool {
    matches!(
        config_value(dump, key)
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("1" | "yes" | "true" | "with" | "on" | "enable")
    )
}
