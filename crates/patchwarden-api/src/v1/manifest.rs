//! The manifest of an approved change, as one job carries it to one host: the exact packages
//! and versions, the host it is for, when it may run, when it expires, who requested, approved
//! and authorised it, the services to restart in order and the health checks that verify it.
//!
//! The agent checks the manifest before it acts ([`Manifest::check`]): a job for another host,
//! an expired one, one outside its window, one whose packages differ from its manifest, or one
//! that does not carry two different people's approval is refused and reported, and nothing is
//! touched. The manifest is self-contained and has one canonical byte form
//! ([`Manifest::canonical`]) with a SHA-256 digest, so the next step — approvers signing the
//! digest with keys the server never holds — needs no change here: whoever takes over the
//! server still cannot make an agent install anything no approver signed.
//!
//! Health checks are a closed set of typed probes on the host itself (a systemd unit is
//! active, a loopback TCP port accepts, a loopback HTTP path answers with a status), never a
//! command: the server cannot make an agent run anything, through a job or through its manifest.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::jobs::PackagePin;

/// The manifest format this build writes and accepts.
pub const MANIFEST_VERSION: u32 = 1;
/// The most packages one manifest names.
pub const MAX_PACKAGES: usize = 2000;
/// The most units to restart and health checks one manifest names.
pub const MAX_STEPS: usize = 64;
/// The longest name (package, version, unit, person) a manifest carries.
pub const MAX_NAME: usize = 256;

/// What the job does with the manifest's packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestAction {
    /// Install exactly these versions (upgrades only, for a patch).
    Install,
    /// Return to exactly these versions (the ones recorded before an install job).
    Rollback,
}

/// How the change is treated, as the manifest records it (the change request's kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestKind {
    Standard,
    Normal,
    Emergency,
}

/// In what capacity someone signed the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalRole {
    Approver,
    Authoriser,
}

/// One signature on the change form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub role: ApprovalRole,
    /// The account name, or `rule:NAME` for a standard change a policy rule pre-approved.
    pub by: String,
    pub at: Timestamp,
}

/// When the job may run: inside `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestWindow {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A check the agent runs on its own host after installing, to verify the change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case", deny_unknown_fields)]
pub enum HealthCheck {
    /// `systemctl is-active UNIT` says `active`.
    ServiceActive { unit: String },
    /// A TCP connection to 127.0.0.1:PORT succeeds.
    TcpConnect { port: u16 },
    /// `GET http://127.0.0.1:PORT/PATH` answers with `status`.
    HttpStatus {
        port: u16,
        path: String,
        status: u16,
    },
}

/// The manifest of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The change request's number (`PCR-2026-0001`).
    pub change: String,
    pub kind: ManifestKind,
    /// The one host this manifest is for (its host id).
    pub host: String,
    pub action: ManifestAction,
    /// Exactly the packages and versions, sorted by name then architecture.
    pub packages: Vec<PackagePin>,
    /// When the job may run; `None` only for an emergency change, which may run at once.
    pub window: Option<ManifestWindow>,
    /// After this the manifest is void, whatever the window says.
    pub expires_at: Timestamp,
    pub issued_at: Timestamp,
    pub requester: String,
    pub approvals: Vec<Approval>,
    /// systemd units to restart after installing, in this order (the change's restart order).
    #[serde(default)]
    pub restart: Vec<String>,
    /// Whether the host may reboot to finish the change, when a package asks for it.
    #[serde(default)]
    pub reboot_allowed: bool,
    #[serde(default)]
    pub health_checks: Vec<HealthCheck>,
}

/// Why an agent refuses a manifest, in words for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest refused: {0}")]
pub struct ManifestRefusal(pub String);

impl Manifest {
    /// The manifest with its packages, approvals, and nothing else reordered into canonical
    /// order (packages by name and architecture, approvals by role then name).
    pub fn normalised(mut self) -> Manifest {
        self.packages.sort();
        self.approvals
            .sort_by(|a, b| (a.role, &a.by, a.at).cmp(&(b.role, &b.by, b.at)));
        self
    }

    /// The canonical bytes: the JSON of the normalised manifest, fields in declaration order,
    /// no whitespace. Two manifests with the same meaning have the same bytes.
    pub fn canonical(&self) -> Vec<u8> {
        // Serialising plain structs, strings, numbers and timestamps cannot fail.
        serde_json::to_vec(&self.clone().normalised()).unwrap_or_default()
    }

