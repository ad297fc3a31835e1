//! The raw form of a policy file: what TOML deserialises into before anything is checked.
//!
//! Every value people write is kept with where it was written (`toml::Spanned`), so that the
//! checker ([`super::check`]) can say on which line a problem is; unknown keys are refused
//! here (`deny_unknown_fields`), so a misspelt key is an error and never an ignored rule.
//! Words, thresholds and periods stay strings until the checker reads them, which lets it
//! report all of their problems at once, each in the file's own terms.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

/// A string or a list of strings.
#[derive(Debug, Clone)]
pub(super) struct Words(pub(super) Vec<String>);

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Words, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Words;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Words, E> {
                Ok(Words(vec![s.to_owned()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Words, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Words(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) policy: Spanned<RawHeader>,
    pub(super) clock: Option<Spanned<RawClock>>,
    pub(super) deadlines: Option<RawDeadlines>,
    pub(super) assume: Option<RawAssume>,
    pub(super) scope: Option<Spanned<RawCond>>,
    #[serde(default)]
    pub(super) rule: Vec<Spanned<RawRule>>,
    #[serde(default, rename = "override")]
    pub(super) overrides: Vec<Spanned<RawOverride>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader {
    pub(super) id: Spanned<String>,
    pub(super) title: Spanned<String>,
    pub(super) status: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClock {
    pub(super) start: Option<Spanned<String>>,
    pub(super) fallback: Option<Spanned<Words>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeadlines {
    pub(super) emergency: Option<Spanned<String>>,
    pub(super) high: Option<Spanned<String>>,
    pub(super) medium: Option<Spanned<String>>,
    pub(super) low: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAssume {
    pub(super) unknown_exposure: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) id: Spanned<String>,
    pub(super) description: Option<Spanned<String>>,
    pub(super) when: Option<Spanned<RawCond>>,
    pub(super) class: Option<Spanned<String>>,
    pub(super) due: Option<Spanned<String>>,
    pub(super) clock: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) supersede: bool,
    #[serde(default)]
    pub(super) milestones: Vec<Spanned<RawMilestone>>,
    #[serde(default)]
    pub(super) actions: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMilestone {
    pub(super) name: Spanned<String>,
    pub(super) within: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOverride {
    pub(super) vulnerability: Spanned<String>,
    pub(super) host: Option<Spanned<String>>,
    pub(super) package: Option<Spanned<String>>,
    pub(super) class: Spanned<String>,
    pub(super) reason: Option<Spanned<String>>,
    pub(super) due: Option<Spanned<String>>,
    pub(super) clock: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCond {
    pub(super) kev: Option<bool>,
    pub(super) kev_known: Option<bool>,
    pub(super) kev_ransomware: Option<bool>,
    pub(super) epss: Option<Spanned<String>>,
    pub(super) epss_percentile: Option<Spanned<String>>,
    pub(super) cvss: Option<Spanned<String>>,
    pub(super) cvss_v2: Option<Spanned<String>>,
    pub(super) cvss_v3: Option<Spanned<String>>,
    pub(super) cvss_v4: Option<Spanned<String>>,
    pub(super) cvss_metrics: Option<Spanned<BTreeMap<String, Words>>>,
    pub(super) vendor_severity: Option<Spanned<Words>>,
    pub(super) cvss_known: Option<bool>,
    pub(super) no_severity: Option<bool>,
    pub(super) fix_available: Option<bool>,
    pub(super) ssvc_known: Option<bool>,
    pub(super) ssvc_exploitation: Option<Spanned<Words>>,
    pub(super) ssvc_automatable: Option<bool>,
    pub(super) ssvc_technical_impact: Option<Spanned<Words>>,
    pub(super) exposure: Option<Spanned<Words>>,
    pub(super) role: Option<Spanned<Words>>,
    pub(super) tag: Option<Spanned<Words>>,
    pub(super) asset_criticality: Option<Spanned<Words>>,
    pub(super) package: Option<Spanned<Words>>,
    pub(super) any: Option<Spanned<Vec<Spanned<RawCond>>>>,
    pub(super) all: Option<Spanned<Vec<Spanned<RawCond>>>>,
    pub(super) not: Option<Box<Spanned<RawCond>>>,
}
