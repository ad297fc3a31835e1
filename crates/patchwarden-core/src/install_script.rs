//! The install command the server shows an administrator for a new enrollment token: a shell
//! script that downloads the agent's package from the server, checks its SHA-256, installs it,
//! enrols the host and starts the agent (docs/install.md walks through it).
//!
//! The script's text is `packaging/install-agent.sh.in`, kept beside the packages it installs;
//! this module fills in its placeholders (`@SERVER@`, `@TOKEN@`, `@CA_FINGERPRINT@`,
//! `@PACKAGE_URL@`, `@SHA256@`). The result runs as root on every host it is pasted into, so
//! each value is checked before it goes in: every one lands inside single quotes or a comment,
//! and none may contain a quote, a newline or anything else that could end either. A value
//! that fails its check is an error naming it, never a script.

use thiserror::Error;

/// The script's template, with its placeholders.
pub const TEMPLATE: &str = include_str!("../../../packaging/install-agent.sh.in");

/// The longest URL accepted; real ones are a fraction of this.
const MAX_URL_LEN: usize = 2048;
/// The longest enrollment token accepted.
const MAX_TOKEN_LEN: usize = 512;

/// What the script of one enrollment token needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentInstall<'a> {
    /// The server's base URL as agents reach it, `https://…`.
    pub server: &'a str,
    /// The enrollment token (secret: it never appears in an error).
    pub token: &'a str,
    /// The SHA-256 fingerprint of the server's CA certificate, which the agent pins:
    /// `sha256:` and 64 hex digits, bare hex, or colon-separated pairs.
    pub ca_fingerprint: &'a str,
    /// Where the host downloads the agent's package, `https://…/….deb` or `….rpm`.
    pub package_url: &'a str,
    /// The package file's SHA-256, 64 hex digits.
    pub package_sha256: &'a str,
}

/// A value that cannot go into the script.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InstallScriptError {
    #[error(
        "the server URL {0:?} is not an https:// URL with a host, of at most 2048 letters, \
         digits and -._~:/?#[]@&+,;=%"
    )]
    Server(String),
    #[error(
        "the package URL {0:?} is not an https:// URL with a host ending in .deb or .rpm, of \
         at most 2048 letters, digits and -._~:/?#[]@&+,;=%"
    )]
    PackageUrl(String),
    /// The token itself is left out: error messages end up in logs.
    #[error(
        "the enrollment token is not 1 to 512 letters, digits and -._~+/= (its value is not shown)"
    )]
    Token,
    #[error(
        "{0:?} is not a certificate fingerprint: expected 64 hex digits, optionally after \
         \"sha256:\", optionally in colon-separated pairs"
    )]
    CaFingerprint(String),
    #[error("{0:?} is not a SHA-256: expected 64 hex digits")]
    Sha256(String),
}

/// The script for `install`, every placeholder filled in. The fingerprint is written as
/// `sha256:` and lower-case hex, the checksum as lower-case hex (what `sha256sum` prints).
pub fn render(install: &AgentInstall<'_>) -> Result<String, InstallScriptError> {
    let server = https_url(install.server)
        .ok_or_else(|| InstallScriptError::Server(shown(install.server)))?;
    let package_url = https_url(install.package_url)
        .filter(|u| u.ends_with(".deb") || u.ends_with(".rpm"))
        .ok_or_else(|| InstallScriptError::PackageUrl(shown(install.package_url)))?;
    let token = install.token;
    let token_ok = (1..=MAX_TOKEN_LEN).contains(&token.len())
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c));
    if !token_ok {
        return Err(InstallScriptError::Token);
    }
    let ca_fingerprint = fingerprint(install.ca_fingerprint)
        .ok_or_else(|| InstallScriptError::CaFingerprint(shown(install.ca_fingerprint)))?;
    let sha256 = hex64(install.package_sha256)
        .ok_or_else(|| InstallScriptError::Sha256(shown(install.package_sha256)))?;
    Ok(fill(
        TEMPLATE,
        &[
            ("@SERVER@", server),
            ("@TOKEN@", token),
            ("@CA_FINGERPRINT@", &ca_fingerprint),
            ("@PACKAGE_URL@", package_url),
            ("@SHA256@", &sha256),
        ],
    ))
}

/// The line that ends the script in [`paste_command`]; no line of the template is this, and
/// no value can add a line.
pub const PASTE_END: &str = "PATCHWARDEN_INSTALL_SCRIPT";

