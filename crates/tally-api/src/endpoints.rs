//! One method per admin endpoint the CLI uses, each with the request and answer types the
//! server's handler takes and gives. Query parameters the server parses (dates, names) are
//! passed as the operator typed them, so the server's refusal is the one they see.

use reqwest::Method;
use tally_core::agents::{Agent, EnrollmentToken};
use tally_core::autorules::AutoRuleSettings;
use tally_core::device::MergedDevices;
use tally_core::file::StoredFile;
use tally_core::import::{ApplicationRow, LicenseRow};
use tally_core::inventory::DeviceInventory;
use tally_core::org::{OrgRule, OrgRuleSpec};
use tally_core::rules::RuleSpec;
use tally_core::runs::Run;
use tally_core::AppRecord;
use tally_core::{Device, DeviceStatus, MeteringRule, OperatorToken, UsageRecord, User};

use crate::client::{urlencode, NO_BODY};
use crate::{
    AppDetail, AppPosition, Client, ClientError, CreateEnrollmentToken, CreateToken, CreatedToken,
    Expiring, FileUsageRow, LicensePatch, LicenseSaved, LicenseView, MonthlyRow, OrgNodeView,
    Placement, ReclaimReport, TaskChange, TaskView, TrendPoint, WhoAmI,
};

type Result<T> = std::result::Result<T, ClientError>;

/// Which usage records or runs to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// Only programs this rule (by name) meters.
    pub rule: Option<String>,
    /// Only usage ending on or after this date (`YYYY-MM-DD`) or RFC 3339 time.
    pub since: Option<String>,
    pub device_id: Option<i64>,
    pub user_id: Option<i64>,
    /// At most this many rows (1 to 1000).
    pub limit: u32,
    /// The next page: records after the one with this id; runs after this many.
    pub after: Option<i64>,
    /// Only devices of this site code and the sites below it.
    pub site: Option<String>,
}

/// Which summary rows to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryFilter {
    /// Only this rule (by name).
    pub rule: Option<String>,
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// Only devices of this site and the sites below it (at a parent).
    pub site: Option<String>,
}

/// Which reclaim list [`Client::reclaim`] asks for: as of a day (default today), of one
/// application, of one site's subtree (at a parent).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReclaimOnly<'a> {
    pub as_of: Option<&'a str>,
    pub app: Option<&'a str>,
    pub site: Option<&'a str>,
}

/// `path?k=v&…` with the parameters that are given, encoded.
fn with_query(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let given: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", urlencode(v))))
        .collect();
    format!("{path}?{}", given.join("&"))
}

/// Operators, tokens and agents.
impl Client {
    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.get("/api/v1/whoami").await
    }

    pub async fn tokens(&self) -> Result<Vec<OperatorToken>> {
        self.get("/api/v1/tokens").await
    }

    pub async fn create_token(&self, req: &CreateToken) -> Result<CreatedToken<OperatorToken>> {
        self.post("/api/v1/tokens", req).await
    }

    pub async fn revoke_token(&self, id: i64) -> Result<()> {
        self.delete(&format!("/api/v1/tokens/{id}")).await
    }

    pub async fn enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>> {
        self.get("/api/v1/enrollment-tokens").await
    }

    pub async fn create_enrollment_token(
        &self,
        req: &CreateEnrollmentToken,
    ) -> Result<CreatedToken<EnrollmentToken>> {
        self.post("/api/v1/enrollment-tokens", req).await
    }

    pub async fn revoke_enrollment_token(&self, id: i64) -> Result<()> {
        self.delete(&format!("/api/v1/enrollment-tokens/{id}"))
            .await
    }

    pub async fn agents(&self) -> Result<Vec<Agent>> {
        self.get("/api/v1/agents").await
    }
}

/// Metering rules.
impl Client {
    pub async fn rules(&self) -> Result<Vec<MeteringRule>> {
        self.get("/api/v1/rules").await
    }

