//! Severity: CVSS vectors with their computed base score, and the vendors' own ratings.
//!
//! Feeds publish CVSS vectors, rarely the score; the policy rules need the score. The score is
//! computed here, once, from the vector (the `cvss` crate implements the v2, v3.x and v4.0
//! equations), and kept in tenths so that it compares and hashes exactly. A vector that does
//! not parse is kept with the reason and no score: one bad vector must not cost the record.
//!
//! Vendors also rate advisories in their own words (Red Hat's "Important", Debian's urgency
//! "high**", Ubuntu's priority "medium"); [`VendorSeverity`] keeps the words and maps them onto
//! one [`SeverityLevel`] scale.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A CVSS score in tenths (0–100), so that 7.5 is exactly 75.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Score(u8);

impl Score {
    /// The score from tenths; `None` above 10.0.
    pub fn from_tenths(tenths: u8) -> Option<Score> {
        (tenths <= 100).then_some(Score(tenths))
    }

    /// The score from a float as the CVSS equations return it (already rounded to one decimal).
    fn from_f64(value: f64) -> Option<Score> {
        let tenths = (value * 10.0).round();
        (0.0..=100.0)
            .contains(&tenths)
            .then_some(Score(tenths as u8))
    }

    pub fn tenths(self) -> u8 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 10.0
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

impl Serialize for Score {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Score {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Score, D::Error> {
        let v = f64::deserialize(d)?;
        Score::from_f64(v)
            .ok_or_else(|| serde::de::Error::custom(format!("CVSS score {v} is not in 0.0–10.0")))
    }
}

/// Which CVSS version a vector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CvssVersion {
    #[serde(rename = "2.0")]
    V2 = 2,
    #[serde(rename = "3.0")]
    V3_0 = 3,
    #[serde(rename = "3.1")]
    V3_1 = 4,
    #[serde(rename = "4.0")]
    V4 = 5,
}

/// What kind of rating a [`Severity`] is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeverityKind {
    Cvss(CvssVersion),
    /// OSV's `Ubuntu` severity type: Ubuntu's priority word.
    Ubuntu,
    /// A type we do not know, kept as published.
    Other(String),
}

/// The qualitative scale every rating is mapped onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeverityLevel {
    /// Rated but unknown or not yet assigned.
    Unknown,
    /// CVSS 0.0, Debian's "unimportant", Ubuntu's "negligible".
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl SeverityLevel {
    /// CVSS's qualitative rating of a score. v2 has no "Critical" and no "None": 0.0–3.9 is
    /// Low, 4.0–6.9 Medium and 7.0–10.0 High.
    pub fn from_score(version: CvssVersion, score: Score) -> SeverityLevel {
        let t = score.tenths();
        if version == CvssVersion::V2 {
            return match t {
                0..=39 => SeverityLevel::Low,
                40..=69 => SeverityLevel::Medium,
                _ => SeverityLevel::High,
            };
        }
        match t {
            0 => SeverityLevel::None,
            1..=39 => SeverityLevel::Low,
            40..=69 => SeverityLevel::Medium,
            70..=89 => SeverityLevel::High,
            _ => SeverityLevel::Critical,
        }
    }
}

/// One severity rating: a vector or word, with the score and level computed from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Severity {
    pub kind: SeverityKind,
    /// The vector (`CVSS:3.1/AV:N/…`, `AV:N/AC:L/Au:N/C:P/I:P/A:P`) or word as published.
    pub vector: String,
    /// The base score computed from the vector.
    pub base_score: Option<Score>,
    pub level: Option<SeverityLevel>,
    /// Why the vector could not be scored, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Severity {
    /// A CVSS vector of any version, scored. `declared` is the version the feed claimed (OSV's
    /// `CVSS_V3` type) when it claimed one; a vector whose own prefix disagrees is an error.
    pub fn cvss(vector: &str, declared: Option<CvssVersion>) -> Severity {
        match score_vector(vector, true) {
            Ok((version, score)) => {
                let error = declared
                    .filter(|d| !same_major(*d, version))
                    .map(|d| format!("declared as CVSS {d:?} but the vector is CVSS {version:?}"));
                Severity {
                    kind: SeverityKind::Cvss(version),
                    vector: vector.into(),
                    base_score: Some(score),
                    level: Some(SeverityLevel::from_score(version, score)),
                    error,
                }
            }
            Err(e) => Severity {
                kind: SeverityKind::Cvss(declared.unwrap_or(CvssVersion::V3_1)),
                vector: vector.into(),
                base_score: None,
                level: None,
                error: Some(e),
            },
        }
    }

    /// Ubuntu's priority word (OSV `Ubuntu` severity type).
    pub fn ubuntu(priority: &str) -> Severity {
        Severity {
            kind: SeverityKind::Ubuntu,
            vector: priority.into(),
            base_score: None,
            level: Some(VendorSeverity::ubuntu(priority).level),
            error: None,
        }
    }
}

