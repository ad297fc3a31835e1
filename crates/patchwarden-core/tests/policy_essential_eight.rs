//! The `essential-eight-ml1|ml2|ml3` presets against the maturity model's patching controls
//! (November 2023), one case per row of its criteria, each test named after the rule it pins.
//! The fix was published at 2025-03-03T12:00Z: 48 hours is 2025-03-05T12:00Z, two weeks
//! 2025-03-17T12:00Z and one month 2025-04-03T12:00Z.

mod policy_support;

use patchwarden_core::policy::{Class, Exploitation, TechnicalImpact};
use policy_support::{Case, outcome, v3};

const ML1: &[&str] = &["essential-eight-ml1"];
const ML2: &[&str] = &["essential-eight-ml2"];
const ML3: &[&str] = &["essential-eight-ml3"];

#[test]
fn workstation_os_critical_ml1_one_month_vs_ml3_48_hours() {
    let case = Case::new("CVE-2025-0001")
        .vendor("Critical")
        .labels("role=workstation");
    assert_eq!(
        outcome(&case.under(ML1)),
        "medium by essential-eight-ml1/workstation-internal-os-1mo | due 2025-04-03T12:00:00Z \
         by essential-eight-ml1/workstation-internal-os-1mo"
    );
    assert_eq!(
        outcome(&case.under(ML3)),
        "emergency by essential-eight-ml3/workstation-internal-os-critical-48h | due \
         2025-03-05T12:00:00Z by essential-eight-ml3/workstation-internal-os-critical-48h"
    );
}

#[test]
fn online_services_critical_48h() {
    // A working exploit (CISA SSVC: proof of concept) counts like a critical rating.
    let case = Case::new("CVE-2025-0001")
        .cvss(v3::S7_5)
        .ssvc(Exploitation::Poc, false, TechnicalImpact::Partial)
        .labels("role=online_service");
    assert_eq!(
        outcome(&case.under(ML1)),
        "emergency by essential-eight-ml1/online-services-critical-48h | due \
         2025-03-05T12:00:00Z by essential-eight-ml1/online-services-critical-48h"
    );
}

#[test]
fn online_services_2w() {
    let case = Case::new("CVE-2025-0001")
        .cvss(v3::S7_5)
        .labels("role=online_service");
    assert_eq!(
        outcome(&case.under(ML1)),
        "high by essential-eight-ml1/online-services-2w | due 2025-03-17T12:00:00Z by \
         essential-eight-ml1/online-services-2w"
    );
}

#[test]
fn internet_facing_os_critical_48h() {
    let case = Case::new("CVE-2025-0001")
        .cvss(v3::S9_8)
        .labels("role=server,exposure=internet");
    assert_eq!(
        outcome(&case.under(ML1)),
        "emergency by essential-eight-ml1/internet-facing-os-critical-48h | due \
         2025-03-05T12:00:00Z by essential-eight-ml1/internet-facing-os-critical-48h"
    );
}

#[test]
fn internet_facing_os_2w() {
    for labels in ["role=server,exposure=internet", "role=internet_facing_os"] {
        let case = Case::new("CVE-2025-0001").cvss(v3::S8_9).labels(labels);
        assert_eq!(
            outcome(&case.under(ML1)),
            "high by essential-eight-ml1/internet-facing-os-2w | due 2025-03-17T12:00:00Z by \
             essential-eight-ml1/internet-facing-os-2w",
            "{labels}"
        );
    }
    // The same server inside the network has a month.
    let case = Case::new("CVE-2025-0001")
        .cvss(v3::S8_9)
        .labels("role=server,exposure=internal");
    assert_eq!(case.under(ML1).class, Some(Class::Medium));
}

#[test]
fn office_browser_email_pdf_security_2w() {
    let mut case = Case::new("CVE-2025-0001")
        .vendor("Critical")
        .labels("role=workstation");
    case.finding.package = "firefox-esr".into();
    case.finding.source_package = Some("firefox-esr".into());
    assert_eq!(
        outcome(&case.under(ML1)),
        "high by essential-eight-ml1/office-browser-email-pdf-security-2w | due \
         2025-03-17T12:00:00Z by essential-eight-ml1/office-browser-email-pdf-security-2w"
    );
}

#[test]
fn office_browser_email_pdf_security_critical_48h() {
    let mut case = Case::new("CVE-2025-0001")
        .vendor("Critical")
        .labels("role=workstation");
    case.finding.package = "libreoffice-core".into();
    case.finding.source_package = Some("libreoffice".into());
    let a = case.under(ML3);
    assert_eq!(a.class, Some(Class::Emergency));
    assert_eq!(a.due_at, Some(policy_support::ts("2025-03-05T12:00:00Z")));
    // Both 48-hour rules matched (the package and the workstation's OS); the first written won.
    assert_eq!(
        a.summary().class_rule.as_deref(),
        Some("office-browser-email-pdf-security-critical-48h")
    );
}

#[test]
fn other_applications_1mo() {
    // No role label: ML2's one month for every application still applies; ML1 cannot tell
    // which of its rules applies and says so.
    let case = Case::new("CVE-2025-0001").cvss(v3::S7_5);
    assert_eq!(
        outcome(&case.under(ML2)),
        "medium by essential-eight-ml2/other-applications-1mo | due 2025-04-03T12:00:00Z by \
         essential-eight-ml2/other-applications-1mo"
    );
    let a = case.under(ML1);
    assert_eq!(a.class, None);
    assert!(
        a.missing_sentences()
            .iter()
            .any(|s| s.starts_with("classified without the asset's role")),
        "{:?}",
        a.missing_sentences()
    );
}

#[test]
fn drivers_firmware_critical_48h() {
    let mut case = Case::new("CVE-2025-0001")
        .cvss(v3::S9_0)
        .labels("role=workstation");
    case.finding.package = "intel-microcode".into();
    case.finding.source_package = Some("intel-microcode".into());
    let a = case.under(ML3);
    assert_eq!(a.class, Some(Class::Emergency));
    assert!(
        a.verdicts[0]
            .matched
            .iter()
            .any(|m| m.rule == "drivers-firmware-critical-48h")
    );
}

#[test]
fn drivers_firmware_1mo() {
    let mut case = Case::new("CVE-2025-0001").cvss(v3::S6_9);
    case.finding.package = "firmware-misc-nonfree".into();
    case.finding.source_package = Some("firmware-nonfree".into());
    let a = case.under(ML3);
    assert_eq!(a.class, Some(Class::Medium));
    assert!(
        a.verdicts[0]
            .matched
            .iter()
            .any(|m| m.rule == "drivers-firmware-1mo")
    );
}
