//! Applications, licenses and the license-metric tables of seed 002.
//!
//! The tables decide what may be registered: which license metrics an application's metric
//! accepts, and which assignment types each license metric allows. The compliance computation
//! that uses them lives beside these types once licenses are computed.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ValidationError;

/// The unit of measure of an application and of a license (seed 002, "Metric").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    NoLicenseRequired,
    Installations,
    CustomCompareValues,
    Processors,
    ProcessorCores,
    Users,
    Devices,
    ConcurrentUsers,
    ConcurrentDevices,
    Pvu,
    Cal,
}

/// To whom a license is assigned (seed 002, "Assignment types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentType {
    /// An organisation node and everything below it (also read as `organisation`).
    #[serde(alias = "organisation")]
    Organization,
    /// That organisation node alone.
    Site,
    /// Specific computers or datacenters.
    Computer,
    /// Specific users.
    User,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::NoLicenseRequired,
        Metric::Installations,
        Metric::CustomCompareValues,
        Metric::Processors,
        Metric::ProcessorCores,
        Metric::Users,
        Metric::Devices,
        Metric::ConcurrentUsers,
        Metric::ConcurrentDevices,
        Metric::Pvu,
        Metric::Cal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::NoLicenseRequired => "no_license_required",
            Metric::Installations => "installations",
            Metric::CustomCompareValues => "custom_compare_values",
            Metric::Processors => "processors",
            Metric::ProcessorCores => "processor_cores",
            Metric::Users => "users",
            Metric::Devices => "devices",
            Metric::ConcurrentUsers => "concurrent_users",
            Metric::ConcurrentDevices => "concurrent_devices",
            Metric::Pvu => "pvu",
            Metric::Cal => "cal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// License metrics an application with this default metric accepts (seed 002, third column).
    pub fn accepted_license_metrics(self) -> &'static [Metric] {
        use Metric::*;
        const DEVICE_BASED: &[Metric] = &[Installations, ProcessorCores, Processors, Cal];
        match self {
            NoLicenseRequired => &[],
            Installations | Processors | ProcessorCores | Cal => DEVICE_BASED,
            CustomCompareValues => &[CustomCompareValues],
            Users => &[Users],
            Devices => &[Devices],
            ConcurrentUsers => &[ConcurrentUsers],
            ConcurrentDevices => &[ConcurrentDevices],
            Pvu => &[Pvu],
        }
    }

    /// Assignment types a license of this metric may have (seed 002, second table).
    pub fn allowed_assignments(self) -> &'static [AssignmentType] {
        use AssignmentType::*;
        match self {
            Metric::Installations => &[Organization, Site, Computer, User],
            Metric::ProcessorCores | Metric::Processors => &[Computer],
            Metric::Users | Metric::ConcurrentUsers => &[Organization, User],
            Metric::CustomCompareValues
            | Metric::Devices
            | Metric::ConcurrentDevices
            | Metric::Pvu
            | Metric::Cal => &[Organization],
            Metric::NoLicenseRequired => &[],
        }
    }
}

impl AssignmentType {
    pub const ALL: [AssignmentType; 4] = [
        AssignmentType::Organization,
        AssignmentType::Site,
        AssignmentType::Computer,
        AssignmentType::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentType::Organization => "organization",
            AssignmentType::Site => "site",
            AssignmentType::Computer => "computer",
            AssignmentType::User => "user",
        }
    }

    /// The type named `s`; the British `organisation` is `organization`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "organisation" => Some(AssignmentType::Organization),
            s => Self::ALL.into_iter().find(|a| a.as_str() == s),
        }
    }
}