fn same_major(a: CvssVersion, b: CvssVersion) -> bool {
    use CvssVersion::*;
    matches!((a, b), (V2, V2) | (V3_0 | V3_1, V3_0 | V3_1) | (V4, V4))
}

/// The score of a CVSS vector exactly as written: for v4 with its threat and environmental
/// metrics (CVSS-BT, -BE, -BTE), which is what the `baseScore` of CVSS v4's JSON form (and so
/// of CSAF) holds; for v2 and v3 the base score. Documents that state a score are checked
/// against this.
pub fn vector_score(vector: &str) -> Result<(CvssVersion, Score), String> {
    score_vector(vector, false)
}

/// Parses and scores a CVSS vector. v2 vectors may be wrapped in parentheses (NVD's old
/// form) or prefixed `CVSS:2.0/`. With `base_only`, v4 threat and environmental metrics are
/// dropped before scoring, so the number is CVSS-B.
fn score_vector(vector: &str, base_only: bool) -> Result<(CvssVersion, Score), String> {
    let v = vector.trim();
    let v = v
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(v);
    let v = v.strip_prefix("CVSS:2.0/").unwrap_or(v);
    let (version, score) = if v.starts_with("CVSS:4.0/") {
        let base: Vec<&str> = v
            .split('/')
            .filter(|part| {
                if !base_only {
                    return true;
                }
                let key = part.split(':').next().unwrap_or("");
                matches!(
                    key,
                    "CVSS"
                        | "AV"
                        | "AC"
                        | "AT"
                        | "PR"
                        | "UI"
                        | "VC"
                        | "VI"
                        | "VA"
                        | "SC"
                        | "SI"
                        | "SA"
                )
            })
            .collect();
        let parsed = cvss::v4::Vector::from_str(&base.join("/")).map_err(|e| e.to_string())?;
        (CvssVersion::V4, parsed.score().value())
    } else if let Some(rest) = v.strip_prefix("CVSS:3.") {
        let parsed = cvss::v3::Vector::from_str(v).map_err(|e| e.to_string())?;
        let version = if rest.starts_with('0') {
            CvssVersion::V3_0
        } else {
            CvssVersion::V3_1
        };
        (version, parsed.base_score().value())
    } else if v.starts_with("CVSS:") {
        return Err(format!("unsupported CVSS version in {vector:?}"));
    } else {
        let parsed = cvss::v2::Vector::from_str(v).map_err(|e| e.to_string())?;
        (CvssVersion::V2, parsed.score().value())
    };
    let score = Score::from_f64(score)
        .ok_or_else(|| format!("CVSS vector {vector:?} scored {score}, outside 0–10"))?;
    Ok((version, score))
}

/// A vendor's own rating, normalised, with the words it used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VendorSeverity {
    /// Who rated: `Red Hat`, `AlmaLinux`, `Debian`, `Ubuntu`, a CSAF publisher's name.
    pub vendor: String,
    pub level: SeverityLevel,
    /// The rating exactly as published (`Important`, `high**`, `not yet assigned`).
    pub text: String,
}

impl VendorSeverity {
    /// Red Hat's impact scale (also AlmaLinux's, Rocky's, and CSAF's `aggregate_severity` of
    /// Red Hat documents): Critical, Important, Moderate, Low.
    pub fn red_hat(vendor: &str, text: &str) -> VendorSeverity {
        let level = match text.trim().to_ascii_lowercase().as_str() {
            "critical" => SeverityLevel::Critical,
            "important" | "high" => SeverityLevel::High,
            "moderate" | "medium" => SeverityLevel::Medium,
            "low" => SeverityLevel::Low,
            "none" => SeverityLevel::None,
            _ => SeverityLevel::Unknown,
        };
        VendorSeverity {
            vendor: vendor.into(),
            level,
            text: text.into(),
        }
    }

