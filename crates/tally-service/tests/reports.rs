//! Every report, in every format, from a seeded SQLite database: the PDF read back with
//! poppler's `pdftotext`/`pdfinfo` and the HTML parsed must hold the JSON rendering's figures,
//! and the figures themselves are checked against values computed by hand. (Moved from
//! `tally-report`, which no longer reads a store: the service builds the reports.)

use std::process::Command;

#[path = "../../tally-store/tests/common/needs.rs"]
mod needs;

/// What reads a PDF back: text, page count and every page drawn.
const POPPLER: [(&str, &str); 3] = [
    ("pdftotext", "poppler-utils"),
    ("pdfinfo", "poppler-utils"),
    ("pdftoppm", "poppler-utils"),
];
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use tally_core::device::NewDevice;
use tally_core::import::{ApplicationRow, Batch, LicenseRow, Origin};
use tally_core::rules::{RuleOrigin, RuleSpec};
use tally_core::summary::{FileUsageHour, MonthKey, MonthlyUsage};
use tally_core::wire::v1::{Hardware, InstalledSoftware, Inventory};
use tally_core::{Site, SiteCode};
use tally_report::{Format, ReportError, CATALOGUE};
use tally_service::{Service, ServiceError};
use tally_store::prelude::*;
use tally_store::SqliteStore;

fn t(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
}

/// The reports are built as of this instant, so every default is fixed.
fn now() -> DateTime<Utc> {
    t(2026, 3, 20, 12)
}

fn site() -> SiteCode {
    SiteCode::parse("S01").unwrap()
}

const H: i64 = 3_600_000;

struct Seeded {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    service: Service,
}

async fn seeded() -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("tally.db"))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    store
        .put_site(&Site {
            code: site(),
            name: "Main site".into(),
            alias: Some("Contoso HQ".into()),
            parent: None,
        })
        .await
        .unwrap();
    let rule = |name: &str| {
        let spec = RuleSpec {
            file_name: name.to_lowercase(),
            ..RuleSpec::named(name)
        };
        let store = store.as_ref();
        async move {
            store
                .create_rule(&site(), RuleOrigin::Manual, &spec, t(2025, 1, 1, 0), None)
                .await
                .unwrap()
                .id
        }
    };
    let (vim, gimp, _emacs) = (rule("Vim").await, rule("Gimp").await, rule("Emacs").await);
    let mut pcs = Vec::new();
    for (name, packages) in [
        ("pc1", vec!["vim", "gimp"]),
        ("pc2", vec!["vim"]),
        ("pc3", vec!["vim", "emacs", "gimp"]),
    ] {
        let device = NewDevice {
            fqdn: Some(format!("{name}.contoso.test")),
            ..NewDevice::named(&site(), name)
        };
        let id = store
            .create_device(&device, t(2025, 1, 1, 0))
            .await
            .unwrap()
            .id;
        store
            .put_inventory(id, &inventory(name, &packages), t(2026, 3, 1, 0))
            .await
            .unwrap();
        pcs.push(id);
    }
    let alice = store
        .upsert_user("alice", Some("Alice Smith"))
        .await
        .unwrap();
    let bob = store.upsert_user("bob", Some("Bob Jones")).await.unwrap();
    let month = |rule_id, device_id, user_id, month, runs, usage_ms, last_used| {
        (
            MonthKey {
                rule_id,
                device_id,
                user_id,
                month,
            },
            MonthlyUsage {
                runs,
                usage_ms,
                last_used,
            },
        )
    };
    let rows = [
        month(vim, pcs[0], alice, 202603, 3, 3 * H, t(2026, 3, 18, 10)),
        month(vim, pcs[1], alice, 202603, 1, H / 2, t(2026, 3, 2, 9)),
        month(vim, pcs[0], bob, 202602, 2, H + H / 4, t(2026, 2, 10, 16)),
        month(gimp, pcs[0], bob, 202603, 1, H, t(2026, 3, 19, 8)),
        month(gimp, pcs[2], bob, 202511, 1, 2 * H, t(2025, 11, 5, 10)),
    ];
    store.add_monthly_usage(&rows, (0, 1)).await.unwrap();
    let hour = |rule_id, hour, users, usage_ms, peak_runs, peak_users| FileUsageHour {
        rule_id,
        hour,
        distinct_users: users,
        distinct_devices: users,
        distinct_ts_users: 0,
        usage_ms,
        peak_concurrent_runs: peak_runs,
        peak_concurrent_users: peak_users,
    };
    let hours = [
        hour(vim, t(2026, 2, 27, 23), 1, H / 4, 1, 1), // a Friday
        hour(vim, t(2026, 3, 16, 9), 2, H + H / 2, 3, 2), // a Monday
        hour(vim, t(2026, 3, 16, 10), 1, H / 2, 1, 1),
        hour(vim, t(2026, 3, 17, 9), 1, H, 2, 1),
        hour(gimp, t(2026, 3, 19, 8), 1, H, 1, 1),
    ];
    let keys: Vec<_> = hours.iter().map(|h| (h.rule_id, h.hour)).collect();
    store.replace_file_usage_hours(&keys, &hours).await.unwrap();
    store
        .import(&licensing(), &site(), t(2026, 3, 1, 0), &|_| {}, None)
        .await
        .unwrap();
    let service = Service::new(store.clone(), site());
    Seeded {
        _dir: dir,
        store,
        service,
    }
}