fn names<T: Copy>(items: &[T], name: fn(T) -> &'static str) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|&i| name(i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses a license the seed's tables do not allow, naming the allowed values.
pub fn check_license_terms(
    application_metric: Metric,
    license_metric: Metric,
    assignment: AssignmentType,
) -> Result<(), ValidationError> {
    let accepted = application_metric.accepted_license_metrics();
    if !accepted.contains(&license_metric) {
        return Err(ValidationError::new(
            "metric",
            format!(
                "an application measured in {} accepts licenses of: {}; not {}",
                application_metric.as_str(),
                names(accepted, Metric::as_str),
                license_metric.as_str()
            ),
        ));
    }
    let allowed = license_metric.allowed_assignments();
    if !allowed.contains(&assignment) {
        return Err(ValidationError::new(
            "assignment_type",
            format!(
                "a {} license may be assigned to: {}; not {}",
                license_metric.as_str(),
                names(allowed, AssignmentType::as_str),
                assignment.as_str()
            ),
        ));
    }
    Ok(())
}

/// The window of usage an application's usage-based metrics look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MeteringPeriod {
    /// From the first of the month containing the as-of date up to it (seed 002's default).
    CurrentMonth,
    /// The given number of days ending at the as-of date.
    RollingDays { days: u32 },
}

/// A licensable product that installed-software entries and metered files are recognised as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Application {
    pub id: i64,
    pub name: String,
    pub publisher: String,
    pub metric: Metric,
    pub metering_period: MeteringPeriod,
}

/// How installed software and metered usage are recognised as an application. Empty
/// patterns match anything; a rule with no software pattern recognises no installation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recognition {
    pub application_id: i64,
    /// Wildcard pattern (`*`, `?`, any case) on the installed software's name.
    pub software: String,
    pub publisher: String,
    pub version: String,
    /// A metering rule whose usage is this application's.
    pub metering_rule: String,
}

/// An application with its settings and recognition rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppRecord {
    #[serde(flatten)]
    pub application: Application,
    pub total_user_metric: crate::compliance::TotalUserMetric,
    pub recognition: Vec<Recognition>,
}

