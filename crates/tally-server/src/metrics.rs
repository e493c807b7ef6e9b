//! `/metrics` in Prometheus' text format, behind a bearer token of its own (the
//! `metrics_token_file` setting; without it the endpoint is off). What this process counted
//! comes from [`tally_service::telemetry`]; what the database knows is read at each scrape, so
//! every replica reports the same agents, backlogs and task runs.

use std::fmt::Write as _;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use tally_core::tasks::{Task, TaskState};
use tally_service::telemetry::Telemetry;

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// The path whose answers feed the upload-latency histogram.
const UPLOAD_PATH: &str = "/api/v1/agent/usage";

/// Counts every answer by status, and times agents' uploads: a middleware around the whole
/// router (the web console included), outside the timeout, so 408s are counted too.
pub(crate) async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let upload = req.uri().path() == UPLOAD_PATH;
    let started = Instant::now();
    let response = next.run(req).await;
    let telemetry = state.service.telemetry();
    telemetry.responded(response.status().as_u16());
    if upload {
        telemetry.upload_latency.observe(started.elapsed());
    }
    response
}

#[utoipa::path(get, path = "/metrics", tag = "server", security(("metrics" = [])),
    responses(
        (status = 200, description = "Prometheus text format (version 0.0.4)", content_type = "text/plain"),
        (status = 401, description = "Missing or wrong metrics token", body = ErrorBody),
        (status = 404, description = "Metrics are off: no metrics_token_file is set", body = ErrorBody),
    ))]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(expected) = &state.metrics_token_hash else {
        return Err(ApiError::NotFound(
            "metrics are off: set metrics_token_file (--metrics-token-file) to a file holding the token Prometheus sends".into(),
        ));
    };
    let sent = crate::auth::bearer(&headers);
    // Compared as hashes: the comparison's time says nothing about the token.
    if sent.map(crate::auth::hash_token).as_deref() != Some(expected.as_str()) {
        return Err(ApiError::Unauthorized(
            "send the metrics token as Authorization: Bearer (Prometheus: authorization.credentials_file)".into(),
        ));
    }
    let mut text = Exposition::default();
    process_counters(&mut text, state.service.telemetry());
    let database_up = stored_figures(&mut text, &state).await.is_ok();
    text.gauge(
        "tally_database_up",
        "1 when the database answered this scrape's queries",
        &[],
        u8::from(database_up),
    );
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text.0,
    )
        .into_response())
}

/// The text exposition being written.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.0, "{name}");
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family of one unlabelled sample.
    fn gauge(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        v: impl std::fmt::Display,
    ) {
        self.family(name, "gauge", help);
        self.sample(name, labels, v);
    }

    fn counter(&mut self, name: &str, help: &str, v: impl std::fmt::Display) {
        self.family(name, "counter", help);
        self.sample(name, &[], v);
    }
}

/// A label value as the format wants it: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn process_counters(text: &mut Exposition, t: &Telemetry) {
    use std::sync::atomic::Ordering::Relaxed;
    text.family("tally_build_info", "gauge", "This server's version");
    text.sample(
        "tally_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    text.counter(
        "tally_ingest_records_total",
        "Usage records stored from agents' uploads",
        t.ingest_records.load(Relaxed),
    );
    text.counter(
        "tally_ingest_duplicates_total",
        "Usage records agents sent again that were stored already",
        t.ingest_duplicates.load(Relaxed),
    );
    text.counter(
        "tally_ingest_batches_total",
        "Usage batches accepted from agents",
        t.ingest_batches.load(Relaxed),
    );
    let name = "tally_upload_duration_seconds";
    text.family(
        name,
        "histogram",
        "Time from an agent's usage upload to its answer",
    );
    let (buckets, count, sum) = t.upload_latency.snapshot();
    let bucket = format!("{name}_bucket");
    for (bound, n) in buckets {
        text.sample(&bucket, &[("le", &bound.to_string())], n);
    }
    text.sample(&bucket, &[("le", "+Inf")], count);
    text.sample(&format!("{name}_sum"), &[], sum);
    text.sample(&format!("{name}_count"), &[], count);
    let name = "tally_http_responses_total";
    text.family(name, "counter", "HTTP answers by status");
    for (status, n) in t.responses() {
        text.sample(name, &[("status", &status.to_string())], n);
    }
    let runs = t.task_runs();
    let name = "tally_task_runs_total";
    text.family(
        name,
        "counter",
        "Maintenance task runs in this process by outcome",
    );
    for (task, r) in &runs {
        text.sample(name, &[("task", task), ("outcome", "ok")], r.ok);
        text.sample(name, &[("task", task), ("outcome", "failed")], r.failed);
    }
    let name = "tally_task_run_seconds_total";
    text.family(
        name,
        "counter",
        "Time maintenance tasks ran in this process",
    );
    for (task, r) in &runs {
        text.sample(name, &[("task", task)], r.seconds);
    }
}

