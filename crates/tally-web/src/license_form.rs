//! The license form: its fields (bounded, parsed with each problem on its field), the choices
//! seed 002 allows offered instead of typed, and pick lists of the names a license can be
//! assigned to.

use chrono::NaiveDate;
use maud::{html, Markup};
use serde::Deserialize;
use tally_api::LicensePatch;
use tally_core::import::LicenseRow;
use tally_core::licenses::{AssignmentType, Metric};
use tally_service::Service;
use tally_store::Page;

use crate::forms::{bounded, csrf_input, field, Problems};
use crate::layout::words;

/// The most names of each kind offered to pick from; any other name may still be typed.
const PICK_LIMIT: i64 = 500;

/// The fields as sent, every one text so a malformed value becomes a message, not a refusal.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LicenseForm {
    pub csrf: String,
    pub application: String,
    pub metric: String,
    pub quantity: String,
    pub assignment_type: String,
    pub assigned_to: String,
    pub purchase_date: String,
    pub valid_from: String,
    pub valid_until: String,
    pub maintenance_until: String,
    pub unit_cost: String,
    pub currency: String,
    pub vendor: String,
    pub order_reference: String,
    pub notes: String,
}

/// The form's fields by name, for placing the service's refusals.
pub const FIELDS: [&str; 14] = [
    "application",
    "metric",
    "quantity",
    "assignment_type",
    "assigned_to",
    "purchase_date",
    "valid_from",
    "valid_until",
    "maintenance_until",
    "unit_cost",
    "currency",
    "vendor",
    "order_reference",
    "notes",
];

fn text(value: &str) -> Option<String> {
    Some(value.trim().to_string()).filter(|t| !t.is_empty())
}

fn date(name: &str, value: &str, problems: &mut Problems) -> Option<NaiveDate> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let parsed = NaiveDate::parse_from_str(value, "%Y-%m-%d");
    if parsed.is_err() {
        problems.0.push((
            name.into(),
            format!("give a day as YYYY-MM-DD, not {value:?}"),
        ));
    }
    parsed.ok()
}

impl LicenseForm {
    /// The form as an import row, or what is wrong with it field by field.
    pub fn row(&self) -> Result<LicenseRow, Problems> {
        let mut problems = Problems::default();
        for (name, value) in self.texts() {
            if let Err(p) = bounded(name, value) {
                problems.0.push(p);
            }
        }
        if self.application.trim().is_empty() {
            problems
                .0
                .push(("application".into(), "choose an application".into()));
        }
        let metric = Metric::parse(&self.metric);
        if metric.is_none() {
            problems.0.push(("metric".into(), "choose a metric".into()));
        }
        let assignment = AssignmentType::parse(&self.assignment_type);
        if assignment.is_none() {
            problems
                .0
                .push(("assignment_type".into(), "choose an assignment type".into()));
        }
        let quantity = self.quantity.trim().parse::<i64>();
        if quantity.is_err() {
            problems.0.push((
                "quantity".into(),
                format!("a whole number, not {:?}", self.quantity),
            ));
        }
        let dates = [
            date("purchase_date", &self.purchase_date, &mut problems),
            date("valid_from", &self.valid_from, &mut problems),
            date("valid_until", &self.valid_until, &mut problems),
            date("maintenance_until", &self.maintenance_until, &mut problems),
        ];
        let (Some(metric), Some(assignment_type), Ok(quantity), true) =
            (metric, assignment, quantity, problems.is_empty())
        else {
            return Err(problems);
        };
        Ok(LicenseRow {
            application: self.application.trim().to_string(),
            metric,
            quantity,
            assignment_type,
            assigned_to: text(&self.assigned_to),
            purchase_date: dates[0],
            valid_from: dates[1],
            valid_until: dates[2],
            maintenance_until: dates[3],
            unit_cost: text(&self.unit_cost),
            currency: text(&self.currency),
            vendor: text(&self.vendor),
            order_reference: text(&self.order_reference),
            notes: text(&self.notes),
        })
    }

