//! Tally's site server: the HTTP API over a [`tally_store::Store`], its configuration, and the
//! OpenAPI document generated from the handlers.

mod admin_api;
mod agent_api;
pub mod auth;
pub mod autorules;
pub mod compliance;
mod compliance_api;
pub mod config;
mod error;
pub mod ingest;
pub mod maintenance;
mod openapi;
mod org_api;
mod read_api;
mod reports_api;
mod routes;
mod tasks_api;
pub mod transport;

use std::future::Future;
use std::sync::Arc;

use tally_core::SiteCode;
use tally_store::prelude::*;

pub use config::{Config, ConfigFile, ConfigOverrides};
pub use error::{ApiError, ErrorBody};
pub use openapi::openapi_json;
pub use reports_api::{write_scheduled, ReportOutput};

/// Concurrent usage-batch writes per server.
pub const WRITE_SLOTS: usize = 4;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub site: SiteCode,
    pub ingest: Arc<ingest::DimensionCache>,
    /// Usage writes in progress at once. More than a few only queue inside the database (SQLite
    /// has one writer; its busy handler sleeps between retries), so uploads wait here instead,
    /// having already parsed and validated their bodies.
    pub write_slots: Arc<tokio::sync::Semaphore>,
    /// Where the `write_reports` task writes, and what.
    pub reports: Arc<ReportOutput>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, site: SiteCode) -> Self {
        Self {
            store,
            site,
            ingest: Arc::default(),
            write_slots: Arc::new(tokio::sync::Semaphore::new(WRITE_SLOTS)),
            reports: Arc::default(),
        }
    }

    /// The same state, writing scheduled reports as `reports` says.
    pub fn with_reports(mut self, reports: ReportOutput) -> Self {
        self.reports = Arc::new(reports);
        self
    }
}

/// The complete router, with logging, body-size limit and request timeout applied.
pub fn router(state: AppState, limits: &config::Limits) -> axum::Router {
    routes::router(state, limits)
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
    transport::serve_connections(listener, router(state, limits), Some(tls), shutdown).await
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
