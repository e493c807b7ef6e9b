//! Reports: the catalogue, a report's parameters as a form (programs and applications picked
//! from lists, months and days as such), the report run and downloaded as PDF, HTML, CSV or
//! JSON (built by `tally_service::reports`, exactly as the API and `tally report` build it), a
//! preview of its table on the page, and the scheduled reports written so far.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{html, Markup};
use tally_report::catalogue::ParamKind;
use tally_report::{Format, Report, ReportDef, CATALOGUE};
use tally_service::written_reports;

use crate::apps::{paged, PageQuery};
use crate::forms::MAX_FIELD_CHARS;
use crate::session::Signed;
use crate::{layout, WebError, WebState};

/// Rows of a report shown on its page; the download holds them all.
const PREVIEW_ROWS: usize = 100;
/// Query parameters a report request may carry (the most any report takes, with room).
const MAX_PARAMS: usize = 12;

pub async fn catalogue(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let all = written_reports::list(&state.service)?;
    let (written, _, pages) = paged(&all, &q.page, |n| format!("/reports?page={n}#written"));
    let body = html! {
        table #catalogue {
            thead { tr { th { "Report" } th { "What it shows" } } }
            tbody { @for def in CATALOGUE.iter() {
                tr { td { a href={"/reports/" (def.name)} { (def.title) } } td { (def.description) } }
            } }
        }
        h2 { "Scheduled reports written so far" }
        @if written.is_empty() {
            p #written-none { "None yet: the " code { "write_reports" } " maintenance task writes them (see " a href="/admin/tasks" { "tasks" } ")." }
        } @else {
            table #written {
                thead { tr { th { "Day" } th { "File" } th.num { "Size" } } }
                tbody { @for r in written {
                    tr { td { (r.day) } td { a href={"/reports/written/" (r.day) "/" (layout::encode(&r.file))} download { (r.file) } } td.num { (size(r.bytes)) } }
                } }
            }
            (pages)
        }
    };
    Ok(layout::page(&signed, "/reports", "Reports", body).into_response())
}

/// `1.2 MiB`, `340 KiB`, `12 bytes`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn find(name: &str) -> Result<&'static ReportDef, WebError> {
    tally_report::find(name).map_err(|_| {
        WebError::NotFound(format!(
            "no report {:?}; see the catalogue",
            name.chars().take(60).collect::<String>()
        ))
    })
}

/// The query's pairs, bounded, without the format.
fn params(query: &[(String, String)]) -> Result<Vec<(String, String)>, WebError> {
    if query.len() > MAX_PARAMS {
        return Err(WebError::BadRequest(format!(
            "at most {MAX_PARAMS} parameters"
        )));
    }
    let long = query
        .iter()
        .find(|(k, v)| k.chars().count() > 40 || v.chars().count() > MAX_FIELD_CHARS);
    if let Some((k, _)) = long {
        return Err(WebError::BadRequest(format!(
            "{}: at most {MAX_FIELD_CHARS} characters",
            k.chars().take(40).collect::<String>()
        )));
    }
    Ok(query
        .iter()
        .filter(|(k, v)| k != "format" && !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect())
}

/// Choices for the report form: programs (metering rules) and applications by name, and the
/// sites this one holds by code.
struct Choices {
    programs: Vec<String>,
    apps: Vec<String>,
    sites: Vec<String>,
}

async fn names(state: &WebState) -> Result<Choices, WebError> {
    let store = state.service.store();
    let mut programs: Vec<String> = store
        .rules()
        .await?
        .into_iter()
        .map(|r| r.spec.name)
        .collect();
    programs.sort_by_key(|p| p.to_lowercase());
    let mut apps: Vec<String> = store
        .applications()
        .await?
        .into_iter()
        .map(|a| a.application.name)
        .collect();
    apps.sort_by_key(|a| a.to_lowercase());
    let mut sites: Vec<String> = (store.sites().await?)
        .into_iter()
        .map(|s| s.code.to_string())
        .collect();
    sites.sort();
    Ok(Choices {
        programs,
        apps,
        sites,
    })
}

fn param_control(kind: ParamKind, name: &str, value: &str, choices: &Choices) -> Markup {
    let choose = |items: &[String], all: &str| {
        html! { select id=(name) name=(name) {
            option value="" { (all) }
            @for i in items { option value=(i) selected[i == value] { (i) } }
        } }
    };
    match kind {
        ParamKind::Program => choose(&choices.programs, "— the default —"),
        ParamKind::Application => choose(&choices.apps, "— the default —"),
        ParamKind::Site => choose(&choices.sites, "— this site and every site below —"),
        ParamKind::Month => {
            html! { input id=(name) name=(name) type="month" value=(value) placeholder="YYYY-MM"; }
        }
        ParamKind::Date => html! { input id=(name) name=(name) type="date" value=(value); },
        ParamKind::Integer { min, max } => {
            html! { input id=(name) name=(name) type="number" min=(min) max=(max) value=(value); }
        }
    }
}

/// A report's page: its parameters as a form, and with `run` in the query, its table.
pub async fn report(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let def = find(&name)?;
    let given = params(&query)?;
    let run = given.iter().any(|(k, _)| k == "run");
    let given: Vec<(String, String)> = given.into_iter().filter(|(k, _)| k != "run").collect();
    let value = |p: &str| value_of(&given, p).unwrap_or("");
    let choices = names(&state).await?;
    let built = match run {
        true => {
            Some(tally_service::reports::make(&state.service, def.name, &given, Utc::now()).await)
        }
        false => None,
    };
    let refusal = match &built {
        Some(Err(tally_service::ServiceError::Invalid(m))) => Some(m.clone()),
        Some(Err(_)) => return Err(built.expect("some").expect_err("an error").into()),
        _ => None,
    };
    let downloads: Vec<(&str, String)> = ["pdf", "html", "csv", "json"]
        .into_iter()
        .map(|f| {
            (
                f,
                format!(
                    "/reports/{}/download{}",
                    def.name,
                    crate::apps::query(&with_format(&given, f))
                ),
            )
        })
        .collect();
    let body = html! {
        p { a href="/reports" { "← All reports" } }
        p { (def.description) }
        form.filters #report-form method="get" action={"/reports/" (def.name)} {
            @for p in def.params {
                div.field {
                    label for=(p.name) { (p.name) }
                    (param_control(p.kind, p.name, value(p.name), &choices))
                    p.hint { (p.help) }
                }
            }
            input type="hidden" name="run" value="1";
            button type="submit" { "Run the report" }
        }
        @if let Some(m) = &refusal { p.error role="alert" #report-refused { (m) } }
        @if let Some(Ok(report)) = &built {
            p #downloads { "Download: " @for (i, (f, href)) in downloads.iter().enumerate() {
                @if i > 0 { " · " } a id={"download-" (f)} href=(href) download { (f.to_uppercase()) }
            } }
            (preview(report))
        }
    };
    Ok(layout::page(&signed, "/reports", def.title, body).into_response())
}