    pub async fn rule(&self, id: i64) -> Result<MeteringRule> {
        self.get(&format!("/api/v1/rules/{id}")).await
    }

    pub async fn create_rule(&self, spec: &RuleSpec) -> Result<MeteringRule> {
        self.post("/api/v1/rules", spec).await
    }

    pub async fn update_rule(&self, id: i64, spec: &RuleSpec) -> Result<MeteringRule> {
        let path = format!("/api/v1/rules/{id}");
        self.call(Method::PUT, &path, Some(spec)).await
    }

    pub async fn delete_rule(&self, id: i64) -> Result<()> {
        self.delete(&format!("/api/v1/rules/{id}")).await
    }

    /// Creates (disabled) rules for software on enough inventoried devices.
    pub async fn auto_rules(&self, settings: &AutoRuleSettings) -> Result<Vec<MeteringRule>> {
        self.post("/api/v1/rules/auto", settings).await
    }
}

/// What agents reported: devices, users, files, usage.
impl Client {
    /// Every device, all pages.
    pub async fn devices(&self) -> Result<Vec<Device>> {
        self.get_all("/api/v1/devices").await
    }

    pub async fn device_inventory(&self, id: i64) -> Result<DeviceInventory> {
        self.get(&format!("/api/v1/devices/{id}/inventory")).await
    }

    /// Sets a device's status (admin); audit-logged.
    pub async fn set_device_status(&self, id: i64, status: DeviceStatus) -> Result<Device> {
        let body = crate::SetDeviceStatus { status };
        let path = format!("/api/v1/devices/{id}/status");
        self.call(Method::PUT, &path, Some(&body)).await
    }

    /// Merges device `from` into `into` (admin); audit-logged.
    pub async fn merge_devices(&self, from: i64, into: i64) -> Result<MergedDevices> {
        let body = crate::MergeDevices { into };
        self.post(&format!("/api/v1/devices/{from}/merge"), &body)
            .await
    }

    /// Sets or clears an administrator's classification of an account (admin); audit-logged.
    pub async fn set_service_account(
        &self,
        account: &str,
        service_account: crate::ServiceAccountChoice,
    ) -> Result<User> {
        let body = crate::SetServiceAccount {
            account: account.to_string(),
            service_account,
        };
        self.post("/api/v1/users/service-account", &body).await
    }

    /// Every user, all pages.
    pub async fn users(&self) -> Result<Vec<User>> {
        self.get_all("/api/v1/users").await
    }

    /// Erases one person (admin); audit-logged.
    pub async fn forget_user(&self, account: &str) -> Result<crate::ForgottenUser> {
        let body = crate::ForgetUser {
            account: account.to_string(),
        };
        self.post("/api/v1/users/forget", &body).await
    }

    /// The account behind a pseudonym (admin, on a pseudonymising site); audit-logged.
    pub async fn resolve_pseudonym(&self, pseudonym: &str) -> Result<crate::ResolvedPseudonym> {
        let body = crate::ResolvePseudonym {
            pseudonym: pseudonym.to_string(),
        };
        self.post("/api/v1/users/resolve", &body).await
    }

    /// Every stored file, all pages.
    pub async fn files(&self) -> Result<Vec<StoredFile>> {
        self.get_all("/api/v1/files").await
    }

    pub async fn usage(&self, filter: &UsageFilter) -> Result<Vec<UsageRecord>> {
        self.get(&filter.path("/api/v1/usage")).await
    }

    pub async fn runs(&self, filter: &UsageFilter) -> Result<Vec<Run>> {
        self.get(&filter.path("/api/v1/runs")).await
    }
}

impl UsageFilter {
    fn path(&self, path: &str) -> String {
        let limit = self.limit.to_string();
        let device = self.device_id.map(|d| d.to_string());
        let user = self.user_id.map(|u| u.to_string());
        let after = self.after.map(|a| a.to_string());
        let params = [
            ("limit", Some(limit.as_str())),
            ("rule", self.rule.as_deref()),
            ("since", self.since.as_deref()),
            ("device_id", device.as_deref()),
            ("user_id", user.as_deref()),
            ("after", after.as_deref()),
            ("site", self.site.as_deref()),
        ];
        with_query(path, &params)
    }
}