/// What the database knows: agents, dropped records, the tasks' last runs and backlogs, and
/// the connection pool. Stops at the first error (the database is down: `tally_database_up`).
async fn stored_figures(text: &mut Exposition, state: &AppState) -> Result<(), ApiError> {
    let store = state.store.as_ref();
    let pool = store.pool_use();
    text.family(
        "tally_db_connections",
        "gauge",
        "Database connections held, by state",
    );
    text.sample("tally_db_connections", &[("state", "open")], pool.open);
    text.sample("tally_db_connections", &[("state", "idle")], pool.idle);
    let max = "tally_db_connections_max";
    text.gauge(max, "Most connections the pool opens", &[], pool.max);
    // A cycle and a half: heartbeats come once a cycle, give or take a quarter (jitter).
    let window = tally_service::agents::REPORT_INTERVAL_SECS as i64 * 3 / 2;
    let agents = (store.agent_figures(Utc::now() - chrono::Duration::seconds(window))).await?;
    text.gauge(
        "tally_agents_enrolled",
        "Agents enrolled and not revoked",
        &[],
        agents.enrolled,
    );
    text.gauge(
        "tally_agents_reporting",
        "Agents heard from within the last one and a half reporting cycles (22.5 minutes)",
        &[],
        agents.reporting,
    );
    text.gauge(
        "tally_agent_dropped_records",
        "Usage records agents reported dropping from a full spool, summed over agents",
        &[],
        agents.dropped,
    );
    text.gauge(
        "tally_agent_spooled_records",
        "Usage records waiting in agents' spools to be sent, as each agent's last heartbeat said",
        &[],
        agents.spooled,
    );
    text.gauge(
        "tally_ingest_queue_records",
        "Usage records this process has received and queued for its group-commit writers",
        &[],
        state.service.ingest_waiting(),
    );
    text.gauge(
        "tally_sync_backlog_records",
        "Usage records this site holds that its parent has not yet acknowledged (0 without a parent)",
        &[],
        tally_service::site_sync::backlog(&state.service).await?,
    );
    task_figures(text, state).await
}

/// A gauge per task from its stored state: name, help, and the value (none: not written).
type TaskGauge = (&'static str, &'static str, fn(&TaskState) -> Option<f64>);

async fn task_figures(text: &mut Exposition, state: &AppState) -> Result<(), ApiError> {
    let store = state.store.as_ref();
    let tasks = store.tasks().await?;
    let gauges: [TaskGauge; 3] = [
        (
            "tally_task_last_run_timestamp_seconds",
            "When each maintenance task last finished (any replica)",
            |t| t.last_run_at.map(|at| at.timestamp() as f64),
        ),
        (
            "tally_task_last_duration_seconds",
            "How long each maintenance task's last run took",
            |t| t.last_duration_ms.map(|ms| ms as f64 / 1000.0),
        ),
        (
            "tally_task_failing",
            "1 when the task's last run failed",
            |t| Some(f64::from(u8::from(t.last_error.is_some()))),
        ),
    ];
    for (name, help, value) in gauges {
        text.family(name, "gauge", help);
        for t in &tasks {
            if let Some(v) = value(t) {
                text.sample(name, &[("task", &t.name)], v);
            }
        }
    }
    let backlog = "tally_task_backlog_records";
    text.family(
        backlog,
        "gauge",
        "Raw usage records a summarising task has yet to take in",
    );
    for task in Task::ALL.into_iter().filter(|t| t.reads_raw_usage()) {
        let watermark = tasks
            .iter()
            .find(|t| t.name == task.name())
            .map_or(0, |t| t.watermark);
        let pending = store.usage_pending(watermark).await?;
        text.sample(backlog, &[("task", task.name())], pending);
    }
    Ok(())
}
