//! The admin API's request and response types, shared by the server (which serves them and
//! describes them in its OpenAPI document) and by [`Client`], the typed client the CLI uses,
//! so the two cannot disagree about a field. The crate holds no server logic.

mod certificates;
mod client;
mod endpoints;
mod error;
mod identity;
mod licensing;
mod operators;
mod sites;
mod tasks;

pub use certificates::{
    CertificateView, CompareValue, ImportCertificates, MeteringRun, SetAlias, SiteView, TextFile,
};
pub use client::{http_client, urlencode, Client};
pub use endpoints::{ReclaimOnly, SummaryFilter, UsageFilter};
pub use error::ClientError;
pub use identity::{MergeDevices, ServiceAccountChoice, SetDeviceStatus, SetServiceAccount};
pub use licensing::{
    money_totals, AppDetail, AppPosition, ConsumerCounts, ConsumerLine, ConsumerPage, Expiring,
    LicenseLine, LicensePatch, LicenseSaved, LicenseView, NoUsageData, NodeLine, OrgNodeView,
    Placement, ReasonCount, ReclaimReport, Reclaimable, TrendPoint,
};
pub use operators::{
    AuditRow, CreateEnrollmentToken, CreateToken, CreatedToken, ErrorBody, ForgetUser,
    ForgottenUser, Health, Readiness, ResolvePseudonym, ResolvedPseudonym, WhoAmI,
};
pub use sites::{InviteSite, SiteInvited, SiteRow};
pub use tasks::{FileUsageRow, MonthlyRow, TaskChange, TaskView};
