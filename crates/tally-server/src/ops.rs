//! What a service manager, a load balancer and a monitoring system ask the server: `/healthz`
//! (the process answers: restart it when not), `/readyz` (it can serve: send it traffic only
//! when so). They differ on purpose: a database outage makes every replica unready, and
//! restarting them all for it would only add a restart storm to the outage. `/metrics` is
//! served here too ([`crate::metrics`]).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use tally_api::{Health, Readiness};

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// How long `/readyz` waits for the database: probes run every few seconds, and a database
/// that takes longer than this to answer one small query is not ready for traffic.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// The probe routes, merged into the main router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::metrics))
}

#[utoipa::path(get, path = "/healthz", tag = "server",
    responses(
        (status = 200, description = "The server process answers (its database is not asked: see /readyz)", body = Health),
    ))]
pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        site_code: state.site.to_string(),
        database: state.store.backend().into(),
        schema_version: state.store.schema_shipped(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "server",
    responses(
        (status = 200, description = "The database answers and holds the schema this binary expects", body = Readiness),
        (status = 503, description = "Not ready: the message says why (database unreachable, schema behind or ahead)", body = ErrorBody),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let unready = |why: String| ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, why);
    let asked = tokio::time::timeout(READY_TIMEOUT, state.store.schema_version()).await;
    let schema = match asked {
        Err(_) => {
            return Err(unready(format!(
                "the database did not answer within {} s",
                READY_TIMEOUT.as_secs()
            )))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database is unreachable");
            return Err(unready(format!("the database is unreachable: {e}")));
        }
        Ok(Ok(schema)) => schema,
    };
    if schema.database < schema.binary {
        return Err(unready(format!(
            "the database's schema is version {}, this server expects {}: restart the server, \
             which applies the missing migrations at start",
            schema.database, schema.binary
        )));
    }
    if schema.database > schema.binary {
        return Err(unready(format!(
            "the database's schema is version {}, newer than this server's {}: a newer release \
             migrated it; upgrade this server",
            schema.database, schema.binary
        )));
    }
    Ok(Json(Readiness {
        status: "ready".into(),
        database: state.store.backend().into(),
        schema_version: schema.database,
    }))
}
