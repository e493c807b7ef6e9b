//! A metering rule's page: its definition, and for an admin the form that edits it (name, file
//! names, version pattern, product, language, comment, child sites), checked by the service's
//! own validation (`RuleSpec::validate` and the unique name per site) with each refusal shown
//! beside the field it names, and saved with its `rule.update` audit entry.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use tally_core::rules::RuleSpec;
use tally_core::MeteringRule;
use tally_service::ServiceError;

use crate::forms::{csrf_input, field, Problems};
use crate::session::Signed;
use crate::{layout, WebError, WebState};

/// The fields the form shows, as the service names them in a refusal.
const FIELDS: [&str; 8] = [
    "name",
    "file_name",
    "original_file_name",
    "file_version",
    "product_name",
    "language",
    "comment",
    "apply_to_child_sites",
];

/// The longest comment a rule keeps (as the API's).
const MAX_COMMENT: usize = 4096;

/// The form as typed.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RuleEdit {
    csrf: String,
    name: String,
    file_name: String,
    original_file_name: String,
    file_version: String,
    product_name: String,
    language: String,
    comment: String,
    apply_to_child_sites: String,
}

impl RuleEdit {
    fn of(spec: &RuleSpec) -> Self {
        RuleEdit {
            csrf: String::new(),
            name: spec.name.clone(),
            file_name: spec.file_name.clone(),
            original_file_name: spec.original_file_name.clone(),
            file_version: spec.file_version.clone(),
            product_name: spec.product_name.clone(),
            language: spec.language.to_string(),
            comment: spec.comment.clone(),
            apply_to_child_sites: if spec.apply_to_child_sites { "on" } else { "" }.into(),
        }
    }

    /// The rule's new spec (it stays on or off as it was), or what is wrong with the form.
    fn spec(&self, old: &RuleSpec) -> Result<RuleSpec, Problems> {
        let mut problems = Problems::of_lengths(&[
            ("name", &self.name),
            ("file_name", &self.file_name),
            ("original_file_name", &self.original_file_name),
            ("file_version", &self.file_version),
            ("product_name", &self.product_name),
        ]);
        if self.comment.chars().count() > MAX_COMMENT {
            let why = format!("at most {MAX_COMMENT} characters");
            problems.0.push(("comment".into(), why));
        }
        let language = match self.language.trim().parse::<i32>() {
            Ok(n) => n,
            Err(_) => {
                let why = "a whole number from 0 to 65535 (65535: any language)";
                problems.0.push(("language".into(), why.into()));
                0
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(RuleSpec {
            name: self.name.trim().into(),
            file_name: self.file_name.trim().into(),
            original_file_name: self.original_file_name.trim().into(),
            file_version: self.file_version.trim().into(),
            language,
            product_name: self.product_name.trim().into(),
            comment: self.comment.trim().into(),
            apply_to_child_sites: self.apply_to_child_sites == "on",
            enabled: old.enabled,
        })
    }
}

/// The rule of the path's id.
async fn find(state: &WebState, id: &str) -> Result<MeteringRule, WebError> {
    let missing = || WebError::NotFound("no such rule; see the rule list".into());
    let id: i64 = id.parse().map_err(|_| missing())?;
    state.service.store().rule(id).await?.ok_or_else(missing)
}

fn text(id: &str, value: &str, max: usize) -> Markup {
    html! { input id=(id) name=(id) type="text" value=(value) maxlength=(max); }
}

fn form(signed: &Signed, rule: &MeteringRule, v: &RuleEdit, problems: &Problems) -> Markup {
    let general = problems.general(&FIELDS);
    let child_sites = html! {
        input #apply_to_child_sites name="apply_to_child_sites" type="checkbox" value="on" checked[v.apply_to_child_sites == "on"];
    };
    html! {
        form.license #rule-edit method="post" action={"/rules/" (rule.id)} novalidate {
            @for e in &general { p.error role="alert" { (e) } }
            (csrf_input(&signed.csrf()))
            (field("Name", "name", text("name", &v.name, 255), problems))
            (field("File name (exactly, e.g. soffice.bin)", "file_name", text("file_name", &v.file_name, 255), problems))
            (field("Original file name", "original_file_name", text("original_file_name", &v.original_file_name, 255), problems))
            (field("Version (* and ? wildcards; * for any)", "file_version", text("file_version", &v.file_version, 128), problems))
            (field("Product", "product_name", text("product_name", &v.product_name, 255), problems))
            (field("Language (65535: any)", "language", html! { input #language name="language" type="number" min="0" max="65535" value=(v.language); }, problems))
            (field("Comment", "comment", html! { textarea #comment name="comment" maxlength=(MAX_COMMENT) rows="3" { (v.comment) } }, problems))
            (field("Also meter on child sites", "apply_to_child_sites", child_sites, problems))
            button type="submit" { "Save rule" }
        }
    }
}

/// What the auditor (and an admin above the form) reads.
fn definition(rule: &MeteringRule) -> Markup {
    let s = &rule.spec;
    let rows = [
        ("Name", s.name.clone()),
        ("File name", s.file_name.clone()),
        ("Original file name", s.original_file_name.clone()),
        ("Version", s.file_version.clone()),
        ("Product", s.product_name.clone()),
        ("Language", s.language.to_string()),
        ("Comment", s.comment.clone()),
        (
            "Child sites",
            if s.apply_to_child_sites {
                "metered too"
            } else {
                "not metered"
            }
            .into(),
        ),
        ("On", if s.enabled { "on" } else { "off" }.into()),
        ("Site", rule.site_code.to_string()),
    ];
    html! { dl.terms #rule-terms { @for (k, v) in rows { dt { (k) } dd { (v) } } } }
}

fn page(signed: &Signed, rule: &MeteringRule, v: &RuleEdit, problems: &Problems) -> Response {
    let body = html! {
        p { a href="/rules" { "← Metering rules" } }
        @if signed.is_admin() { (form(signed, rule, v, problems)) }
        @else { p.muted.read-only { "Read-only: the auditor role cannot change rules." } (definition(rule)) }
    };
    let title = format!("Metering rule {}", rule.spec.name);
    let status = match problems.is_empty() {
        true => StatusCode::OK,
        false => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, layout::page(signed, "/rules", &title, body)).into_response()
}

pub async fn show(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let rule = find(&state, &id).await?;
    let values = RuleEdit::of(&rule.spec);
    Ok(page(&signed, &rule, &values, &Problems::default()))
}

/// A refusal a rule form shows: a validation's on the field of `fields` it names, a name in
/// use on the name; anything else is an error page.
pub fn refused(e: ServiceError, fields: &[&str]) -> Result<Problems, WebError> {
    match e {
        ServiceError::Conflict(message) => Ok(Problems(vec![("name".into(), message)])),
        other => Problems::of_invalid(other, fields),
    }
}

pub async fn save(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<RuleEdit>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let rule = find(&state, &id).await?;
    let problems = match form.spec(&rule.spec) {
        Err(problems) => problems,
        Ok(spec) => {
            match tally_service::rules::update(&state.service, signed.name(), rule.id, &spec).await
            {
                Ok(_) => {
                    return Ok(Redirect::to(&format!("/rules#rule-{}", rule.id)).into_response())
                }
                Err(e) => refused(e, &FIELDS)?,
            }
        }
    };
    Ok(page(&signed, &rule, &form, &problems))
}