    /// The Debian security tracker's urgency. A trailing `*` or `**` marks an urgency that was
    /// not set by the security team (taken from NVD or guessed); the level is the same.
    pub fn debian(urgency: &str) -> VendorSeverity {
        let word = urgency.trim().trim_end_matches('*');
        let level = match word {
            "high" => SeverityLevel::High,
            "medium" => SeverityLevel::Medium,
            "low" => SeverityLevel::Low,
            "unimportant" => SeverityLevel::None,
            _ => SeverityLevel::Unknown,
        };
        VendorSeverity {
            vendor: "Debian".into(),
            level,
            text: urgency.into(),
        }
    }

    /// Ubuntu's priority.
    pub fn ubuntu(priority: &str) -> VendorSeverity {
        let level = match priority.trim().to_ascii_lowercase().as_str() {
            "critical" => SeverityLevel::Critical,
            "high" => SeverityLevel::High,
            "medium" => SeverityLevel::Medium,
            "low" => SeverityLevel::Low,
            "negligible" => SeverityLevel::None,
            _ => SeverityLevel::Unknown,
        };
        VendorSeverity {
            vendor: "Ubuntu".into(),
            level,
            text: priority.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(v: &str) -> String {
        let s = Severity::cvss(v, None);
        match (s.base_score, s.level, s.error) {
            (Some(score), Some(level), None) => format!("{:?} {score} {level:?}", s.kind),
            (_, _, e) => format!("error {e:?}"),
        }
    }

    #[test]
    fn base_scores_match_the_published_ones() {
        // Scores as NVD publishes them for these vectors.
        assert_eq!(
            scored("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            "Cvss(V3_1) 9.8 Critical"
        );
        assert_eq!(
            scored("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"),
            "Cvss(V3_1) 7.5 High"
        );
        assert_eq!(
            scored("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"),
            "Cvss(V3_0) 5.5 Medium"
        );
        assert_eq!(scored("AV:N/AC:L/Au:N/C:P/I:P/A:P"), "Cvss(V2) 7.5 High");
        assert_eq!(
            scored("(AV:N/AC:M/Au:N/C:N/I:P/A:N)"),
            "Cvss(V2) 4.3 Medium"
        );
        assert_eq!(scored("AV:L/AC:L/Au:N/C:C/I:C/A:C"), "Cvss(V2) 7.2 High");
        assert_eq!(
            scored("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
            "Cvss(V4) 9.3 Critical"
        );
        // Threat metrics do not change the base score.
        assert_eq!(
            scored("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U"),
            "Cvss(V4) 9.3 Critical"
        );
    }

    #[test]
    fn bad_vectors_keep_the_text_and_say_why() {
        for v in [
            "",
            "CVSS:3.1/AV:X",
            "CVSS:9.9/AV:N",
            "AV:N/AC:L",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:H",
            "\u{0}",
        ] {
            let s = Severity::cvss(v, Some(CvssVersion::V3_1));
            assert_eq!(s.base_score, None, "{v:?}");
            assert!(s.error.is_some(), "{v:?}");
            assert_eq!(s.vector, v);
        }
    }

    #[test]
    fn a_vector_of_another_version_than_declared_is_flagged() {
        let s = Severity::cvss(
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            Some(CvssVersion::V2),
        );
        assert_eq!(s.base_score.map(Score::tenths), Some(98));
        assert!(s.error.is_some());
    }

    #[test]
    fn vendor_words_map_onto_one_scale() {
        assert_eq!(
            VendorSeverity::red_hat("Red Hat", "Important").level,
            SeverityLevel::High
        );
        assert_eq!(VendorSeverity::debian("high**").level, SeverityLevel::High);
        assert_eq!(
            VendorSeverity::debian("not yet assigned").level,
            SeverityLevel::Unknown
        );
        assert_eq!(
            VendorSeverity::debian("unimportant").level,
            SeverityLevel::None
        );
        assert_eq!(
            VendorSeverity::ubuntu("negligible").level,
            SeverityLevel::None
        );
    }

    #[test]
    fn scores_serialise_as_numbers() {
        let s = Score::from_tenths(75).unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "7.5");
        let back: Score = serde_json::from_str("7.5").unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Score>("11").is_err());
    }
}
