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
