//! The system-metering result as the sections of one HTML or PDF document: the summary with
//! the metering version, the as-of time and the caution, then the installed certificates,
//! the device, user and operator overviews. Counts, statuses, certificate fields and the
//! alias only: no names, accounts or host names.

use tally_core::system_metering::MeteringResult;
use tally_report::{Cell, Column, Report};

fn yes_no(b: bool) -> Cell {
    Cell::text(if b { "yes" } else { "no" })
}

fn section(result: &MeteringResult, title: &str, columns: Vec<Column>) -> Report {
    Report {
        name: "system-metering".into(),
        title: title.into(),
        site: result.site.clone(),
        generated_at: result.as_of,
        params: Vec::new(),
        notes: Vec::new(),
        columns,
        rows: Vec::new(),
        chart: None,
    }
}

fn summary(r: &MeteringResult) -> Report {
    let mut s = section(
        r,
        "System metering report",
        vec![
            Column::text("figure", "Figure"),
            Column::text("value", "Value"),
        ],
    );
    s.notes = vec![r.caution.clone(), r.indications.clone()];
    s.rows = vec![
        vec![Cell::text("Site (alias)"), Cell::text(&r.site)],
        vec![
            Cell::text("Metering version"),
            Cell::text(r.metering_version.to_string()),
        ],
        vec![Cell::text("As of (UTC)"), Cell::time(r.as_of)],
        vec![
            Cell::text("Installed certificates"),
            Cell::text(r.certificates.len().to_string()),
        ],
        vec![
            Cell::text("Devices in relevant statuses"),
            Cell::text(r.relevant_devices.to_string()),
        ],
        vec![
            Cell::text("Natural persons in relevant statuses"),
            Cell::text(r.natural_persons.to_string()),
        ],
        vec![
            Cell::text("Operators with write access"),
            Cell::text(r.write_operators.to_string()),
        ],
    ];
    s
}

fn certificates(r: &MeteringResult) -> Report {
    let mut s = section(
        r,
        "Installed certificates",
        vec![
            Column::text("customer", "Customer name"),
            Column::text("product", "Product"),
            Column::number("count", "Count"),
            Column::text("created", "Created"),
            Column::text("expires", "Expires"),
            Column::text("key", "Key"),
        ],
    );
    s.rows = r
        .certificates
        .iter()
        .map(|c| {
            vec![
                Cell::text(&c.customer),
                Cell::text(&c.product),
                Cell::Int(c.count),
                Cell::text(c.created.to_string()),
                c.expires
                    .map(|d| Cell::text(d.to_string()))
                    .unwrap_or(Cell::Empty),
                Cell::text(&c.key),
            ]
        })
        .collect();
    s
}

fn devices(r: &MeteringResult) -> Report {
    let mut s = section(
        r,
        "Device overview",
        vec![
            Column::text("status", "Status"),
            Column::text("relevant", "Relevant"),
            Column::text("criteria", "Criteria that apply"),
            Column::number("devices", "Devices"),
            Column::number("mobile", "Of them mobile"),
        ],
    );
    s.notes = vec![format!(
        "Devices needing licenses (in relevant statuses): {}. A status is relevant when any of \
         the four criteria applies: license compliance, end-of-life monitoring, principal-user \
         assignment, help desk. Devices in irrelevant statuses are listed for transparency. \
         Mobile devices are those with the management type mdm.",
        r.relevant_devices
    )];
    s.rows = r
        .devices
        .iter()
        .map(|d| {
            vec![
                Cell::text(d.status.as_str()),
                yes_no(d.relevant),
                Cell::text(&d.criteria),
                Cell::Int(d.devices),
                Cell::Int(d.mobile),
            ]
        })
        .collect();
    s
}

fn users(r: &MeteringResult) -> Report {
    let mut s = section(
        r,
        "User overview",
        vec![
            Column::text("status", "Status"),
            Column::text("relevant", "Relevant"),
            Column::number("natural_persons", "Natural persons"),
            Column::number("service_users", "Service users (not counted)"),
        ],
    );
    s.notes = vec![format!(
        "Natural persons in relevant statuses (all but inactive, to be deleted and deleted): {}. \
         Service users are told apart by indications only.",
        r.natural_persons
    )];
    s.rows = r
        .users
        .iter()
        .map(|u| {
            vec![
                Cell::text(u.status.as_str()),
                yes_no(u.relevant),
                Cell::Int(u.natural_persons),
                Cell::Int(u.service_users),
            ]
        })
        .collect();
    s
}

fn operators(r: &MeteringResult) -> Report {
    let mut s = section(
        r,
        "Operator overview",
        vec![
            Column::text("status", "Status"),
            Column::text("write_access", "Write access"),
            Column::number("operators", "Operators"),
        ],
    );
    s.notes = vec![format!(
        "Operators (the seed's help-desk agents) with write access to Tally's data, active: {}.",
        r.write_operators
    )];
    s.rows = r
        .operators
        .iter()
        .map(|o| {
            vec![
                Cell::text(&o.status),
                yes_no(o.write_access),
                Cell::Int(o.operators),
            ]
        })
        .collect();
    s
}

/// The document's sections, in the seed's order.
pub(crate) fn sections(result: &MeteringResult) -> Vec<Report> {
    vec![
        summary(result),
        certificates(result),
        devices(result),
        users(result),
        operators(result),
    ]
}
