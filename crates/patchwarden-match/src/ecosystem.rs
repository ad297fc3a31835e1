//! Which advisory ecosystems concern a host.
//!
//! Hosts and advisories both name their ecosystem as OSV spells it. Most must be equal
//! (`Debian:12`, `AlmaLinux:9`, `Alpine:v3.19`, `Ubuntu:22.04:LTS`). Red Hat splits one release
//! into products and repositories (`Red Hat:enterprise_linux:9::appstream`,
//! `…::baseos`), so a host of `Red Hat:enterprise_linux:9` takes every repository of its
//! release. Ubuntu Pro (`Ubuntu:Pro:…`) fixes are only for hosts attached to Pro, which a host
//! says by naming that ecosystem itself.

/// Whether advisories filed under `advisory` concern a host whose ecosystem is `host`.
pub fn ecosystem_applies(advisory: &str, host: &str) -> bool {
    if advisory == host {
        return true;
    }
    // A Red Hat host names its product and release; the advisory adds the repository after
    // an empty field: "Red Hat:enterprise_linux:9" ⊂ "Red Hat:enterprise_linux:9::appstream".
    host.starts_with("Red Hat:")
        && advisory.len() > host.len()
        && advisory.starts_with(host)
        && advisory[host.len()..].starts_with("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_must_agree() {
        assert!(ecosystem_applies("Debian:12", "Debian:12"));
        assert!(!ecosystem_applies("Debian:11", "Debian:12"));
        assert!(!ecosystem_applies("Debian", "Debian:12"));
        assert!(!ecosystem_applies(
            "Ubuntu:Pro:22.04:LTS",
            "Ubuntu:22.04:LTS"
        ));
        assert!(!ecosystem_applies("AlmaLinux:8", "AlmaLinux:9"));
    }

    #[test]
    fn red_hat_hosts_take_every_repository_of_their_release() {
        let host = "Red Hat:enterprise_linux:9";
        assert!(ecosystem_applies(
            "Red Hat:enterprise_linux:9::appstream",
            host
        ));
        assert!(ecosystem_applies(
            "Red Hat:enterprise_linux:9::baseos",
            host
        ));
        assert!(!ecosystem_applies(
            "Red Hat:enterprise_linux:8::appstream",
            host
        ));
        assert!(!ecosystem_applies(
            "Red Hat:enterprise_linux:90::appstream",
            host
        ));
    }
}