    /// Lower-case hex SHA-256 of [`Manifest::canonical`]: what an approver signs.
    pub fn digest(&self) -> String {
        let hash = Sha256::digest(self.canonical());
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether an agent on host `host_id` may act on this manifest at `now`, for a job of
    /// `action` on `packages`. Checks everything the manifest itself can prove: its form, its
    /// host, its time, its packages, and that two different people other than the requester
    /// approved and authorised it (or a policy rule, for a standard change).
    pub fn check(
        &self,
        host_id: &str,
        action: ManifestAction,
        packages: &[PackagePin],
        now: Timestamp,
    ) -> Result<(), ManifestRefusal> {
        let refuse = |why: String| Err(ManifestRefusal(why));
        if self.version != MANIFEST_VERSION {
            return refuse(format!(
                "manifest version {} is not the supported version {MANIFEST_VERSION}",
                self.version
            ));
        }
        if self.host != host_id {
            return refuse(format!(
                "it is for host {}, not this host ({host_id})",
                self.host
            ));
        }
        if self.action != action {
            return refuse(format!(
                "the job asks for {action:?} but its manifest says {:?}",
                self.action
            ));
        }
        if now >= self.expires_at {
            return refuse(format!("it expired at {}", self.expires_at));
        }
        match (self.window, self.kind) {
            (Some(w), _) if w.start >= w.end => {
                return refuse("its window ends before it starts".into());
            }
            (Some(w), _) if now < w.start || now >= w.end => {
                return refuse(format!(
                    "it may run only from {} to {}, and it is {now}",
                    w.start, w.end
                ));
            }
            (Some(_), _) | (None, ManifestKind::Emergency) => {}
            (None, _) => {
                return refuse("only an emergency change may run without a window".into());
            }
        }
        if self.packages.is_empty() {
            return refuse("it names no packages".into());
        }
        if self.packages.len() > MAX_PACKAGES {
            return refuse(format!("it names more than {MAX_PACKAGES} packages"));
        }
        check_steps(&self.restart, &self.health_checks)?;
        for p in &self.packages {
            check_name("package name", &p.name)?;
            check_name("package version", &p.version)?;
            if let Some(arch) = &p.arch {
                check_name("package architecture", arch)?;
            }
        }
        let mut mine: Vec<&PackagePin> = self.packages.iter().collect();
        let mut job: Vec<&PackagePin> = packages.iter().collect();
        mine.sort();
        job.sort();
        if mine != job {
            return refuse("the job's packages differ from its manifest's".into());
        }
        if mine
            .windows(2)
            .any(|w| w[0].name == w[1].name && w[0].arch == w[1].arch)
        {
            return refuse("it names a package twice".into());
        }
        self.check_approvals()
    }

    fn check_approvals(&self) -> Result<(), ManifestRefusal> {
        let by = |role: ApprovalRole| {
            self.approvals
                .iter()
                .filter(move |a| a.role == role)
                .map(|a| a.by.as_str())
        };
        let approver = by(ApprovalRole::Approver).next();
        let authoriser = by(ApprovalRole::Authoriser).next();
        let (Some(approver), Some(authoriser)) = (approver, authoriser) else {
            return Err(ManifestRefusal(
                "it lacks an approval or an authorisation".into(),
            ));
        };
        let rule = |name: &str| name.starts_with("rule:");
        // A standard change a policy rule raised is signed by that rule: the people who wrote
        // and approved the rule are its four eyes.
        let raised_by_rule = self.kind == ManifestKind::Standard && rule(&self.requester);
        if !raised_by_rule && self.approvals.iter().any(|a| a.by == self.requester) {
            return Err(ManifestRefusal(format!(
                "its requester ({}) also signed it",
                self.requester
            )));
        }
        if approver == authoriser && !(rule(approver) && self.kind == ManifestKind::Standard) {
            return Err(ManifestRefusal(format!(
                "the same person ({approver}) approved and authorised it"
            )));
        }
        if (rule(approver) || rule(authoriser)) && self.kind != ManifestKind::Standard {
            return Err(ManifestRefusal(
                "only a standard change is approved by a policy rule".into(),
            ));
        }
        Ok(())
    }
}

/// Whether a manifest's restarts and health checks are ones an agent accepts: at most
/// [`MAX_STEPS`] of each, systemd unit names, plain loopback paths. The server checks a change's
/// form with it before anyone signs it; the agent checks the manifest with it before acting.
pub fn check_steps(
    restart: &[String],
    health_checks: &[HealthCheck],
) -> Result<(), ManifestRefusal> {
    if restart.len() > MAX_STEPS || health_checks.len() > MAX_STEPS {
        return Err(ManifestRefusal(format!(
            "it names more than {MAX_STEPS} restarts or health checks"
        )));
    }
    for unit in restart {
        check_unit(unit)?;
    }
    for check in health_checks {
        match check {
            HealthCheck::ServiceActive { unit } => check_unit(unit)?,
            HealthCheck::TcpConnect { .. } => {}
            HealthCheck::HttpStatus { path, .. } => {
                if !path.starts_with('/')
                    || path.len() > MAX_NAME
                    || path.chars().any(|c| c.is_control() || c.is_whitespace())
                {
                    return Err(ManifestRefusal(format!(
                        "health check path {path:?} is not a plain path"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Whether `s` is a plain package name or version a manifest carries: not empty, not too
/// long, no whitespace or control characters, never an option.
pub fn check_name(what: &str, s: &str) -> Result<(), ManifestRefusal> {
    if s.is_empty()
        || s.len() > MAX_NAME
        || s.starts_with('-')
        || s.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ManifestRefusal(format!("{what} {s:?} is not a plain name")));
    }
    Ok(())
}

/// A systemd unit name: letters, digits and `:-_.@\`, with a suffix, never an option.
fn check_unit(unit: &str) -> Result<(), ManifestRefusal> {
    let ok = !unit.is_empty()
        && unit.len() <= MAX_NAME
        && !unit.starts_with('-')
        && unit.contains('.')
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.@\\".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ManifestRefusal(format!(
            "{unit:?} is not a systemd unit name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pin(name: &str, version: &str) -> PackagePin {
        PackagePin {
            name: name.into(),
            version: version.into(),
            arch: None,
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            change: "PCR-2026-0001".into(),
            kind: ManifestKind::Normal,
            host: "h1".into(),
            action: ManifestAction::Install,
            packages: vec![
                pin("openssl", "3.0.15-1~deb12u1"),
                pin("libssl3", "3.0.15-1~deb12u1"),
            ],
            window: Some(ManifestWindow {
                start: at("2026-11-10T20:00:00Z"),
                end: at("2026-11-10T23:00:00Z"),
            }),
            expires_at: at("2026-11-11T00:00:00Z"),
            issued_at: at("2026-11-09T12:00:00Z"),
            requester: "olive".into(),
            approvals: vec![
                Approval {
                    role: ApprovalRole::Authoriser,
                    by: "dora".into(),
                    at: at("2026-11-09T11:00:00Z"),
                },
                Approval {
                    role: ApprovalRole::Approver,
                    by: "amos".into(),
                    at: at("2026-11-09T10:00:00Z"),
                },
            ],
            restart: vec!["nginx.service".into()],
            reboot_allowed: false,
            health_checks: vec![HealthCheck::TcpConnect { port: 443 }],
        }
    }

    const IN_WINDOW: &str = "2026-11-10T21:00:00Z";

    fn check(m: &Manifest) -> Result<(), ManifestRefusal> {
        m.check(
            "h1",
            ManifestAction::Install,
            &[
                pin("libssl3", "3.0.15-1~deb12u1"),
                pin("openssl", "3.0.15-1~deb12u1"),
            ],
            at(IN_WINDOW),
        )
    }

    #[test]
    fn a_proper_manifest_passes_and_its_digest_ignores_order() {
        let m = manifest();
        check(&m).unwrap();
        let mut reordered = m.clone();
        reordered.packages.reverse();
        reordered.approvals.reverse();
        assert_eq!(m.digest(), reordered.digest());
        assert_eq!(m.digest().len(), 64);
        let mut other = m.clone();
        other.packages[0].version = "3.0.16-1".into();
        assert_ne!(m.digest(), other.digest());
    }

    #[test]
    fn each_rule_refuses_with_its_reason() {
        type Mutation = Box<dyn Fn(&mut Manifest)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("not this host", Box::new(|m| m.host = "h2".into())),
            (
                "expired",
                Box::new(|m| m.expires_at = at("2026-11-10T20:30:00Z")),
            ),
            (
                "may run only from",
                Box::new(|m| {
                    m.window = Some(ManifestWindow {
                        start: at("2026-11-10T22:00:00Z"),
                        end: at("2026-11-10T23:00:00Z"),
                    })
                }),
            ),
            ("without a window", Box::new(|m| m.window = None)),
            (
                "differ",
                Box::new(|m| m.packages[0].version = "3.0.16-1".into()),
            ),
            (
                "requester",
                Box::new(|m| m.approvals[0].by = "olive".into()),
            ),
            (
                "same person",
                Box::new(|m| m.approvals[0].by = "amos".into()),
            ),
            ("lacks", Box::new(|m| m.approvals.truncate(1))),
            (
                "policy rule",
                Box::new(|m| m.approvals[0].by = "rule:low".into()),
            ),
            (
                "systemd unit",
                Box::new(|m| m.restart = vec!["--now".into()]),
            ),
            ("version", Box::new(|m| m.version = 2)),
            (
                "Rollback",
                Box::new(|m| m.action = ManifestAction::Rollback),
            ),
        ];
        for (why, change) in cases {
            let mut m = manifest();
            change(&mut m);
            let err = check(&m).expect_err(why);
            assert!(err.0.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn an_emergency_runs_without_a_window_and_a_rule_approves_only_standard_changes() {
        let mut m = manifest();
        m.kind = ManifestKind::Emergency;
        m.window = None;
        check(&m).unwrap();
        let mut standard = manifest();
        standard.kind = ManifestKind::Standard;
        for a in &mut standard.approvals {
            a.by = "rule:low-risk".into();
        }
        check(&standard).unwrap();
    }

    #[test]
    fn unknown_fields_and_health_checks_outside_the_set_do_not_parse() {
        let mut json = serde_json::to_value(manifest()).unwrap();
        json["command"] = "sh".into();
        assert!(serde_json::from_value::<Manifest>(json).is_err());
        let check = r#"{"check":"run","command":"rm -rf /"}"#;
        assert!(serde_json::from_str::<HealthCheck>(check).is_err());
    }
}