/// `script` as one command to paste into a root shell on the host: it writes the script to a
/// new private file (`mktemp`: mode 0600, so the token in it is not readable by other users),
/// runs it with `sh`, removes the file whatever happened, and ends with the script's status.
/// The script is not piped into `sh`, because the package managers it runs read their
/// standard input and would eat the rest of the script.
pub fn paste_command(script: &str) -> String {
    let mut out = format!(
        "f=$(mktemp) && cat > \"$f\" <<'{PASTE_END}' && sh \"$f\"; status=$?; rm -f \"$f\"; \
         (exit \"$status\")\n"
    );
    out.push_str(script);
    if !script.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(PASTE_END);
    out.push('\n');
    out
}

/// Replaces the placeholders in one pass from left to right, so that a value which happens
/// to contain a placeholder's name is never itself filled in.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(at) = rest.find('@') {
        let (before, from_at) = rest.split_at(at);
        out.push_str(before);
        match values.iter().find(|(name, _)| from_at.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &from_at[name.len()..];
            }
            None => {
                out.push('@');
                rest = &from_at[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `url` if it is `https://` and a non-empty host, within the length limit, of characters
/// that are inert inside single quotes and a comment line.
fn https_url(url: &str) -> Option<&str> {
    let after_scheme = url.strip_prefix("https://")?;
    let host_starts = after_scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '[');
    let chars_ok = url
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@&+,;=%".contains(c));
    (url.len() <= MAX_URL_LEN && host_starts && chars_ok).then_some(url)
}

/// `sha256:` and the lower-case hex of a fingerprint in any of its usual spellings.
fn fingerprint(text: &str) -> Option<String> {
    let body = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("SHA256:"))
        .unwrap_or(text);
    let digits: String = if body.contains(':') {
        // Colon-separated pairs: every group exactly two digits.
        let groups: Vec<&str> = body.split(':').collect();
        if groups.iter().any(|g| g.len() != 2) {
            return None;
        }
        groups.concat()
    } else {
        body.to_owned()
    };
    hex64(&digits).map(|hex| format!("sha256:{hex}"))
}