/// A purchase of licenses for an application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct License {
    pub id: i64,
    pub application_id: i64,
    pub metric: Metric,
    pub quantity: i64,
    pub assignment_type: AssignmentType,
    /// The org node, device or user the license is assigned to, by `assignment_type`.
    pub assigned_to: Option<i64>,
    pub purchase_date: Option<NaiveDate>,
    /// `None` for perpetual licenses.
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub maintenance_until: Option<NaiveDate>,
    /// Price of one unit, in minor units (cents) of `currency`, to avoid rounding money.
    pub unit_cost_minor: Option<i64>,
    pub currency: Option<String>,
    pub vendor: Option<String>,
    pub order_reference: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl License {
    /// How people tell licenses apart, since they have no name: `#3 Office, 10 installations`.
    pub fn label(&self, application: &str) -> String {
        format!(
            "#{} {application}, {} {}",
            self.id,
            self.quantity,
            self.metric.as_str()
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseRow {
    #[schema(min_length = 1, max_length = 255)]
    pub application: String,
    pub metric: Metric,
    /// At most `tally_core::limits::MAX_QUANTITY`.
    #[schema(minimum = 0, maximum = 1000000000)]
    pub quantity: i64,
    pub assignment_type: AssignmentType,
    /// The org node's name, the computer's host name or the user's account, by type; empty
    /// for an organisation license on the whole organisation.
    #[serde(default)]
    #[schema(max_length = 255)]
    pub assigned_to: Option<String>,
    #[serde(default)]
    pub purchase_date: Option<NaiveDate>,
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
    #[serde(default)]
    pub maintenance_until: Option<NaiveDate>,
    /// Price of one unit as a decimal, e.g. `129.90`.
    #[serde(default)]
    #[schema(max_length = 255)]
    pub unit_cost: Option<String>,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub currency: Option<String>,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub vendor: Option<String>,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub order_reference: Option<String>,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub notes: Option<String>,
}

impl LicenseRow {
    /// The row exported for `license`, of the application named `application`, assigned to
    /// the org node, host or account named `assigned_to`: the one place a stored license
    /// becomes its file shape (names for ids, the cost as a decimal).
    pub fn exported(license: License, application: String, assigned_to: Option<String>) -> Self {
        Self {
            application,
            metric: license.metric,
            quantity: license.quantity,
            assignment_type: license.assignment_type,
            assigned_to,
            purchase_date: license.purchase_date,
            valid_from: license.valid_from,
            valid_until: license.valid_until,
            maintenance_until: license.maintenance_until,
            unit_cost: license.unit_cost_minor.map(crate::import::format_cost),
            currency: license.currency,
            vendor: license.vendor,
            order_reference: license.order_reference,
            notes: license.notes,
        }
    }

    /// `quantity` units of `application` by `metric`, assigned by `assignment_type`, with
    /// nothing more known yet (no target, dates, cost or references): set what is known with
    /// `LicenseRow { .., ..LicenseRow::new(…) }`.
    pub fn new(
        application: impl Into<String>,
        metric: Metric,
        quantity: i64,
        assignment_type: AssignmentType,
    ) -> Self {
        Self {
            application: application.into(),
            metric,
            quantity,
            assignment_type,
            assigned_to: None,
            purchase_date: None,
            valid_from: None,
            valid_until: None,
            maintenance_until: None,
            unit_cost: None,
            currency: None,
            vendor: None,
            order_reference: None,
            notes: None,
        }
    }
}

/// What of a license comes to an end: the right to use it, or its maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ends {
    /// `valid_until`: after that day the license no longer counts.
    Validity,
    /// `maintenance_until`: after that day updates and support stop.
    Maintenance,
}

/// What of `license` ends on a day from `from` to `until` (both included), with that day:
/// its last valid day, its last day of maintenance.
pub fn endings(license: &License, from: NaiveDate, until: NaiveDate) -> Vec<(Ends, NaiveDate)> {
    [
        (Ends::Validity, license.valid_until),
        (Ends::Maintenance, license.maintenance_until),
    ]
    .into_iter()
    .filter_map(|(what, day)| Some((what, day?)))
    .filter(|(_, day)| (from..=until).contains(day))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_002_tables() {
        use AssignmentType as A;
        use Metric as M;
        assert!(check_license_terms(M::Installations, M::ProcessorCores, A::Computer).is_ok());
        assert!(check_license_terms(M::Cal, M::Installations, A::User).is_ok());
        assert!(check_license_terms(M::Users, M::Users, A::User).is_ok());
        let e = check_license_terms(M::Users, M::Devices, A::Organization).unwrap_err();
        assert_eq!(e.field, "metric");
        assert!(e.message.contains("users"), "{}", e.message);
        let e =
            check_license_terms(M::Installations, M::ProcessorCores, A::Organization).unwrap_err();
        assert_eq!(e.field, "assignment_type");
        assert!(e.message.contains("computer"), "{}", e.message);
        assert!(check_license_terms(M::NoLicenseRequired, M::Installations, A::Site).is_err());
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.as_str()), Some(m));
        }
        assert_eq!(AssignmentType::parse("organisation"), Some(A::Organization));
        let british: AssignmentType = serde_json::from_str("\"organisation\"").unwrap();
        assert_eq!(british, A::Organization);
    }

    #[test]
    fn endings_within_the_window_are_named() {
        let day = |d: &str| d.parse::<NaiveDate>().unwrap();
        let license = License {
            id: 3,
            application_id: 1,
            metric: Metric::Installations,
            quantity: 10,
            assignment_type: AssignmentType::Organization,
            assigned_to: None,
            purchase_date: None,
            valid_from: None,
            valid_until: Some(day("2026-09-30")),
            maintenance_until: Some(day("2026-06-30")),
            unit_cost_minor: None,
            currency: None,
            vendor: None,
            order_reference: None,
            notes: None,
            created_at: DateTime::UNIX_EPOCH,
        };
        assert_eq!(license.label("Office"), "#3 Office, 10 installations");
        assert_eq!(
            endings(&license, day("2026-06-01"), day("2026-08-30")),
            [(Ends::Maintenance, day("2026-06-30"))]
        );
        assert_eq!(
            endings(&license, day("2026-06-30"), day("2026-09-30")).len(),
            2,
            "both ends of the window count"
        );
        assert!(endings(&license, day("2026-07-01"), day("2026-09-29")).is_empty());
    }
}
