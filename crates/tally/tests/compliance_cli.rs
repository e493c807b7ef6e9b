//! `tally compliance` as a license manager reads it, through the real binary against a real
//! server: a reason on every line, money with its currency and thousands separators, a totals
//! row, flat CSV, `--app` naming devices, nodes and licenses, and `--fail-on under` exiting
//! with status 2. On SQLite and on PostgreSQL.

mod common;

use std::path::Path;

use common::{assert_ok, server_on, tally, tally_json, write, Backend};

each_backend!(the_position_is_explained_by_name_and_fails_on_under);

/// HQ with Sales below it. Office is on pc1 (Sales), pc2 and pc4 (no node) and pc3
/// (retired). Sales' site license (3 at 1,075.00 EUR) covers pc1 and idles 2; HQ's
/// organisation license (1), on the root, covers pc2; pc4 is uncovered: 1 short at the newest
/// license's 1,075.00 EUR. CAD, on pc1, has only a license that expired on 31 January.
fn load(dir: &Path, backend: &Backend) {
    let files = [
        write(dir, "org_nodes.csv", "name,parent\nHQ,\nSales,HQ\n"),
        write(
            dir,
            "devices.csv",
            "host_name,org_node,status\npc1,Sales,active\npc2,,active\npc3,HQ,retired\npc4,,active\n",
        ),
        write(
            dir,
            "applications.csv",
            "name,publisher,metric,software\nOffice,Contoso,installations,office*\n\
             CAD,Acme,installations,cad*\n",
        ),
        write(
            dir,
            "installations.csv",
            "host_name,software,version\npc1,office-suite,16\npc2,office-suite,16\n\
             pc3,office-suite,16\npc4,office-suite,16\npc1,cad-pro,3\n",
        ),
        write(
            dir,
            "licenses.csv",
            "application,metric,quantity,assignment_type,assigned_to,unit_cost,currency,valid_until\n\
             Office,installations,1,organization,HQ,2150.00,EUR,\n\
             Office,installations,3,site,Sales,1075.00,EUR,\n\
             CAD,installations,1,organization,,,,2026-01-31\n",
        ),
    ];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("import")
        .args(&files)
        .args(["--data-dir", dir.join("tally-data").to_str().unwrap()])
        .args(backend.db_args())
        .output()
        .unwrap();
    assert_ok(&out);
}

fn the_position_is_explained_by_name_and_fails_on_under(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    load(dir.path(), &backend);
    let run = |args: &[&str]| {
        let out = tally(&server, &server.token, args);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let day = ["--as-of", "2026-03-20"];

    let (code, table, err) = run(&["compliance", day[0], day[1]]);
    assert_eq!(code, Some(0), "{err}");
    let line = |name: &str| -> String {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{table}"))
            .to_string()
    };
    assert!(table.lines().next().unwrap().contains("REASON"), "{table}");
    let office = line("Office");
    for part in [
        "1,075.00 EUR",
        "2,150.00 EUR",
        "1 uncovered device; 1 license idle, uncovered demand outside its assignment; 1 excluded (retired)",
    ] {
        assert!(office.contains(part), "{part:?} in {office}");
    }
    assert!(
        line("CAD").contains("1 uncovered device; 1 license expired"),
        "{table}"
    );
    let total = line("TOTAL");
    assert!(
        total.contains("1,075.00 EUR") && total.contains("2,150.00 EUR"),
        "shortfall cost and surplus value per currency: {total}"
    );

    // CSV is flat: money as an amount and a currency, no JSON in any cell.
    let (code, csv, _) = run(&["compliance", day[0], day[1], "--format", "csv"]);
    assert_eq!(code, Some(0));
    assert!(!csv.contains('{'), "{csv}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let office = rows
        .iter()
        .find(|r| r[col("application")] == "Office")
        .unwrap();
    assert_eq!(office[col("shortfall_cost")], "1075.00");
    assert_eq!(office[col("shortfall_cost_currency")], "EUR");
    assert_eq!(office[col("surplus_value")], "2150.00");
    assert_eq!(office[col("uncovered_devices")], "1");

    // The detail names the devices, the nodes and the licenses.
    let (code, detail, err) = run(&["compliance", "--app", "office", day[0], day[1]]);
    assert_eq!(code, Some(0), "{err}");
    for part in [
        "Office (Contoso): installations on 2026-03-20, under_licensed",
        "shortfall 1 costing 1,075.00 EUR, surplus 2 worth 2,150.00 EUR",
        "installations × 3, site Sales",
        "covers only devices on node Sales; 1 uncovered device is on no org node",
        "installations × 1, organization HQ",
    ] {
        assert!(detail.contains(part), "{part:?} in\n{detail}");
    }
    let row = |section: &str, name: &str| {
        let from = detail
            .find(section)
            .unwrap_or_else(|| panic!("{section} in\n{detail}"));
        detail[from..]
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} under {section} in\n{detail}"))
            .to_string()
    };
    assert!(row("Uncovered", "pc4").contains("(no node)"), "{detail}");
    assert!(row("Excluded", "pc3").contains("retired"), "{detail}");
    assert!(
        row("Demand per org node", "Sales").contains('1'),
        "{detail}"
    );
    let json = tally_json(
        &server,
        &server.token,
        &["compliance", "--app", "office", day[0], day[1]],
    );
    assert_eq!(json["uncovered_consumers"]["items"][0]["name"], "pc4");
    assert_eq!(
        json["uncovered_consumers"]["items"][0]["consumer"]["kind"], "device",
        "JSON keeps the ids beside the names"
    );
    assert!(json["uncovered_consumers"]["items"][0]["consumer"]["id"].is_i64());

    // --fail-on under: the position is printed, then status 2 naming what is short.
    let (code, out, err) = run(&["compliance", day[0], day[1], "--fail-on", "under"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(out.contains("Office"), "printed first: {out}");
    assert!(
        err.contains("2 applications under-licensed: Office, CAD")
            || err.contains("2 applications under-licensed: CAD, Office"),
        "{err}"
    );
    // On 15 January CAD's license was valid: nothing short, status 0.
    let (code, _, err) = run(&[
        "compliance",
        "--app",
        "cad",
        "--as-of",
        "2026-01-15",
        "--fail-on",
        "under",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, _) = run(&[
        "compliance",
        "--app",
        "cad",
        day[0],
        day[1],
        "--fail-on",
        "under",
    ]);
    assert_eq!(code, Some(2));
    let (_, help, _) = run(&["compliance", "--help"]);
    assert!(help.contains("2 with --fail-on under"), "{help}");
    assert!(server.stop().success());
}
