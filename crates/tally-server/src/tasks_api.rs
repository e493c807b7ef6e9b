//! Maintenance tasks (state, schedule, run now) and the usage summaries they make.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use tally_api::{FileUsageRow, MonthlyRow, TaskChange, TaskView};
use tally_core::tasks::{Task, TaskState};
use tally_core::SiteCode;
use tally_service::{rules, scope, summary_views};
use utoipa::IntoParams;

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::{JsonBody, Path, Query};
use crate::{ApiError, AppState};

async fn view(state: &AppState, task: TaskState) -> Result<TaskView, ApiError> {
    let summarises = Task::parse(&task.name).is_some_and(Task::reads_raw_usage);
    let pending_records = match summarises {
        true => Some(state.store.usage_pending(task.watermark).await?),
        false => None,
    };
    Ok(TaskView {
        newest_serial: state.store.newest_time_serial().await?,
        pending_records,
        state: task,
    })
}

fn task_named(name: &str) -> Result<Task, ApiError> {
    Task::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Task::ALL.iter().map(|t| t.name()).collect();
        ApiError::NotFound(format!(
            "no task {name:?}; the tasks are {}",
            names.join(", ")
        ))
    })
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "maintenance", security(("bearer" = [])),
    responses((status = 200, body = Vec<TaskView>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<TaskView>>, ApiError> {
    let mut views = Vec::new();
    for task in state.store.tasks().await? {
        views.push(view(&state, task).await?);
    }
    Ok(Json(views))
}

#[utoipa::path(patch, path = "/api/v1/tasks/{name}", tag = "maintenance", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = TaskChange,
    responses((status = 200, body = TaskView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn change(
    op: Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(change): JsonBody<TaskChange>,
) -> Result<Json<TaskView>, ApiError> {
    op.require_admin()?;
    let task = task_named(&name)?;
    let stored =
        tally_service::maintenance::change(&state.service, task, &change, op.name()).await?;
    Ok(Json(view(&state, stored).await?))
}

#[utoipa::path(post, path = "/api/v1/tasks/{name}/run", tag = "maintenance", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, description = "The task ran; its state after the run", body = TaskView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The task is running already, here or on another replica", body = ErrorBody)))]
pub(crate) async fn run(
    op: Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    op.require_admin()?;
    let task = task_named(&name)?;
    let after = tally_service::maintenance::run_as(&state.service, task, op.name()).await?;
    Ok(Json(view(&state, after).await?))
}

/// Which summaries to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SummaryParams {
    /// Only this rule (by name).
    rule: Option<String>,
    /// First day (YYYY-MM-DD); default 30 days ago, or for months, twelve months ago.
    from: Option<NaiveDate>,
    /// Last day, included (YYYY-MM-DD); default today.
    to: Option<NaiveDate>,
    /// Only devices of this site and the sites below it (at a parent; default: the whole
    /// subtree this site holds). Hours are then recomputed from the raw records, at most 92
    /// days at a time and only from the first day whose raw records are all kept (without
    /// `from`, the period starts there).
    site: Option<String>,
}

impl SummaryParams {
    async fn sites(&self, state: &AppState) -> Result<Option<Vec<SiteCode>>, ApiError> {
        Ok(scope::subtree_of(&state.service, self.site.as_deref()).await?)
    }

    async fn rule_id(&self, state: &AppState) -> Result<Option<i64>, ApiError> {
        let Some(name) = &self.rule else {
            return Ok(None);
        };
        Ok(Some(rules::named(&state.service, name).await?.id))
    }

    fn days(&self, default_back: Duration) -> Result<(NaiveDate, NaiveDate), ApiError> {
        let to = self.to.unwrap_or_else(|| Utc::now().date_naive());
        let from = self.from.unwrap_or(to - default_back);
        if from > to {
            return Err(ApiError::BadRequest("from: must not be after to".into()));
        }
        Ok((from, to))
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

#[utoipa::path(get, path = "/api/v1/summaries/file-usage", tag = "summaries", security(("bearer" = [])),
    params(SummaryParams),
    responses((status = 200, description = "Per rule (id and name) and UTC hour", body = Vec<FileUsageRow>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn file_usage(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<SummaryParams>,
) -> Result<Json<Vec<FileUsageRow>>, ApiError> {
    let (from, to) = p.days(Duration::days(30))?;
    let rule = p.rule_id(&state).await?;
    let (mut from, to) = (midnight(from), midnight(to) + Duration::days(1));
    let sites = p.sites(&state).await?;
    if sites.is_some() && p.from.is_none() {
        // A site's hours come from raw records: the default period starts where they are kept.
        from = from
            .max(scope::first_whole_day(state.store.as_ref()).await?)
            .min(to);
    }
    let rows =
        summary_views::file_usage(&state.service, rule, (from, to), sites.as_deref()).await?;
    Ok(Json(rows))
}

#[utoipa::path(get, path = "/api/v1/summaries/monthly", tag = "summaries", security(("bearer" = [])),
    params(SummaryParams),
    responses((status = 200, description = "Per rule, device, user (ids and names) and month", body = Vec<MonthlyRow>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn monthly(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<SummaryParams>,
) -> Result<Json<Vec<MonthlyRow>>, ApiError> {
    let (from, to) = p.days(Duration::days(365))?;
    let rule = p.rule_id(&state).await?;
    let months = (
        tally_core::summary::month_of(from),
        tally_core::summary::month_of(to),
    );
    let sites = p.sites(&state).await?;
    let rows = summary_views::monthly(state.store.as_ref(), rule, months, sites.as_deref()).await?;
    Ok(Json(rows))
}
