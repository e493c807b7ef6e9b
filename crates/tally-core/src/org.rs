//! The organisation tree that devices, users and licenses hang on.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One node of the organisation tree; a node without a parent is a root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrgNode {
    pub id: i64,
    pub name: String,
    pub parent: Option<i64>,
}

/// A rule placing devices or users on an org node, for those not placed by hand or import.
/// A device rule names a site, a host-name pattern or both; a user rule an account pattern.
/// Patterns take `*` and `?` and ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrgRule {
    pub id: i64,
    pub org_node: i64,
    pub site: Option<String>,
    pub host_name: Option<String>,
    pub account: Option<String>,
}

/// What placing on a node by hand applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgTarget {
    Device(i64),
    User(i64),
}

/// What a new rule says, with the node by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgRuleSpec {
    #[schema(max_length = 255)]
    pub org_node: String,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub site: Option<String>,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub host_name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub account: Option<String>,
}

impl OrgRuleSpec {
    /// A rule is for devices or for users, and says something about them.
    pub fn validate(&self) -> Result<(), crate::ValidationError> {
        use crate::limits::{check_name, check_opt_name, MAX_NAME};
        check_name("org_node", &self.org_node, MAX_NAME)?;
        check_opt_name("site", self.site.as_deref(), MAX_NAME)?;
        check_opt_name("host_name", self.host_name.as_deref(), MAX_NAME)?;
        check_opt_name("account", self.account.as_deref(), MAX_NAME)?;
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        let device = given(&self.site) || given(&self.host_name);
        match (device, given(&self.account)) {
            (true, true) => Err(crate::ValidationError::new(
                "account",
                "a rule places devices (site, host_name) or users (account), not both; make two rules",
            )),
            (false, false) => Err(crate::ValidationError::new(
                "site",
                "give a site, a host_name pattern (devices) or an account pattern (users)",
            )),
            _ => Ok(()),
        }
    }
}

fn matches(pattern: &Option<String>, value: &str) -> bool {
    match pattern.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => crate::rules::version_matches(p, value),
        None => true,
    }
}

impl OrgRule {
    fn for_devices(&self) -> bool {
        self.account.as_deref().is_none_or(str::is_empty)
    }

    pub fn matches_device(&self, site: &str, host_name: &str) -> bool {
        self.for_devices() && matches(&self.site, site) && matches(&self.host_name, host_name)
    }

    pub fn matches_user(&self, account: &str) -> bool {
        !self.for_devices() && matches(&self.account, account)
    }
}

/// A device's node: the one set by hand or import, else the first rule (oldest first) that
/// matches its site and host name.
pub fn device_node(
    set: Option<i64>,
    site: &str,
    host_name: &str,
    rules: &[OrgRule],
) -> Option<i64> {
    set.or_else(|| {
        rules
            .iter()
            .find(|r| r.matches_device(site, host_name))
            .map(|r| r.org_node)
    })
}

/// A user's node: the one set, else the first rule that matches the account.
pub fn user_node(set: Option<i64>, account: &str, rules: &[OrgRule]) -> Option<i64> {
    set.or_else(|| {
        rules
            .iter()
            .find(|r| r.matches_user(account))
            .map(|r| r.org_node)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        id: i64,
        node: i64,
        site: Option<&str>,
        host: Option<&str>,
        account: Option<&str>,
    ) -> OrgRule {
        OrgRule {
            id,
            org_node: node,
            site: site.map(Into::into),
            host_name: host.map(Into::into),
            account: account.map(Into::into),
        }
    }

    #[test]
    fn the_first_matching_rule_places_what_nobody_placed() {
        let rules = [
            rule(1, 10, Some("LON"), Some("lon-srv-*"), None),
            rule(2, 11, None, Some("LON-*"), None),
            rule(3, 12, Some("PAR"), None, None),
            rule(4, 13, None, None, Some("svc-*")),
        ];
        assert_eq!(device_node(None, "LON", "lon-srv-01", &rules), Some(10));
        assert_eq!(
            device_node(None, "NYC", "lon-srv-01", &rules),
            Some(11),
            "site must match too"
        );
        assert_eq!(device_node(None, "PAR", "anything", &rules), Some(12));
        assert_eq!(device_node(None, "NYC", "nyc-01", &rules), None);
        assert_eq!(
            device_node(Some(99), "LON", "lon-srv-01", &rules),
            Some(99),
            "set by hand wins"
        );
        assert_eq!(user_node(None, "SVC-backup", &rules), Some(13));
        assert_eq!(user_node(None, "ann", &rules), None);
        assert_eq!(
            device_node(None, "X", "svc-box", &rules[3..]),
            None,
            "a user rule places no device"
        );
    }

    #[test]
    fn a_rule_is_for_devices_or_users() {
        let spec = |site: Option<&str>, account: Option<&str>| OrgRuleSpec {
            org_node: "HQ".into(),
            site: site.map(Into::into),
            host_name: None,
            account: account.map(Into::into),
        };
        assert!(spec(Some("S01"), None).validate().is_ok());
        assert!(spec(None, Some("a*")).validate().is_ok());
        assert!(spec(Some("S01"), Some("a*")).validate().is_err());
        assert!(spec(None, None).validate().is_err());
        assert!(spec(Some("  "), None).validate().is_err());
    }
}