/// Each metered program as a licensed application recognised by its package and metered by
/// its rule; Gimp with one installation license at 20 EUR. Rows as `tally import` reads them.
fn licensing() -> Batch {
    let at = |line| Origin {
        file: "seed".into(),
        line,
    };
    let app = |name: &str| -> ApplicationRow {
        serde_json::from_value(serde_json::json!({
            "name": name, "publisher": "Debian", "metric": "installations",
            "software": name.to_lowercase(), "metering_rule": name,
        }))
        .unwrap()
    };
    let gimp: LicenseRow = serde_json::from_value(serde_json::json!({
        "application": "Gimp", "metric": "installations", "quantity": 1,
        "assignment_type": "organization", "unit_cost": "20", "currency": "EUR",
    }))
    .unwrap();
    Batch {
        applications: vec![
            (at(2), app("Vim")),
            (at(3), app("Gimp")),
            (at(4), app("Emacs")),
        ],
        licenses: vec![(at(2), gimp)],
        ..Default::default()
    }
}

fn inventory(host: &str, packages: &[&str]) -> Inventory {
    Inventory {
        hash: host.into(),
        os: Some("Debian 12".into()),
        hardware: Hardware::default(),
        software: packages
            .iter()
            .map(|p| InstalledSoftware {
                name: p.to_string(),
                version: "2.1".into(),
                publisher: "Debian".into(),
                executables: vec![p.to_string()],
            })
            .collect(),
        accounts: vec![],
    }
}

async fn report(service: &Service, name: &str, params: &[(&str, &str)]) -> tally_report::Report {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tally_service::reports::make(service, name, &params, now())
        .await
        .unwrap()
}

/// The JSON rendering's rows as the text every format prints.
fn json_rows(json: &Value) -> Vec<Vec<String>> {
    let keys: Vec<&str> = json["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| keys.iter().map(|k| shown(&row[*k])).collect())
        .collect()
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap()),
        Value::Number(n) => n.to_string(),
        other => panic!("unexpected cell {other}"),
    }
}

fn html_rows(html: &str) -> Vec<Vec<String>> {
    let doc = scraper::Html::parse_document(html);
    let rows = scraper::Selector::parse("table#report tbody tr").unwrap();
    let cells = scraper::Selector::parse("td").unwrap();
    doc.select(&rows)
        .map(|r| r.select(&cells).map(|c| c.text().collect()).collect())
        .collect()
}