/// The lower-case form of exactly 64 hex digits.
fn hex64(text: &str) -> Option<String> {
    (text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// A rejected value as an error shows it: at most 120 characters, so that a hostile megabyte
/// does not end up in a log line.
fn shown(value: &str) -> String {
    value.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn valid() -> AgentInstall<'static> {
        AgentInstall {
            server: "https://patchwarden.example.org:8443",
            token: "pwe_3q2-7Yx~k.Z+/w==",
            ca_fingerprint: "SHA256:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
            package_url: "https://patchwarden.example.org:8443/downloads/patchwarden_0.1.0_amd64.deb",
            package_sha256: "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
        }
    }

    #[test]
    fn the_template_has_every_placeholder() {
        for name in [
            "@SERVER@",
            "@TOKEN@",
            "@CA_FINGERPRINT@",
            "@PACKAGE_URL@",
            "@SHA256@",
        ] {
            assert!(
                TEMPLATE.contains(name),
                "{name} is missing from the template"
            );
        }
    }

    #[test]
    fn render_fills_every_placeholder_with_normalised_values() {
        let script = render(&valid()).unwrap();
        assert!(!script.contains("@SERVER@") && !script.contains("@TOKEN@"));
        assert!(!script.contains("@CA_FINGERPRINT@") && !script.contains("@SHA256@"));
        assert!(!script.contains("@PACKAGE_URL@"));
        let assignments: Vec<&str> = script
            .lines()
            .filter(|l| l.contains("='") && !l.starts_with(' '))
            .collect();
        assert_eq!(
            assignments,
            [
                "SERVER='https://patchwarden.example.org:8443'",
                "TOKEN='pwe_3q2-7Yx~k.Z+/w=='",
                "CA_FINGERPRINT='sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789'",
                "PACKAGE_URL='https://patchwarden.example.org:8443/downloads/patchwarden_0.1.0_amd64.deb'",
                &format!("SHA256='{SHA}'"),
            ]
        );
        assert!(script.contains("with the server https://patchwarden.example.org:8443.\n"));
    }

    #[test]
    fn the_paste_command_holds_the_script_whole_and_ends_once() {
        let script = render(&valid()).unwrap();
        let paste = paste_command(&script);
        let lines: Vec<&str> = paste.lines().collect();
        assert!(lines[0].starts_with("f=$(mktemp) && cat > \"$f\" <<'PATCHWARDEN_INSTALL_SCRIPT'"));
        assert_eq!(lines.iter().filter(|l| **l == PASTE_END).count(), 1);
        assert_eq!(lines.last(), Some(&PASTE_END));
        assert_eq!(lines[1..lines.len() - 1].join("\n") + "\n", script);
        assert!(!TEMPLATE.lines().any(|l| l.trim() == PASTE_END));
    }

    #[test]
    fn fingerprints_are_read_in_their_usual_spellings() {
        let bare = "ab".repeat(32);
        let expected = format!("sha256:{bare}");
        for spelling in [
            bare.clone(),
            bare.to_uppercase(),
            format!("sha256:{bare}"),
            vec!["AB"; 32].join(":"),
        ] {
            assert_eq!(fingerprint(&spelling).as_deref(), Some(expected.as_str()));
        }
    }

    #[test]
    fn a_value_naming_a_placeholder_is_not_filled_in_again() {
        let install = AgentInstall {
            server: "https://pw.example.org/@TOKEN@",
            ..valid()
        };
        let script = render(&install).unwrap();
        assert!(script.contains("SERVER='https://pw.example.org/@TOKEN@'"));
    }

    #[test]
    fn malformed_values_are_refused_with_their_name() {
        let not_hex = "g".repeat(64);
        let cases: &[(AgentInstall<'_>, InstallScriptError)] = &[
            (
                AgentInstall {
                    server: "http://pw.example.org",
                    ..valid()
                },
                InstallScriptError::Server("http://pw.example.org".into()),
            ),
            (
                AgentInstall {
                    server: "https://",
                    ..valid()
                },
                InstallScriptError::Server("https://".into()),
            ),
            (
                AgentInstall {
                    server: "https://pw.example.org'; rm -rf / #",
                    ..valid()
                },
                InstallScriptError::Server("https://pw.example.org'; rm -rf / #".into()),
            ),
            (
                AgentInstall {
                    server: "https://pw.example.org\ncurl evil | sh",
                    ..valid()
                },
                InstallScriptError::Server("https://pw.example.org\ncurl evil | sh".into()),
            ),
            (
                AgentInstall {
                    package_url: "https://pw.example.org/patchwarden.tar.gz",
                    ..valid()
                },
                InstallScriptError::PackageUrl("https://pw.example.org/patchwarden.tar.gz".into()),
            ),
            (
                AgentInstall {
                    package_url: "https://pw.example.org/$(reboot).deb",
                    ..valid()
                },
                InstallScriptError::PackageUrl("https://pw.example.org/$(reboot).deb".into()),
            ),
            (
                AgentInstall {
                    token: "",
                    ..valid()
                },
                InstallScriptError::Token,
            ),
            (
                AgentInstall {
                    token: "abc'def",
                    ..valid()
                },
                InstallScriptError::Token,
            ),
            (
                AgentInstall {
                    ca_fingerprint: "sha256:abcd",
                    ..valid()
                },
                InstallScriptError::CaFingerprint("sha256:abcd".into()),
            ),
            (
                AgentInstall {
                    ca_fingerprint: "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
                    ..valid()
                },
                InstallScriptError::CaFingerprint(
                    "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709".into(),
                ),
            ),
            (
                AgentInstall {
                    ca_fingerprint: "ABC:D",
                    ..valid()
                },
                InstallScriptError::CaFingerprint("ABC:D".into()),
            ),
            (
                AgentInstall {
                    package_sha256: &not_hex,
                    ..valid()
                },
                InstallScriptError::Sha256(not_hex.clone()),
            ),
        ];
        for (install, expected) in cases {
            assert_eq!(render(install).as_ref(), Err(expected), "{install:?}");
        }
    }

    #[test]
    fn the_token_never_appears_in_an_error() {
        let secret = "s3cret'token";
        let err = render(&AgentInstall {
            token: secret,
            ..valid()
        })
        .unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
    }

    #[test]
    fn oversized_values_are_refused_and_shown_cut() {
        let long = format!("https://pw.example.org/{}", "a".repeat(5000));
        let err = render(&AgentInstall {
            server: &long,
            ..valid()
        })
        .unwrap_err();
        assert_eq!(
            err,
            InstallScriptError::Server(long.chars().take(120).collect())
        );
        let token = "a".repeat(MAX_TOKEN_LEN + 1);
        let err = render(&AgentInstall {
            token: &token,
            ..valid()
        })
        .unwrap_err();
        assert_eq!(err, InstallScriptError::Token);
    }
}
