//! The presets shipped in the binary: one documented policy file per framework, embedded at
//! build time so that `patchwarden policy show NAME` prints exactly what is applied.
//!
//! Each file names its sources and marks every inference that is ours rather than the
//! framework's (`[inf]`). The files live in `crates/patchwarden-core/presets/`; a test parses
//! every one of them, so a preset that does not parse cannot ship.

use super::file::PolicyError;
use super::model::Policy;

/// One shipped preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Its name, equal to the `[policy] id` inside it.
    pub name: &'static str,
    /// The file as shipped.
    pub text: &'static str,
}

impl Preset {
    /// The preset, read and checked like any policy file.
    pub fn policy(&self) -> Result<Policy, PolicyError> {
        Policy::parse(self.text, &format!("preset {}", self.name))
    }
}

macro_rules! presets {
    ($($name:literal),+ $(,)?) => {
        /// Every shipped preset, in the order `patchwarden policy list` shows them.
        pub const PRESETS: &[Preset] = &[
            $(Preset { name: $name, text: include_str!(concat!("../../presets/", $name, ".toml")) }),+
        ];
    };
}

presets![
    "seed-default",
    "pci-dss-4.0.1",
    "cisa-bod-26-04",
    "cisa-bod-22-01",
    "essential-eight-ml1",
    "essential-eight-ml2",
    "essential-eight-ml3",
    "cyber-essentials",
    "fedramp-rev5",
];

/// The preset of that name.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}
