//! Tally's site server: the HTTP API over a [`tally_service::Service`] (and, for plain reads
//! and writes, its [`tally_store::Store`]), its configuration, and the OpenAPI document
//! generated from the handlers. Handlers extract, call the service, and map its errors to
//! statuses; the operations themselves live in `tally-service`.

mod admin_api;
mod agent_api;
pub mod auth;
mod certificates_api;
mod compliance_api;
pub mod config;
mod error;
mod extract;
mod hierarchy_api;
mod identity_api;
mod metrics;
mod openapi;
mod ops;
mod org_api;
pub mod rate_limit;
mod read_api;
mod reclaim_api;
mod reports_api;
mod routes;
mod site_api;
mod tasks_api;
pub mod transport;
mod users_api;

use std::future::Future;
use std::sync::Arc;

use tally_core::SiteCode;
use tally_service::Service;
use tally_store::prelude::*;

pub use config::{Config, ConfigFile, ConfigOverrides};
pub use error::{ApiError, ErrorBody};
pub use openapi::openapi_json;
pub use tally_service::{ReportOutput, WRITE_SLOTS};

/// What every request handler shares: the service, and its store and site for the plain reads
/// and writes that need nothing else.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub site: SiteCode,
    pub service: Arc<Service>,
    /// Each credential's request budget; [`router`] sets it from its limits.
    pub rate_limits: Arc<rate_limit::RateLimits>,
    /// The SHA-256 of `/metrics`' bearer token; `None`: metrics are off.
    pub metrics_token_hash: Option<String>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, site: SiteCode) -> Self {
        Self::with_service(Service::new(store, site))
    }

    /// The state around an existing service (e.g. one the scheduler shares).
    pub fn with_service(service: Service) -> Self {
        let service = Arc::new(service);
        Self {
            store: service.store_arc(),
            site: service.site().clone(),
            service,
            rate_limits: Arc::new(rate_limit::RateLimits::new(&config::Limits::default())),
            metrics_token_hash: None,
        }
    }

    /// The same state, serving `/metrics` to requests bearing `token`.
    pub fn with_metrics_token(mut self, token: &str) -> Self {
        self.metrics_token_hash = Some(auth::hash_token(token));
        self
    }

    /// The same state, writing scheduled reports as `reports` says. Call before serving: it
    /// starts a fresh service (empty caches).
    pub fn with_reports(self, reports: ReportOutput) -> Self {
        Self::with_service(Service::new(self.store, self.site).with_reports(reports))
    }
}

/// The complete router, with logging, body-size limit and request timeout applied: the API,
/// and the web console at `/` (its pages keep their own limits and answer in HTML).
pub fn router(mut state: AppState, limits: &config::Limits) -> axum::Router {
    state.rate_limits = Arc::new(rate_limit::RateLimits::new(limits));
    let web = tally_web::router(tally_web::WebState::new(state.service.clone()));
    let counted = axum::middleware::from_fn_with_state(state.clone(), metrics::count);
    routes::router(state, limits).merge(web).layer(counted)
}

/// Serves plain HTTP on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: &config::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    transport::serve_connections(listener, router(state, limits), None, shutdown).await
}

/// Serves HTTPS with `tls` on `listener` until `shutdown` completes.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: &config::Limits,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state, limits).layer(axum::Extension(tally_web::Https));
    transport::serve_connections(listener, app, Some(tls), shutdown).await
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