/// Applications, licenses and compliance.
impl Client {
    pub async fn applications(&self) -> Result<Vec<AppRecord>> {
        self.get("/api/v1/applications").await
    }

    /// Adds the application, or changes the one of that name.
    pub async fn put_application(&self, row: &ApplicationRow) -> Result<AppRecord> {
        self.post("/api/v1/applications", row).await
    }

    pub async fn delete_application(&self, id: i64) -> Result<()> {
        self.delete(&format!("/api/v1/applications/{id}")).await
    }

    pub async fn licenses(&self) -> Result<Vec<LicenseView>> {
        self.get("/api/v1/licenses").await
    }

    /// Adds a license; the answer carries the checks' warnings.
    pub async fn add_license(&self, row: &LicenseRow) -> Result<LicenseSaved> {
        self.post("/api/v1/licenses", row).await
    }

    /// Changes a license's terms; the answer carries the checks' warnings.
    pub async fn edit_license(&self, id: i64, patch: &LicensePatch) -> Result<LicenseSaved> {
        let path = format!("/api/v1/licenses/{id}");
        self.call(Method::PATCH, &path, Some(patch)).await
    }

    /// Licenses whose validity or maintenance ends within `days` days from today.
    pub async fn expiring_licenses(&self, days: &str) -> Result<Vec<Expiring>> {
        let params = [("days", Some(days))];
        self.get(&with_query("/api/v1/licenses/expiring", &params))
            .await
    }

    pub async fn delete_license(&self, id: i64) -> Result<()> {
        self.delete(&format!("/api/v1/licenses/{id}")).await
    }

    /// Each application's position (or only `app`'s) as it stood on `as_of` (default today).
    pub async fn compliance(
        &self,
        app: Option<&str>,
        as_of: Option<&str>,
    ) -> Result<Vec<AppPosition>> {
        self.compliance_in(app, as_of, None).await
    }

    /// [`Client::compliance`] over the devices of `site` and the sites below it only.
    pub async fn compliance_in(
        &self,
        app: Option<&str>,
        as_of: Option<&str>,
        site: Option<&str>,
    ) -> Result<Vec<AppPosition>> {
        let params = [("app", app), ("as_of", as_of), ("site", site)];
        self.get(&with_query("/api/v1/compliance", &params)).await
    }

    /// One application's position in detail: per node, per license, and a page of its
    /// uncovered and excluded consumers by name.
    pub async fn compliance_detail(
        &self,
        app: &str,
        (as_of, site): (Option<&str>, Option<&str>),
        page: (i64, i64),
    ) -> Result<AppDetail> {
        let (limit, offset) = (page.0.to_string(), page.1.to_string());
        let params = [
            ("app", Some(app)),
            ("as_of", as_of),
            ("limit", Some(limit.as_str())),
            ("offset", Some(offset.as_str())),
            ("site", site),
        ];
        self.get(&with_query("/api/v1/compliance/detail", &params))
            .await
    }

    /// The daily snapshots from `from` (default 90 days ago), oldest first; at a parent, with
    /// `site`, those days computed again over the devices of that site's subtree.
    pub async fn snapshots(
        &self,
        app: Option<&str>,
        from: Option<&str>,
        site: Option<&str>,
    ) -> Result<Vec<TrendPoint>> {
        let params = [("app", app), ("from", from), ("site", site)];
        self.get(&with_query("/api/v1/compliance/snapshots", &params))
            .await
    }