fn pdf_text(pdf: &[u8]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    let run = |tool: &str, args: &[&str]| {
        let out = Command::new(tool)
            .args(args)
            .arg(&path)
            .args(if tool == "pdftotext" {
                &["-"][..]
            } else {
                &[][..]
            })
            .output()
            .unwrap_or_else(|e| panic!("{tool} (poppler-utils) is needed: {e}"));
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // Drawing every page must raise no complaint from the reader either.
    let drawn = Command::new("pdftoppm")
        .args(["-r", "20", "-png"])
        .arg(&path)
        .arg(dir.path().join("page"))
        .output()
        .expect("pdftoppm (poppler-utils) is needed");
    assert!(
        drawn.status.success() && drawn.stderr.is_empty(),
        "pdftoppm: {}",
        String::from_utf8_lossy(&drawn.stderr)
    );
    (run("pdfinfo", &[]), run("pdftotext", &["-layout"]))
}

/// Whether some line holds every non-empty cell, in order.
fn has_row(text: &str, row: &[String]) -> bool {
    text.lines().any(|line| {
        let mut rest = line;
        row.iter()
            .filter(|c| !c.is_empty())
            .all(|cell| match rest.find(cell.as_str()) {
                Some(at) => {
                    rest = &rest[at + cell.len()..];
                    true
                }
                None => false,
            })
    })
}

#[tokio::test]
async fn every_report_renders_in_every_format_with_the_same_figures() {
    if !needs::group("the report PDF tests", false, &POPPLER) {
        return;
    }
    let db = seeded().await;
    for def in CATALOGUE {
        let built = report(&db.service, def.name, &[]).await;
        let json: Value =
            serde_json::from_slice(&tally_report::render(&built, Format::Json).unwrap()).unwrap();
        let rows = json_rows(&json);
        assert_eq!(
            json["site"], "Contoso HQ",
            "{}: the alias heads the report",
            def.name
        );
        assert!(
            !rows.is_empty(),
            "{}: the seed gives every report rows",
            def.name
        );

        let csv = tally_report::render(&built, Format::Csv).unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        let csv_rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        assert_eq!(csv_rows, rows, "{}: CSV", def.name);

        let html = String::from_utf8(tally_report::render(&built, Format::Html).unwrap()).unwrap();
        assert_eq!(html_rows(&html), rows, "{}: HTML table", def.name);
        assert!(
            html.contains("<svg") == built.chart.is_some(),
            "{}: chart inline",
            def.name
        );
        assert!(
            html.contains("@media print"),
            "{}: print stylesheet",
            def.name
        );

        let pdf = tally_report::render(&built, Format::Pdf).unwrap();
        // To look at the output: TALLY_REPORT_DUMP=/some/dir cargo test -p tally-report
        if let Ok(dir) = std::env::var("TALLY_REPORT_DUMP") {
            std::fs::write(format!("{dir}/{}.pdf", def.name), &pdf).unwrap();
            std::fs::write(format!("{dir}/{}.html", def.name), &html).unwrap();
        }
        let (info, text) = pdf_text(&pdf);
        assert!(
            info.contains(def.title),
            "{}: PDF title in {info}",
            def.name
        );
        assert!(text.contains("Contoso HQ"), "{}: header", def.name);
        assert!(text.contains("Page 1 of 1"), "{}: page numbers", def.name);
        for row in &rows {
            assert!(
                has_row(&text, row),
                "{}: PDF lacks row {row:?}:\n{text}",
                def.name
            );
        }
    }
}

fn rows_of(r: &tally_report::Report) -> Vec<Vec<String>> {
    r.rows
        .iter()
        .map(|row| row.iter().map(|c| c.display()).collect())
        .collect()
}

fn strs(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[tokio::test]
async fn figures_match_hand_computed_values() {
    let db = seeded().await;
    let s = &db.service;
    let monthly = report(s, "monthly-usage", &[]).await;
    assert_eq!(
        rows_of(&monthly),
        strs(&[
            &["Gimp", "2025-11", "1", "1", "1", "2 h 00 min"],
            &["Vim", "2026-02", "2", "1", "1", "1 h 15 min"],
            &["Gimp", "2026-03", "1", "1", "1", "1 h 00 min"],
            &["Vim", "2026-03", "4", "1", "2", "3 h 30 min"],
        ])
    );
    let only_march = report(s, "monthly-usage", &[("from", "2026-03")]).await;
    assert_eq!(only_march.rows.len(), 2);

    let users = report(s, "program-users", &[]).await;
    assert!(
        users.notes[0].contains("Vim (the most used"),
        "{:?}",
        users.notes
    );
    assert_eq!(
        rows_of(&users),
        strs(&[
            &[
                "alice",
                "Alice Smith",
                "4",
                "3 h 30 min",
                "2",
                "2026-03-18 10:00"
            ],
            &[
                "bob",
                "Bob Jones",
                "2",
                "1 h 15 min",
                "1",
                "2026-02-10 16:00"
            ],
        ])
    );
    let computers = report(s, "program-computers", &[("program", "GIMP")]).await;
    assert_eq!(
        rows_of(&computers),
        strs(&[
            &[
                "pc3",
                "pc3.contoso.test",
                "1",
                "2 h 00 min",
                "1",
                "2025-11-05 10:00"
            ],
            &[
                "pc1",
                "pc1.contoso.test",
                "1",
                "1 h 00 min",
                "1",
                "2026-03-19 08:00"
            ],
        ])
    );

    // The reclaim list is the API's (one definition): per application, with the units, cost
    // and license each idle installation ties up, the most costly first. Every application
    // names its rule and every computer is metered: no "no usage data" rows.
    let reclaim = report(s, "reclaim", &[]).await;
    assert_eq!(
        rows_of(&reclaim),
        strs(&[
            &[
                "Gimp",
                "pc3",
                "gimp",
                "2.1",
                "2025-11-05 10:00",
                "135",
                "1",
                "20.00 EUR",
                "#1: 1 × installations",
            ],
            &["Emacs", "pc3", "emacs", "2.1", "never", "", "1", "", ""],
            &["Vim", "pc3", "vim", "2.1", "never", "", "1", "", ""],
        ])
    );
    assert_eq!(
        reclaim.notes,
        [
            "3 of 6 installations whose use is known have not run since 2025-12-21 00:00 UTC, \
             tying up 20.00 EUR."
        ]
    );
    let recent = report(s, "reclaim", &[("application", "vim"), ("days", "10")]).await;
    let hosts: Vec<_> = rows_of(&recent).into_iter().map(|r| r[1].clone()).collect();
    assert_eq!(hosts, ["pc2", "pc3"], "pc2 last ran vim on 2 March");
    let days = |r: &tally_report::Report| r.params.iter().find(|p| p.0 == "days").cloned();
    assert_eq!(days(&recent), Some(("days".into(), "10".into())));

    // Minutes in each hour: a quarter of an hour is 15, not 0.25 (or 0.00) hours.
    let heat = report(s, "heat-map", &[]).await;
    let cell = |r: &tally_report::Report, day: usize, hour: usize| r.rows[day][hour + 1].display();
    assert_eq!(cell(&heat, 0, 9), "90", "Monday 09:00");
    assert_eq!(cell(&heat, 0, 10), "30");
    assert_eq!(cell(&heat, 1, 9), "60", "Tuesday 09:00");
    assert_eq!(cell(&heat, 4, 23), "15", "Friday 23:00");
    let total: f64 = heat
        .rows
        .iter()
        .flat_map(|r| &r[1..])
        .filter_map(|c| c.as_f64())
        .sum();
    assert_eq!(total, 195.0);
    let shifted = report(s, "heat-map", &[("utc-offset", "2")]).await;
    assert_eq!(cell(&shifted, 0, 11), "90");
    assert_eq!(
        cell(&shifted, 5, 1),
        "15",
        "Friday 23:00 UTC is Saturday 01:00 at UTC+2"
    );
    // The parameter line names the program the default chose.
    let program = heat.params.iter().find(|p| p.0 == "program").unwrap();
    assert_eq!(program.1, "Vim (the most used in the period)");

    let peaks = report(s, "concurrency", &[]).await;
    assert_eq!(
        rows_of(&peaks),
        strs(&[
            &["Gimp", "day", "2026-03-19", "1", "1"],
            &["Gimp", "month", "2026-03", "1", "1"],
            &["Vim", "day", "2026-02-27", "1", "1"],
            &["Vim", "day", "2026-03-16", "3", "2"],
            &["Vim", "day", "2026-03-17", "2", "1"],
            &["Vim", "month", "2026-02", "1", "1"],
            &["Vim", "month", "2026-03", "3", "2"],
        ])
    );

    let tasks = report(s, "tasks", &[]).await;
    assert_eq!(tasks.rows.len(), tally_core::tasks::Task::ALL.len());
    assert_eq!(tasks.rows[0][0].display(), "summarize_file_usage");
    assert_eq!(tasks.rows[0][4].display(), "never");
}

#[tokio::test]
async fn a_long_table_runs_over_pages_with_its_header_on_each() {
    if !needs::group("the report PDF tests", false, &POPPLER) {
        return;
    }
    let db = seeded().await;
    let vim = db.store.rules().await.unwrap()[0].id;
    let device = db.store.devices(Default::default()).await.unwrap()[0].id;
    let mut rows = Vec::new();
    for i in 0..130 {
        let user = db
            .store
            .upsert_user(&format!("user{i:03}"), None)
            .await
            .unwrap();
        let key = MonthKey {
            rule_id: vim,
            device_id: device,
            user_id: user,
            month: 202603,
        };
        let usage = MonthlyUsage {
            runs: 1,
            usage_ms: 1000 * (i + 1),
            last_used: t(2026, 3, 3, 3),
        };
        rows.push((key, usage));
    }
    db.store.add_monthly_usage(&rows, (1, 2)).await.unwrap();
    let built = report(&db.service, "program-users", &[("program", "vim")]).await;
    let (info, text) = pdf_text(&tally_report::render(&built, Format::Pdf).unwrap());
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pages >= 3, "132 rows need several pages; got {pages}");
    assert!(text.contains(&format!("Page {pages} of {pages}")));
    assert_eq!(
        text.matches("Contoso HQ").count(),
        pages,
        "the header on every page"
    );
    assert_eq!(
        text.matches("Last used (UTC)").count(),
        pages,
        "the table heading on every page"
    );
    for i in 0..130 {
        assert!(
            text.contains(&format!("user{i:03}")),
            "user{i:03} is on some page"
        );
    }
}

#[tokio::test]
async fn bad_parameters_are_refused_with_what_to_write() {
    let db = seeded().await;
    let make = |name: &'static str, k: &'static str, v: &'static str| {
        let service = &db.service;
        async move {
            let params = [(k.to_string(), v.to_string())];
            tally_service::reports::make(service, name, &params, now()).await
        }
    };
    let err = |r: Result<tally_report::Report, ServiceError>| r.unwrap_err().to_string();
    assert!(
        err(make("monthly-usage", "form", "2026-01").await).contains("its parameters are from, to")
    );
    assert!(err(make("monthly-usage", "from", "2026-13").await).contains("write YYYY-MM"));
    assert!(err(make("monthly-usage", "from", "2027-01").await).contains("after to"));
    assert!(err(make("heat-map", "utc-offset", "20").await).contains("from -12 to 14"));
    assert!(err(make("reclaim", "as-of", "yesterday").await).contains("YYYY-MM-DD"));
    assert!(err(make("reclaim", "days", "0").await).contains("from 1 to 3650"));
    let unknown = err(make("program-users", "program", "word").await);
    assert!(
        unknown.contains("the rules are Vim, Gimp, Emacs"),
        "{unknown}"
    );
    assert!(err(make("usage", "from", "2026-01").await).contains("the reports are monthly-usage"));
    assert!(matches!(
        "docx".parse::<Format>(),
        Err(ReportError::UnknownFormat(_))
    ));
}

