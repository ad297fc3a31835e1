//! RHEL module streams: a fix applies only to the stream it was built for.
//!
//! On RHEL 8 and its rebuilds, `nodejs` may come from the `nodejs:14`, `:16` or `:18` module
//! stream, each with its own versions and its own advisories. Comparing a `nodejs:16` package
//! with a fix built for `nodejs:18` says "affected, fixed in 18.x" — a false alarm whose remedy
//! would be a stream switch, not a patch. So:
//!
//! - a modular build (release containing `.module`, as `1:14.21.1-2.module_el8.7.0+3373+…`)
//!   fixes only modular packages, and a non-modular build only non-modular ones;
//! - when both are modular and we know both streams, they must be equal. The installed
//!   package's stream comes from its `MODULARITYLABEL` (`nodejs:14:8070020230306:…`); the
//!   advisory's from the streams it names (AlmaLinux and Rocky put them in the summary:
//!   "Moderate: nodejs:14 security update").

/// Whether an rpm version was built in a module (its release carries `.module`).
pub(crate) fn is_modular_build(evr: &str) -> bool {
    evr.rsplit_once('-')
        .is_some_and(|(_, release)| release.contains("module"))
}

/// `name:stream` of a modularity label `name:stream:version:context`.
pub(crate) fn label_stream(label: &str) -> Option<&str> {
    let mut parts = label.splitn(3, ':');
    let name = parts.next()?;
    let stream = parts.next()?;
    (!name.is_empty() && !stream.is_empty()).then(|| &label[..name.len() + 1 + stream.len()])
}

/// The `name:stream` pairs an advisory's summary names ("Moderate: nodejs:14 security, bug
/// fix, and enhancement update" → `nodejs:14`; "Important: container-tools:rhel8 …").
pub(crate) fn summary_streams(summary: &str) -> Vec<String> {
    summary
        .split([' ', ','])
        .filter_map(|word| {
            let (name, stream) = word.split_once(':')?;
            let ok = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"._+-".contains(&c))
            };
            // "Moderate:" and other severity words end with the colon: no stream follows.
            (ok(name) && ok(stream)).then(|| word.to_owned())
        })
        .collect()
}

/// Whether a fix applies to an installed rpm package, as far as module streams tell.
/// Returns the reason when it does not.
pub(crate) fn stream_mismatch(
    installed_evr: &str,
    installed_label: Option<&str>,
    fixed_evr: &str,
    advisory_streams: &[Box<str>],
) -> Option<String> {
    let installed_modular = installed_label.is_some() || is_modular_build(installed_evr);
    let fix_modular = is_modular_build(fixed_evr);
    match (installed_modular, fix_modular) {
        (false, true) => Some(format!(
            "the fix {fixed_evr} is a module build and the installed package is not modular"
        )),
        (true, false) => Some(format!(
            "the installed package is a module build and the fix {fixed_evr} is not"
        )),
        (true, true) => {
            let stream = installed_label.and_then(label_stream)?;
            let stream_name = stream.split(':').next().unwrap_or(stream);
            let same_module: Vec<&str> = advisory_streams
                .iter()
                .map(|s| &**s)
                .filter(|s| s.split(':').next() == Some(stream_name))
                .collect();
            if same_module.is_empty() || same_module.contains(&stream) {
                None
            } else {
                Some(format!(
                    "the fix is for module stream {} and the installed package is from {stream}",
                    same_module.join(", ")
                ))
            }
        }
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_streams() {
        assert_eq!(
            label_stream("nodejs:14:8070020230306:bd1311ed"),
            Some("nodejs:14")
        );
        assert_eq!(label_stream("nodejs"), None);
        assert_eq!(
            summary_streams("Moderate: nodejs:14 security, bug fix, and enhancement update"),
            ["nodejs:14"]
        );
        assert_eq!(
            summary_streams("Important: container-tools:rhel8 and idm:DL1 security update"),
            ["container-tools:rhel8", "idm:DL1"]
        );
        assert!(summary_streams("Important: kernel security update").is_empty());
    }

    #[test]
    fn streams_must_agree() {
        let fix = "1:18.19.0-1.module_el8.9.0+3729+9d5c8a0d";
        let streams: Vec<Box<str>> = vec!["nodejs:18".into()];
        let on_16 = "1:16.20.2-4.module_el8.9.0+3700+6f5e0c9a";
        assert!(
            stream_mismatch(
                on_16,
                Some("nodejs:16:8090020231019:a7f3a1e0"),
                fix,
                &streams
            )
            .is_some()
        );
        assert!(
            stream_mismatch(fix, Some("nodejs:18:8090020231019:a7f3a1e0"), fix, &streams).is_none()
        );
        assert!(stream_mismatch("1:16.20.2-4.el8", None, fix, &streams).is_some());
        assert!(stream_mismatch(on_16, None, "1:16.20.2-5.el8", &[]).is_some());
        assert!(stream_mismatch("3.0.7-24.el9", None, "3.0.7-25.el9", &[]).is_none());
    }
}