    fn texts(&self) -> [(&'static str, &str); 14] {
        [
            ("application", &self.application),
            ("metric", &self.metric),
            ("quantity", &self.quantity),
            ("assignment_type", &self.assignment_type),
            ("assigned_to", &self.assigned_to),
            ("purchase_date", &self.purchase_date),
            ("valid_from", &self.valid_from),
            ("valid_until", &self.valid_until),
            ("maintenance_until", &self.maintenance_until),
            ("unit_cost", &self.unit_cost),
            ("currency", &self.currency),
            ("vendor", &self.vendor),
            ("order_reference", &self.order_reference),
            ("notes", &self.notes),
        ]
    }

    /// The new terms of an edited license: every field as the form shows it (an emptied text
    /// clears it; a date left empty keeps its day).
    pub fn patch(row: &LicenseRow) -> LicensePatch {
        let text = |t: &Option<String>| Some(t.clone().unwrap_or_default());
        LicensePatch {
            metric: Some(row.metric),
            quantity: Some(row.quantity),
            assignment_type: Some(row.assignment_type),
            assigned_to: text(&row.assigned_to),
            purchase_date: row.purchase_date,
            valid_from: row.valid_from,
            valid_until: row.valid_until,
            maintenance_until: row.maintenance_until,
            unit_cost: text(&row.unit_cost),
            currency: text(&row.currency),
            vendor: text(&row.vendor),
            order_reference: text(&row.order_reference),
            notes: text(&row.notes),
        }
    }
}

/// What the form offers to pick: applications, and the names of each kind of assignee.
pub struct Choices {
    pub applications: Vec<String>,
    nodes: Vec<String>,
    computers: Vec<String>,
    users: Vec<String>,
}

impl Choices {
    pub async fn read(service: &Service) -> Result<Self, tally_service::ServiceError> {
        let store = service.store();
        let page = Page {
            after: 0,
            limit: PICK_LIMIT,
        };
        let mut applications: Vec<String> = store
            .applications()
            .await?
            .into_iter()
            .map(|a| a.application.name)
            .collect();
        applications.sort_by_key(|a| a.to_lowercase());
        let nodes = tally_service::org::nodes(store)
            .await?
            .into_iter()
            .map(|n| n.node.name)
            .collect();
        let computers = store
            .devices(page)
            .await?
            .into_iter()
            .map(|d| d.host_name)
            .collect();
        let users = store
            .users(page)
            .await?
            .into_iter()
            .map(|u| u.account)
            .collect();
        Ok(Self {
            applications,
            nodes,
            computers,
            users,
        })
    }
}

/// Metrics a license may have: those seed 002 lets be assigned to anything.
fn license_metrics() -> impl Iterator<Item = Metric> {
    Metric::ALL
        .into_iter()
        .filter(|m| !m.allowed_assignments().is_empty())
}

fn assignment_text(a: AssignmentType) -> &'static str {
    match a {
        AssignmentType::Organization => "organization (an org node and all below it)",
        AssignmentType::Site => "site (that org node alone)",
        AssignmentType::Computer => "computer",
        AssignmentType::User => "user",
    }
}

fn select(name: &str, options: Markup) -> Markup {
    html! { select id=(name) name=(name) required { option value="" { "— choose —" } (options) } }
}

fn input(name: &str, kind: &str, value: &str) -> Markup {
    html! { input id=(name) name=(name) type=(kind) value=(value) maxlength="255"; }
}

/// The form, filled with `values`, each problem beside its field; `fixed_application` when
/// editing (a license keeps its application).
pub fn render(
    action: &str,
    csrf: &str,
    values: &LicenseForm,
    problems: &Problems,
    choices: &Choices,
    fixed_application: Option<&str>,
) -> Markup {
    let application = match fixed_application {
        Some(name) => {
            html! { input #application type="text" name="application" value=(name) readonly; }
        }
        None => select(
            "application",
            html! {
                @for a in &choices.applications { option value=(a) selected[*a == values.application] { (a) } }
            },
        ),
    };
    let metrics = select(
        "metric",
        html! {
            @for m in license_metrics() {
                @let allowed: Vec<&str> = m.allowed_assignments().iter().map(|a| a.as_str()).collect();
                option value=(m.as_str()) data-assignments=(allowed.join(" ")) selected[values.metric == m.as_str()] { (words(m.as_str())) }
            }
        },
    );
    let assignments = select(
        "assignment_type",
        html! {
            @for a in AssignmentType::ALL {
                option value=(a.as_str()) selected[values.assignment_type == a.as_str()] { (assignment_text(a)) }
            }
        },
    );
    let general = problems.general(&FIELDS);
    html! {
        form.license method="post" action=(action) novalidate {
            @for e in &general { p.error role="alert" { (e) } }
            (csrf_input(csrf))
            (field("Application", "application", application, problems))
            (field("Metric", "metric", metrics, problems))
            (field("Quantity", "quantity", html! { input #quantity name="quantity" type="number" min="0" value=(values.quantity) required; }, problems))
            (field("Assigned as", "assignment_type", assignments, problems))
            (field("Assigned to (name; empty for the whole organisation)", "assigned_to",
                html! { input #assigned_to name="assigned_to" type="text" list="names-organization" value=(values.assigned_to) maxlength="255" autocomplete="off"; }, problems))
            (field("Purchased", "purchase_date", input("purchase_date", "date", &values.purchase_date), problems))
            (field("Valid from", "valid_from", input("valid_from", "date", &values.valid_from), problems))
            (field("Valid until", "valid_until", input("valid_until", "date", &values.valid_until), problems))
            (field("Maintenance until", "maintenance_until", input("maintenance_until", "date", &values.maintenance_until), problems))
            (field("Unit cost (e.g. 129.90)", "unit_cost", input("unit_cost", "text", &values.unit_cost), problems))
            (field("Currency (e.g. EUR)", "currency", input("currency", "text", &values.currency), problems))
            (field("Vendor", "vendor", input("vendor", "text", &values.vendor), problems))
            (field("Order reference", "order_reference", input("order_reference", "text", &values.order_reference), problems))
            (field("Notes", "notes", input("notes", "text", &values.notes), problems))
            (pick_lists(choices))
            button type="submit" { "Save license" }
        }
    }
}

fn pick_lists(c: &Choices) -> Markup {
    let lists = [
        ("names-organization", &c.nodes),
        ("names-site", &c.nodes),
        ("names-computer", &c.computers),
        ("names-user", &c.users),
    ];
    html! {
        @for (id, names) in lists {
            datalist id=(id) { @for n in names { option value=(n) {} } }
        }
    }
}