/// The value of `name` among a query's pairs, when it is given.
fn value_of<'q>(pairs: &'q [(String, String)], name: &str) -> Option<&'q str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn with_format<'a>(given: &'a [(String, String)], format: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut pairs: Vec<(&str, &str)> = given
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push(("format", format));
    pairs
}

/// A report's first rows as a table with the id `id`.
pub fn report_table(report: &Report, id: &str) -> Markup {
    html! {
        table id=(id) {
            thead { tr { @for c in &report.columns { th.num[c.numeric] { (c.label) } } } }
            tbody {
                @for row in report.rows.iter().take(PREVIEW_ROWS) {
                    tr { @for (cell, c) in row.iter().zip(&report.columns) { td.num[c.numeric] { (cell.display()) } } }
                }
                @if report.rows.is_empty() { tr { td colspan=(report.columns.len().max(1)) { "No rows." } } }
            }
        }
    }
}

fn preview(report: &Report) -> Markup {
    html! {
        @for (k, v) in &report.params { p.hint { (k) " = " (v) } }
        @for n in &report.notes { p { (n) } }
        (report_table(report, "report-table"))
        @if report.rows.len() > PREVIEW_ROWS {
            p { "The first " (PREVIEW_ROWS) " of " (report.rows.len()) " rows; the download holds them all." }
        }
    }
}

/// The report built and rendered in the query's `format`, as a download.
pub async fn download(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let def = find(&name)?;
    let given = params(&query)?;
    let format_text = value_of(&query, "format").unwrap_or("pdf");
    let format: Format = format_text
        .parse()
        .map_err(|_| WebError::BadRequest("format: one of pdf, html, csv, json".into()))?;
    let built = tally_service::reports::make(&state.service, def.name, &given, Utc::now()).await?;
    let bytes = tally_report::render(&built, format).map_err(tally_service::ServiceError::from)?;
    tracing::info!(operator = %signed.name(), report = def.name, "web console: report downloaded");
    let file = format!("{}.{}", def.name, format.extension());
    Ok(crate::download(&file, format.content_type(), bytes))
}

/// A scheduled report as written.
pub async fn written(
    State(state): State<WebState>,
    _signed: Signed,
    Path((day, file)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let day = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
        .map_err(|_| WebError::NotFound("no such day; see the reports page".into()))?;
    let bytes = written_reports::read(&state.service, day, &file)?;
    let ext = file.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let content_type = ext
        .parse::<Format>()
        .map(|f| f.content_type())
        .unwrap_or("application/octet-stream");
    Ok(crate::download(&file, content_type, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_fitting_units() {
        assert_eq!(size(12), "12 bytes");
        assert_eq!(size(340 * 1024), "340 KiB");
        assert_eq!(size(1_258_291), "1.2 MiB");
    }

    #[test]
    fn report_parameters_are_bounded() {
        let long = vec![("days".to_string(), "9".repeat(300))];
        assert!(params(&long).is_err());
        let many: Vec<(String, String)> = (0..13).map(|i| (format!("p{i}"), "1".into())).collect();
        assert!(params(&many).is_err());
        let given = vec![
            ("format".to_string(), "pdf".to_string()),
            ("days".into(), " 90 ".into()),
            ("application".into(), "".into()),
        ];
        assert_eq!(
            params(&given).unwrap(),
            vec![("days".to_string(), "90".to_string())]
        );
    }
}
