//! Automatic metering rules, as Configuration Manager makes them: software found on at least a
//! share of the computers becomes a rule, created disabled so an administrator chooses what to
//! meter, never more than a cap in all, never a duplicate of a rule that exists.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::file::ANY_LANGUAGE;
use crate::rules::{MeteringRule, RuleOrigin, RuleSpec};

/// Configuration Manager's defaults: 10 % of computers, at most 100 automatic rules.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutoRuleSettings {
    #[serde(default = "default_percent")]
    #[schema(minimum = 0, maximum = 100)]
    pub min_percent_of_devices: f64,
    #[serde(default = "default_max")]
    pub max_automatic_rules: usize,
}

fn default_percent() -> f64 {
    10.0
}

fn default_max() -> usize {
    100
}

impl Default for AutoRuleSettings {
    fn default() -> Self {
        Self {
            min_percent_of_devices: default_percent(),
            max_automatic_rules: default_max(),
        }
    }
}

/// One executable seen in inventory, with the package shipping it and on how many devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutableSeen {
    pub file_name: String,
    pub package: String,
    pub devices: i64,
}

/// The rules to create: the most widespread qualifying executables first (ties by name), up to
/// the cap less the automatic rules that already exist.
pub fn propose(
    seen: &[ExecutableSeen],
    total_devices: i64,
    existing: &[MeteringRule],
    settings: AutoRuleSettings,
) -> Vec<RuleSpec> {
    if total_devices <= 0 {
        return Vec::new();
    }
    let automatic = existing
        .iter()
        .filter(|r| r.origin == RuleOrigin::Automatic)
        .count();
    let room = settings.max_automatic_rules.saturating_sub(automatic);
    let taken = |name: &str| {
        existing.iter().any(|r| {
            r.spec.file_name.eq_ignore_ascii_case(name)
                || r.spec.original_file_name.eq_ignore_ascii_case(name)
        })
    };
    let mut candidates: Vec<&ExecutableSeen> = seen
        .iter()
        .filter(|s| {
            s.devices as f64 * 100.0 >= settings.min_percent_of_devices * total_devices as f64
        })
        .filter(|s| !taken(&s.file_name))
        .collect();
    candidates.sort_by(|a, b| {
        b.devices
            .cmp(&a.devices)
            .then(a.file_name.cmp(&b.file_name))
    });
    candidates.dedup_by(|a, b| a.file_name.eq_ignore_ascii_case(&b.file_name));
    candidates
        .into_iter()
        .take(room)
        .map(|s| RuleSpec {
            name: format!("{} ({})", s.file_name, s.package),
            file_name: s.file_name.clone(),
            original_file_name: String::new(),
            file_version: String::new(),
            language: ANY_LANGUAGE,
            product_name: s.package.clone(),
            comment: format!("automatic: on {} of {total_devices} devices", s.devices),
            apply_to_child_sites: false,
            enabled: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, devices: i64) -> ExecutableSeen {
        ExecutableSeen {
            file_name: name.into(),
            package: format!("pkg-{name}"),
            devices,
        }
    }

    fn existing(name: &str, origin: RuleOrigin) -> MeteringRule {
        MeteringRule {
            id: 1,
            spec: RuleSpec {
                file_name: name.into(),
                ..RuleSpec::named(name)
            },
            site_code: crate::SiteCode::parse("S01").unwrap(),
            origin,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn threshold_cap_order_and_no_duplicates() {
        let s = [
            seen("vim", 30),
            seen("code", 10),
            seen("rare", 9),
            seen("gimp", 50),
            seen("ls", 100),
        ];
        let rules = [existing("LS", RuleOrigin::Manual)];
        let got = propose(&s, 100, &rules, AutoRuleSettings::default());
        let names: Vec<_> = got.iter().map(|r| r.file_name.as_str()).collect();
        assert_eq!(
            names,
            ["gimp", "vim", "code"],
            "10 % exactly qualifies, 9 % does not, ls exists"
        );
        assert!(got.iter().all(|r| !r.enabled && r.validate().is_ok()));
        let capped = AutoRuleSettings {
            max_automatic_rules: 2,
            ..Default::default()
        };
        let auto = [existing("x", RuleOrigin::Automatic)];
        assert_eq!(
            propose(&s, 100, &auto, capped).len(),
            1,
            "the cap counts existing automatic rules"
        );
        assert!(propose(&s, 0, &[], AutoRuleSettings::default()).is_empty());
    }
}