/// The Effective License Position on 20 March: Gimp (pc1, pc3) has its 1 license at 20.00
/// EUR and a second of 2 at 30.00 USD valid until 30 April with maintenance until 10 May, so
/// both are covered and 1 unit idles, worth 30.00 USD; Vim (3 computers) and Emacs (1) have
/// no license. The PDF read back with `pdftotext` holds the JSON's figures, the totals and the
/// licenses ending within 90 days; the CSV is flat with one header.
#[tokio::test]
async fn the_effective_license_position_holds_the_same_figures_in_every_format() {
    if !needs::group("the report PDF tests", false, &POPPLER) {
        return;
    }
    let db = seeded().await;
    let second: LicenseRow = serde_json::from_value(serde_json::json!({
        "application": "Gimp", "metric": "installations", "quantity": 2,
        "assignment_type": "organization", "unit_cost": "30", "currency": "USD",
        "valid_until": "2026-04-30", "maintenance_until": "2026-05-10",
    }))
    .unwrap();
    let batch = Batch {
        licenses: vec![(
            Origin {
                file: "more".into(),
                line: 2,
            },
            second,
        )],
        ..Default::default()
    };
    db.store
        .import(&batch, &site(), t(2026, 3, 2, 0), &|_| {}, None)
        .await
        .unwrap();
    let built = report(
        &db.service,
        "elp",
        &[("as-of", "2026-03-20"), ("days", "90")],
    )
    .await;
    let expected = strs(&[
        &[
            "Emacs",
            "installations",
            "1",
            "0",
            "0",
            "1",
            "",
            "0",
            "",
            "",
            "under-licensed",
            "1 uncovered device",
        ],
        &[
            "Gimp",
            "installations",
            "2",
            "3",
            "2",
            "0",
            "",
            "1",
            "30.00",
            "USD",
            "over-licensed",
            "",
        ],
        &[
            "Vim",
            "installations",
            "3",
            "0",
            "0",
            "3",
            "",
            "0",
            "",
            "",
            "under-licensed",
            "3 uncovered devices",
        ],
        &[
            "Total (USD)",
            "",
            "",
            "",
            "",
            "",
            "0.00",
            "",
            "30.00",
            "USD",
            "",
            "",
        ],
    ]);
    assert_eq!(rows_of(&built), expected);
    let json: Value =
        serde_json::from_slice(&tally_report::render(&built, Format::Json).unwrap()).unwrap();
    assert_eq!(json_rows(&json), expected);
    assert_eq!(json["site"], "Contoso HQ");
    let notes: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        notes[1..],
        [
            "Ending within 90 days of 2026-03-20 (2 entries):",
            "- Gimp, license 2 (installations × 2, whole organisation): license valid until 2026-04-30",
            "- Gimp, license 2 (installations × 2, whole organisation): maintenance until 2026-05-10",
        ]
    );
    assert!(
        notes[0].contains("2 of 3 applications under-licensed"),
        "{}",
        notes[0]
    );

    let csv = tally_report::render(&built, Format::Csv).unwrap();
    let text = String::from_utf8(csv.clone()).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "application,metric,required,owned,covered,shortfall,shortfall_cost,surplus,surplus_value,currency,status,reason"
    );
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let csv_rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(csv_rows, expected);

    let (info, pdf) = pdf_text(&tally_report::render(&built, Format::Pdf).unwrap());
    assert!(info.contains("Effective License Position"), "{info}");
    assert!(pdf.contains("Contoso HQ"), "{pdf}");
    assert!(
        pdf.contains("as-of") && pdf.contains("days"),
        "the parameters: {pdf}"
    );
    for row in &expected {
        assert!(has_row(&pdf, row), "PDF lacks {row:?}:\n{pdf}");
    }
    for note in &notes {
        assert!(pdf.contains(note), "PDF lacks the note {note:?}:\n{pdf}");
    }
    // On 1 May the second license has expired: Gimp is 1 short, priced at the newest
    // license's 30.00 USD, and the reason says which license stopped counting.
    let may = report(&db.service, "elp", &[("as-of", "2026-05-01")]).await;
    assert_eq!(
        rows_of(&may)[1],
        strs(&[&[
            "Gimp",
            "installations",
            "2",
            "1",
            "1",
            "1",
            "30.00",
            "0",
            "",
            "USD",
            "under-licensed",
            "1 uncovered device; 1 license expired",
        ]])[0]
    );
}
