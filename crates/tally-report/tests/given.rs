//! The crate renders what it is given: a report built by hand, with no store anywhere, comes
//! out with the same cells in CSV, JSON and HTML. (The figures of every catalogue report, built
//! from a seeded store, are checked in `tally-service`'s `tests/reports.rs`.)

use chrono::{TimeZone, Utc};
use tally_report::{Cell, Chart, Column, Format, Report};

fn given() -> Report {
    Report {
        name: "reclaim".into(),
        title: "Installed but unused (reclaim list)".into(),
        site: "Contoso HQ".into(),
        generated_at: Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap(),
        params: vec![("since".into(), "2025-12-20".into())],
        notes: vec!["1 of 2 installations have not run since 2025-12-20.".into()],
        columns: vec![
            Column::text("computer", "Computer"),
            Column::number("days_unused", "Days unused"),
            Column::text("cost", "Cost tied up"),
        ],
        rows: vec![
            vec![Cell::text("pc3"), Cell::Int(135), Cell::text("20.00 EUR")],
            vec![Cell::text("pc4"), Cell::Empty, Cell::num(1.006)],
        ],
        chart: Some(Chart::Bars {
            title: "Unused installations".into(),
            unit: "installations".into(),
            bars: vec![("Gimp".into(), 1.0)],
        }),
    }
}

#[test]
fn a_given_report_renders_the_same_cells_in_every_text_format() {
    let report = given();
    let csv = String::from_utf8(tally_report::render(&report, Format::Csv).unwrap()).unwrap();
    assert_eq!(
        csv, "computer,days_unused,cost\npc3,135,20.00 EUR\npc4,,1.01\n",
        "numbers rounded to two decimals, empty cells empty"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&tally_report::render(&report, Format::Json).unwrap()).unwrap();
    assert_eq!(json["rows"][0]["days_unused"], 135);
    assert_eq!(json["rows"][1]["cost"], 1.01);
    assert_eq!(json["site"], "Contoso HQ");
    let html = String::from_utf8(tally_report::render(&report, Format::Html).unwrap()).unwrap();
    let doc = scraper::Html::parse_document(&html);
    let cells = scraper::Selector::parse("table#report tbody td").unwrap();
    let shown: Vec<String> = doc.select(&cells).map(|c| c.text().collect()).collect();
    assert_eq!(shown, ["pc3", "135", "20.00 EUR", "pc4", "", "1.01"]);
    assert!(html.contains("<svg"), "the chart is drawn inline");
    let pdf = tally_report::render(&report, Format::Pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
}

/// Durations under an hour printed `0.00` hours (40 minutes as `0.67` at best) and counts in
/// charts as `3.00`: now minutes and whole numbers, in every format.
#[test]
fn durations_show_minutes_and_counts_show_no_decimals() {
    let mut report = given();
    report
        .columns
        .push(Column::number("time_used", "Time used"));
    for (row, ms) in report
        .rows
        .iter_mut()
        .zip([40 * 60_000, 3 * 3_600_000 + 5 * 60_000])
    {
        row.push(Cell::hours(ms));
    }
    report.chart = Some(Chart::Bars {
        title: "Unused installations".into(),
        unit: "installations".into(),
        bars: vec![("Gimp".into(), 3.0), ("Vim".into(), 1250.0)],
    });
    let csv = String::from_utf8(tally_report::render(&report, Format::Csv).unwrap()).unwrap();
    assert!(
        csv.contains(",40 min\n") && csv.contains(",3 h 05 min\n"),
        "{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&tally_report::render(&report, Format::Json).unwrap()).unwrap();
    assert_eq!(json["rows"][0]["time_used"], "40 min");
    let html = String::from_utf8(tally_report::render(&report, Format::Html).unwrap()).unwrap();
    assert!(
        html.contains(">3</text>") && html.contains(">1,250</text>"),
        "{html}"
    );
    assert!(!html.contains("3.00"), "{html}");
    let hours = Chart::Bars {
        title: "Hours".into(),
        unit: "hours".into(),
        bars: vec![("Code".into(), 0.75)],
    };
    report.chart = Some(hours);
    let html = String::from_utf8(tally_report::render(&report, Format::Html).unwrap()).unwrap();
    assert!(html.contains(">45 min</text>"), "{html}");
}
