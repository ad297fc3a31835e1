//! Every shipped preset parses, and is named as it calls itself.

use patchwarden_core::policy::{PRESETS, preset};

#[test]
fn every_preset_parses_and_its_id_is_its_name() {
    for p in PRESETS {
        let policy = p.policy().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(policy.id, p.name);
        assert!(!policy.sources.is_empty(), "{} names no source", p.name);
        assert!(!policy.rules.is_empty(), "{} has no rule", p.name);
    }
    assert_eq!(PRESETS.len(), 9);
    assert!(preset("seed-default").is_some());
    assert!(preset("no-such-preset").is_none());
}
