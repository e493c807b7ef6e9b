//! Tally's web console: server-side rendered pages for the people who buy, audit and reclaim
//! licenses, served by the same binary as the API (`tally-server` mounts [`router`] at `/`).
//! Pages are rendered with maud, which escapes every value it interpolates, and call the
//! service layer (`tally-service`) for every figure and every change, so the console and the
//! API cannot disagree. Sign-in opens a server-side session (see `tally_service::web_sessions`);
//! every form carries a CSRF token checked on every POST, and the auditor role is refused every
//! change by the server whatever a page shows.

mod admin;
mod admin_tasks;
mod app_usage;
mod apps;
mod campaign;
mod concurrency;
mod dashboard;
mod devices;
mod error;
mod forms;
mod import;
mod layout;
mod license_form;
mod licenses;
mod metering;
mod org;
mod placement;
mod reclaim;
mod reports;
mod rule_edit;
mod rules;
mod session;
mod site_scope;
mod sites;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tally_service::web_sessions::SessionPolicy;
use tally_service::Service;
use tower_http::timeout::TimeoutLayer;

pub use error::WebError;

/// Marks requests that came over HTTPS: the server inserts it as a request extension on its
/// TLS listener, and session cookies are then sent `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Https;

/// What the pages share: the service and how long sessions live.
#[derive(Clone)]
pub struct WebState {
    pub service: Arc<Service>,
    pub sessions: SessionPolicy,
    /// Checked imports waiting to be loaded.
    uploads: import::Pending,
}

impl WebState {
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            service,
            sessions: SessionPolicy::default(),
            uploads: import::Pending::default(),
        }
    }
}

/// The largest form the console accepts: its biggest form (a license) is well under 8 KiB.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// How long a page may take before the browser is told so.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A file to download: `name` as the browser should save it, its type and bytes.
fn download(name: &str, content_type: &str, bytes: Vec<u8>) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(['"', '\\'], "_")
    );
    let headers = [
        (header::CONTENT_TYPE, content_type.to_string()),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    (headers, bytes).into_response()
}

/// The console's routes, to be merged beside the API's.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/applications", get(apps::list))
        .route("/applications/{name}", get(apps::detail))
        .route("/applications/{name}/concurrency", get(concurrency::page))
        .route("/licenses", get(licenses::list).post(licenses::add))
        .route("/licenses/new", get(licenses::new_form))
        .route(
            "/licenses/{id}",
            get(licenses::edit_form).post(licenses::edit),
        )
        .route("/licenses/{id}/remove", post(licenses::remove))
        .route("/reclaim", get(reclaim::page))
        .route("/reclaim.csv", get(reclaim::csv))
        .route("/reclaim/propose", post(campaign::propose))
        .route("/reclaim/items/{id}", post(campaign::advance))
        .route(
            "/import",
            get(import::page)
                .post(import::check)
                .layer(DefaultBodyLimit::max(import::MAX_UPLOAD_BYTES)),
        )
        .route("/import/load", post(import::load))
        .route("/export/{file}", get(import::export))
        .route("/reports", get(reports::catalogue))
        .route("/reports/{name}", get(reports::report))
        .route("/reports/{name}/download", get(reports::download))
        .route("/reports/written/{day}/{file}", get(reports::written))
        .route("/devices", get(devices::list))
        .route("/devices/{id}", get(devices::detail))
        .route("/devices/{id}/status", post(devices::set_status))
        .route("/devices/{id}/org-node", post(placement::device))
        .route("/users", get(users::list))
        .route("/users/{id}", get(users::detail))
        .route(
            "/users/{id}/service-account",
            post(users::set_service_account),
        )
        .route("/users/{id}/org-node", post(placement::user))
        .route("/rules", get(rules::list).post(rules::add))
        .route("/rules/{id}", get(rule_edit::show).post(rule_edit::save))
        .route("/rules/{id}/enabled", post(rules::set_enabled))
        .route("/programs", get(rules::programs))
        .route("/org", get(org::page))
        .route("/org/move", post(org::move_node))
        .route("/org/rules", post(org::add_rule))
        .route("/org/rules/{id}/remove", post(org::remove_rule))
        .route("/admin", get(sites::page))
        .route("/admin/sites/invite", post(sites::invite))
        .route("/admin/sites/{code}/revoke", post(sites::revoke))
        .route(
            "/admin/tokens",
            get(admin::tokens).post(admin::create_token),
        )
        .route("/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route(
            "/admin/enrolment",
            get(admin::enrolment).post(admin::create_enrolment),
        )
        .route(
            "/admin/enrolment/{id}/revoke",
            post(admin::revoke_enrolment),
        )
        .route("/admin/agents", get(admin::agents))
        .route("/admin/agents/{id}/revoke", post(admin::revoke_agent))
        .route("/admin/metering", get(metering::page))
        .route("/admin/metering/run", post(metering::run))
        .route("/admin/tasks", get(admin_tasks::tasks))
        .route("/admin/tasks/{name}", post(admin_tasks::schedule))
        .route("/admin/tasks/{name}/run", post(admin_tasks::run))
        .route("/admin/audit", get(admin_tasks::audit))
        .route("/static/console.css", get(layout::stylesheet))
        .route("/static/console.js", get(layout::script))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            PAGE_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(layout::security_headers))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