    /// Installations unused for `days` before `as_of` (default today), most costly first, of
    /// one application or all, every page of them; and the applications whose use Tally
    /// cannot know.
    pub async fn reclaim(&self, days: u32, only: ReclaimOnly<'_>) -> Result<ReclaimReport> {
        let mut list = self.reclaim_page(days, only, 0).await?;
        while (list.idle.len() as i64) < list.idle_total {
            let offset = list.idle.len() as i64;
            let page = self.reclaim_page(days, only, offset).await?;
            if page.idle.is_empty() {
                break;
            }
            list.idle.extend(page.idle);
        }
        Ok(list)
    }

    /// One page of [`Client::reclaim`]: the server's largest, after `offset` idle
    /// installations.
    async fn reclaim_page(
        &self,
        days: u32,
        only: ReclaimOnly<'_>,
        offset: i64,
    ) -> Result<ReclaimReport> {
        let (days, offset) = (days.to_string(), offset.to_string());
        let params = [
            ("days", Some(days.as_str())),
            ("as_of", only.as_of),
            ("app", only.app),
            ("site", only.site),
            ("offset", Some(offset.as_str())),
        ];
        self.get(&with_query("/api/v1/reclaim", &params)).await
    }
}

/// The organisation tree.
impl Client {
    pub async fn org_nodes(&self) -> Result<Vec<OrgNodeView>> {
        self.get("/api/v1/org-nodes").await
    }

    pub async fn org_rules(&self) -> Result<Vec<OrgRule>> {
        self.get("/api/v1/org-rules").await
    }

    pub async fn add_org_rule(&self, spec: &OrgRuleSpec) -> Result<OrgRule> {
        self.post("/api/v1/org-rules", spec).await
    }

    pub async fn delete_org_rule(&self, id: i64) -> Result<()> {
        self.delete(&format!("/api/v1/org-rules/{id}")).await
    }

    pub async fn place_device(&self, id: i64, placement: &Placement) -> Result<()> {
        let path = format!("/api/v1/devices/{id}/org-node");
        self.call_empty(Method::PUT, &path, Some(placement)).await
    }

    pub async fn place_user(&self, id: i64, placement: &Placement) -> Result<()> {
        let path = format!("/api/v1/users/{id}/org-node");
        self.call_empty(Method::PUT, &path, Some(placement)).await
    }
}

/// Maintenance tasks, their summaries, and reports.
impl Client {
    pub async fn tasks(&self) -> Result<Vec<TaskView>> {
        self.get("/api/v1/tasks").await
    }

    pub async fn change_task(&self, name: &str, change: &TaskChange) -> Result<TaskView> {
        let path = format!("/api/v1/tasks/{name}");
        self.call(Method::PATCH, &path, Some(change)).await
    }

    /// Runs a task now; its state after the run.
    pub async fn run_task(&self, name: &str) -> Result<TaskView> {
        let path = format!("/api/v1/tasks/{name}/run");
        self.call(Method::POST, &path, NO_BODY).await
    }

    pub async fn file_usage(&self, filter: &SummaryFilter) -> Result<Vec<FileUsageRow>> {
        self.get(&filter.path("/api/v1/summaries/file-usage")).await
    }

    pub async fn monthly(&self, filter: &SummaryFilter) -> Result<Vec<MonthlyRow>> {
        self.get(&filter.path("/api/v1/summaries/monthly")).await
    }

    /// A report rendered in `format` (its extension: pdf, html, csv, json) with the report's
    /// own parameters, calling `progress` with the bytes received and the total when known.
    pub async fn report(
        &self,
        name: &str,
        format: &str,
        params: &[(&str, &str)],
        progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Vec<u8>> {
        let mut query = vec![format!("format={format}")];
        query.extend(
            params
                .iter()
                .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))),
        );
        let path = format!("/api/v1/reports/{name}?{}", query.join("&"));
        self.download(&path, progress).await
    }
}

impl SummaryFilter {
    fn path(&self, path: &str) -> String {
        let params = [
            ("rule", self.rule.as_deref()),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("site", self.site.as_deref()),
        ];
        with_query(path, &params)
    }
}
