//! Which rules apply on a site. Seed 000: "by default, software metering rules are active only
//! on the site where they were created"; a rule made with "apply to child sites" is active on
//! every site below its own as well.

use std::collections::HashMap;

use crate::rules::MeteringRule;
use crate::site::{Site, SiteCode};

/// The enabled rules active on `site`: its own, and its ancestors' that apply to child sites.
/// A parent cycle in `sites` (a configuration error) is cut rather than looped on.
pub fn rules_for_site<'a>(
    site: &SiteCode,
    sites: &[Site],
    rules: &'a [MeteringRule],
) -> Vec<&'a MeteringRule> {
    let parents: HashMap<&SiteCode, Option<&SiteCode>> =
        sites.iter().map(|s| (&s.code, s.parent.as_ref())).collect();
    let mut ancestors = Vec::new();
    let mut next = parents.get(site).copied().flatten();
    while let Some(p) = next {
        if p == site || ancestors.contains(&p) {
            break;
        }
        ancestors.push(p);
        next = parents.get(p).copied().flatten();
    }
    rules
        .iter()
        .filter(|r| r.spec.enabled)
        .filter(|r| {
            r.site_code == *site
                || (r.spec.apply_to_child_sites && ancestors.contains(&&r.site_code))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::tests::site;
    use crate::rules::{RuleOrigin, RuleSpec};

    fn rule(id: i64, site: &str, children: bool, enabled: bool) -> MeteringRule {
        MeteringRule {
            id,
            spec: RuleSpec {
                file_name: "x".into(),
                apply_to_child_sites: children,
                enabled,
                ..RuleSpec::named(format!("r{id}"))
            },
            site_code: SiteCode::parse(site).unwrap(),
            origin: RuleOrigin::Manual,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn own_rules_and_inherited_ones_that_apply_to_children() {
        let sites = [
            site("CEN", None),
            site("P01", Some("CEN")),
            site("S01", Some("P01")),
            site("S02", Some("P01")),
        ];
        let rules = [
            rule(1, "CEN", true, true),
            rule(2, "CEN", false, true),
            rule(3, "P01", true, true),
            rule(4, "S01", false, true),
            rule(5, "S02", true, true),
            rule(6, "S01", true, false),
        ];
        let ids = |code: &str| -> Vec<i64> {
            rules_for_site(&SiteCode::parse(code).unwrap(), &sites, &rules)
                .iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(
            ids("S01"),
            [1, 3, 4],
            "grandparent's and parent's inherited, own, not disabled"
        );
        assert_eq!(ids("S02"), [1, 3, 5]);
        assert_eq!(ids("P01"), [1, 3]);
        assert_eq!(ids("CEN"), [1, 2]);
    }

    #[test]
    fn a_parent_cycle_terminates() {
        let sites = [site("AAA", Some("BBB")), site("BBB", Some("AAA"))];
        let rules = [rule(1, "BBB", true, true)];
        let got = rules_for_site(&SiteCode::parse("AAA").unwrap(), &sites, &rules);
        assert_eq!(got.len(), 1);
    }
}
