//! The site hierarchy with real `tally server` processes on loopback (issue 19, Part 1): a
//! central site, two primaries and a secondary under the first, agents (through the agent API)
//! on every site below the centre. Rules travel down with their edits and deletion and are
//! read-only below their owner; devices, inventory, usage and runs arrive at the centre with
//! the same figures as the sum of the sites'; a parent that goes away and a child killed
//! mid-sync lose and double nothing; a device moving between sites stays one device. At the
//! centre, `--site` (the API's `site=`, the console's `?site=`) narrows what it shows to one
//! branch.

mod common;
mod web;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::hierarchy::{inventory, morning, Node};
use common::{banner_token, free_port, poll_until, tally_at, Backend};
use serde_json::Value;

each_backend!(
    three_levels_carry_rules_down_and_usage_up,
    nothing_is_lost_or_doubled_when_the_parent_goes_away_or_the_child_dies,
);

fn three_levels_carry_rules_down_and_usage_up(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let cen = Node::start(root.path(), "CEN", backend, None);
    let p01 = cen.child(root.path(), "P01");
    let p02 = cen.child(root.path(), "P02");
    let s01 = p01.child(root.path(), "S01");

    // Down: a central rule for child sites reaches the secondary, two levels below.
    cen.json(&[
        "rules",
        "add",
        "--name",
        "Code",
        "--file-name",
        "code",
        "--apply-to-child-sites",
    ]);
    let copied = |node: &Node, check: &dyn Fn(&Value) -> bool| {
        poll_until(
            || node.rules(),
            |rules| rules.iter().any(|r| r["site_code"] == "CEN" && check(r)),
        )
    };
    for node in [&p01, &p02, &s01] {
        let rules = copied(node, &|_| true);
        assert!(
            rules
                .iter()
                .any(|r| r["site_code"] == "CEN" && r["name"] == "Code"),
            "{}: {rules:?}",
            node.code
        );
    }
    // An edit at the owner travels; at a child the copy is read-only, naming its owner.
    cen.json(&["rules", "edit", "Code", "--file-version", "1.*"]);
    let rules = copied(&s01, &|r| r["file_version"] == "1.*");
    assert!(
        rules.iter().any(|r| r["file_version"] == "1.*"),
        "{rules:?}"
    );
    let refused = tally_at(
        &s01.url(),
        &s01.token,
        &["rules", "edit", "Code", "--comment", "x"],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("site CEN"), "{stderr}");

    // The copy reaches the secondary's agents in their policy.
    let a_s01 = s01.enrol("s01-pc", "machine-s01");
    let policy = s01.agent(&a_s01, "policy", None);
    let names: Vec<&str> = (policy["rules"].as_array().unwrap().iter())
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Code"]);

    // Up: usage and inventory from every site below the centre.
    let a_p01 = p01.enrol("p01-pc", "machine-p01");
    let a_p02 = p02.enrol("p02-pc", "machine-p02");
    s01.usage(&a_s01, "s01", "alice", 7);
    p01.usage(&a_p01, "p01", "bob", 5);
    p02.usage(&a_p02, "p02", "carol", 3);
    for (node, creds) in [(&s01, &a_s01), (&p01, &a_p01), (&p02, &a_p02)] {
        node.agent(creds, "inventory", Some(inventory(&["code", node.code])));
    }
    let at_cen = |site: &str, n: i64| poll_until(|| cen.records_of(site), |got| *got == n);
    assert_eq!(at_cen("S01", 7), 7);
    assert_eq!(at_cen("P01", 5), 5);
    assert_eq!(at_cen("P02", 3), 3);
    // Each site holds its own and its subtree's: the centre exactly the sum of its children,
    // the primary its own and its secondary's.
    let count = |n: &Node, extra: &[&str]| {
        let mut args = vec!["usage", "--rule", "Code"];
        args.extend(extra);
        n.json(&args).as_array().unwrap().len()
    };
    assert_eq!(count(&cen, &[]), 15);
    assert_eq!(count(&cen, &[]), count(&p01, &[]) + count(&p02, &[]));
    assert_eq!(count(&p01, &[]), 5 + count(&s01, &[]));
    // --site narrows a parent's reads to one site's subtree.
    assert_eq!(count(&cen, &["--site", "S01"]), 7);
    assert_eq!(count(&cen, &["--site", "P01"]), 12);
    assert_eq!(count(&cen, &["--site", "p02"]), 3);
    // Runs (the sessions stitched from records) add up the same way.
    let runs = |n: &Node| {
        n.json(&["usage", "--runs", "--rule", "Code"])
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(runs(&cen), runs(&p01) + runs(&p02));
    assert_eq!(runs(&cen), 15);
    // So do the monthly summaries each site computes over what it holds.
    let (p01_month, p02_month) = (p01.monthly("Code"), p02.monthly("Code"));
    assert_eq!(
        cen.monthly("Code"),
        (p01_month.0 + p02_month.0, p01_month.1 + p02_month.1)
    );
    assert_eq!(cen.monthly("Code").0, 15);

    // Devices with their inventory, each at its origin site.
    let devices = poll_until(
        || cen.devices(),
        |d| d.len() == 3 && d.iter().all(|d| d["cores"] == 8),
    );
    let sites: Vec<&str> = devices
        .iter()
        .map(|d| d["site_code"].as_str().unwrap())
        .collect();
    assert_eq!(devices.len(), 3, "{devices:?}");
    for code in ["S01", "P01", "P02"] {
        assert!(sites.contains(&code), "{sites:?}");
    }
    let s01_device = devices.iter().find(|d| d["site_code"] == "S01").unwrap();
    let id = s01_device["id"].as_i64().unwrap();
    let inv = cen.get(&format!("/api/v1/devices/{id}/inventory"));
    let packages: Vec<&str> = (inv["software"].as_array().unwrap().iter())
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        packages.contains(&"S01") && packages.contains(&"code"),
        "{inv}"
    );
    // Compliance at the centre covers the subtree; --site narrows the demand to one branch.
    cen.json(&[
        "apps",
        "add",
        "Code",
        "--metric",
        "installations",
        "--software",
        "code",
    ]);
    let required = |extra: &[&str]| {
        let mut args = vec!["compliance"];
        args.extend(extra);
        let rows = cen.json(&args);
        let row = (rows.as_array().unwrap().iter())
            .find(|r| r["application"] == "Code")
            .cloned()
            .unwrap();
        row["required"].as_i64().unwrap()
    };
    assert_eq!(required(&[]), 3);
    assert_eq!(required(&["--site", "P01"]), 2);
    assert_eq!(required(&["--site", "S01"]), 1);
    assert_eq!(required(&["--site", "P02"]), 1);
    let unknown = tally_at(&cen.url(), &cen.token, &["compliance", "--site", "X99"]);
    assert!(!unknown.status.success());
    // One application's detail narrows the same way, by name.
    let detail = cen.json(&["compliance", "--app", "Code", "--site", "P01"]);
    assert_eq!(detail["required"], 2, "{detail}");
    let uncovered: Vec<&str> = (detail["uncovered_consumers"]["items"].as_array().unwrap())
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(uncovered, ["p01-pc", "s01-pc"], "{detail}");
    let detail = cen.json(&["compliance", "--app", "code", "--site", "s01"]);
    assert_eq!(detail["required"], 1, "{detail}");
    site_narrowed_summaries_and_reports(&cen);
    site_narrowed_trend(&cen);
    site_narrowed_console(&cen);

    // Users with their classification: an administrator's choice at the secondary reaches the
    // centre through the primary; inventory's (svc-backup, no login shell) is the centre's own.
    let set = tally_at(
        &s01.url(),
        &s01.token,
        &["users", "set", "alice", "--service-account", "yes"],
    );
    assert!(set.status.success(), "{set:?}");
    let user = |account: &str| {
        let users = cen.get("/api/v1/users");
        (users.as_array().unwrap().iter())
            .find(|u| u["account"] == account)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let alice = poll_until(
        || user("alice"),
        |u| u["service_account_set_by_admin"] == true,
    );
    assert_eq!(alice["service_account"], true, "{alice}");
    assert_eq!(user("bob")["service_account"], false);
    // Handed back (auto) at the secondary: the centre resets what it held from that branch,
    // and keeps its own administrator's choice.
    let set_at = |site: &Node, account: &str, choice: &str| {
        let args = ["users", "set", account, "--service-account", choice];
        let out = tally_at(&site.url(), &site.token, &args);
        assert!(out.status.success(), "{out:?}");
    };
    set_at(&cen, "bob", "yes");
    set_at(&s01, "alice", "auto");
    let alice = poll_until(
        || user("alice"),
        |u| u["service_account_set_by_admin"].is_null(),
    );
    assert_eq!(alice["service_account"], false, "{alice}");
    let bob = user("bob");
    assert_eq!(bob["service_account_set_by_admin"], true, "{bob}");

    // Agent health travels with the device, its id qualified by its site.
    let agents = cen.json(&["agents"]);
    assert!(
        agents
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"].as_str().unwrap().starts_with("S01/")),
        "{agents}"
    );

    // The tree at the centre: every site, the secondary under its primary, with counts.
    let tree = cen.sites();
    let row = |code: &str| tree.iter().find(|s| s["code"] == code).unwrap().clone();
    assert_eq!(row("CEN")["depth"], 0);
    assert_eq!(row("S01")["depth"], 2);
    assert_eq!(row("S01")["parent"], "P01");
    assert_eq!(row("P01")["link"], "joined");
    assert_eq!(row("P02")["devices"], 1);
    assert!(row("P01")["last_sync_at"].is_string());

    // A device moving from P02 to S01 (same machine) stays one device at the centre.
    let moved = s01.enrol("p02-pc", "machine-p02");
    s01.usage(&moved, "moved", "carol", 2);
    let devices = poll_until(
        || cen.devices(),
        |d| {
            d.iter()
                .any(|d| d["host_name"] == "p02-pc" && d["site_code"] == "S01")
        },
    );
    let same: Vec<&Value> = devices
        .iter()
        .filter(|d| d["host_name"] == "p02-pc")
        .collect();
    assert_eq!(same.len(), 1, "{devices:?}");
    assert_eq!(same[0]["site_code"], "S01");
    let total = poll_until(
        || {
            cen.json(&["usage", "--rule", "Code"])
                .as_array()
                .unwrap()
                .len()
        },
        |n| *n == 17,
    );
    assert_eq!(total, 17);

    // Deletion travels down both levels.
    cen.json(&["rules", "delete", "Code"]);
    let rules = poll_until(
        || s01.rules(),
        |r| r.iter().all(|r| r["site_code"] != "CEN"),
    );
    assert!(rules.iter().all(|r| r["site_code"] != "CEN"), "{rules:?}");
}

fn nothing_is_lost_or_doubled_when_the_parent_goes_away_or_the_child_dies(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let mut cen = Node::start(root.path(), "CEN", backend, None);
    let mut p01 = cen.child(root.path(), "P01");
    let agent = p01.enrol("pc", "machine-pc");
    // Records a month old (ageing keeps 5 days by default), the last of the 30,000 nine days
    // old. Two batches, so two TimeSerials: ageing keeps the newest one acknowledged (it may be
    // only partly sent), so only the first can age out below.
    let month_ago = morning(30);
    p01.usage_from(&agent, ("a", "alice"), 9, month_ago);
    assert_eq!(poll_until(|| cen.records_of("P01"), |n| *n == 9), 9);
    p01.usage_from(&agent, ("a2", "alice"), 1, month_ago);
    assert_eq!(poll_until(|| cen.records_of("P01"), |n| *n == 10), 10);

    // The parent goes away; the child keeps what it cannot send (its sync backlog shows it),
    // then sends it once.
    let backlog = |node: &Node| node.metric("tally_sync_backlog_records");
    assert_eq!(poll_until(|| backlog(&p01), |n| *n == 0), 0);
    cen.stop();
    p01.usage_from(&agent, ("b", "alice"), 20, month_ago);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(backlog(&p01), 20);
    // Ageing at the child meanwhile (every record is months old and summarised) deletes only
    // what has gone up: the first 9 sent, not the 20 waiting.
    for task in [
        "summarize_file_usage",
        "summarize_monthly_usage",
        "record_usage_sessions",
        "delete_aged_usage",
    ] {
        p01.run_task(task);
    }
    assert_eq!(p01.records_of("P01"), 1 + 20);
    cen.run();
    assert_eq!(poll_until(|| cen.records_of("P01"), |n| *n == 30), 30);
    assert_eq!(poll_until(|| backlog(&p01), |n| *n == 0), 0);
    assert_eq!(
        backlog(&cen),
        0,
        "a site without a parent has no sync backlog"
    );
    let tree = p01.sites();
    assert_eq!(tree[0]["code"], "P01");

    // A child killed mid-sync: its next start sends the rest, nothing twice.
    cen.stop();
    p01.usage_from(&agent, ("c", "alice"), 30_000, month_ago);
    cen.run();
    // Killed as soon as the first of its six batches has arrived.
    poll_until(|| cen.records_of("P01"), |n| *n > 30);
    p01.kill9();
    p01.run();
    let all = poll_until(|| cen.records_of("P01"), |n| *n == 30_030);
    assert_eq!(all, 30_030);
    // Still exactly that after more syncs.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(cen.records_of("P01"), 30_030);
    let tree = cen.sites();
    let p01_row = tree.iter().find(|s| s["code"] == "P01").unwrap();
    assert_eq!(p01_row["backlog"], 0, "{p01_row}");
    assert!(p01_row["lag_secs"].as_i64().unwrap() < 60, "{p01_row}");
    let creds = std::fs::metadata(p01.dir.join("parent.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&creds.permissions()) & 0o777,
        0o600
    );

    // A join secret works once: another server presenting P01's is refused and does not start.
    let (url, secret) = p01.parent.clone().unwrap();
    let again = joining_p01(&root.path().join("again"), &url, &secret)
        .args(cen.backend.fresh_like().db_args())
        .output()
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("refused to let site P01 join"), "{stderr}");

    // A revoked child's syncs are refused: what it records stays with it.
    let revoked = tally_at(&cen.url(), &cen.token, &["sites", "revoke", "P01"]);
    assert!(revoked.status.success(), "{revoked:?}");
    p01.usage_from(&agent, ("d", "alice"), 5, month_ago);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(cen.records_of("P01"), 30_030);
    assert_eq!(
        p01.records_of("P01"),
        30_026,
        "all but the 9 aged out above"
    );
    assert_eq!(backlog(&p01), 5);
    let tree = cen.sites();
    let p01_row = tree.iter().find(|s| s["code"] == "P01").unwrap();
    assert_eq!(p01_row["link"], "revoked");
}

/// `tally server` for a new site P01 in `data_dir`, joining the parent at `url` with the join
/// secret `secret`; on a free port, the rest of its flags left to the caller.
fn joining_p01(data_dir: &Path, url: &str, secret: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.args(["server", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--site-code",
            "P01",
            "--parent-url",
            url,
            "--parent-token",
            secret,
        ]);
    cmd
}

/// `tally ARGS --format json` against an HTTPS server whose certificate `ca` signs.
fn tls_json(url: &str, token: &str, ca: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .args(["--format", "json"])
        .env("TALLY_URL", url)
        .env("TALLY_TOKEN", token)
        .env("TALLY_CA_FILE", ca)
        .output()
        .unwrap();
    common::assert_ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A child reaches its parent over HTTPS as agents do: verified against the system roots and
/// the CA it is given (`--parent-ca-file`), and refused without it.
#[test]
fn a_child_joins_over_tls_only_when_it_trusts_the_parents_certificate() {
    let root = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (ca, key) = (root.path().join("cert.pem"), root.path().join("key.pem"));
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
    let port = free_port();
    let mut parent = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--site-code",
            "CEN",
        ])
        .arg("--data-dir")
        .arg(root.path().join("CEN"))
        .arg("--tls-cert")
        .arg(&ca)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(parent.stdout.take().unwrap()));
    let token = banner_token(lines).unwrap();
    let url = format!("https://localhost:{port}");
    let invited = tls_json(
        &url,
        &token,
        &ca,
        &["sites", "invite", "--code", "P01", "--name", "Berlin"],
    );
    let secret = invited[0]["secret"].as_str().unwrap().to_string();
    let child = |dir: &str, trust: bool| {
        let mut cmd = joining_p01(&root.path().join(dir), &url, &secret);
        cmd.args(["--sync-interval-secs", "1"]);
        if trust {
            cmd.arg("--parent-ca-file").arg(&ca);
        }
        cmd
    };
    let untrusting = child("untrusting", false).output().unwrap();
    assert!(!untrusting.status.success());
    let stderr = String::from_utf8_lossy(&untrusting.stderr);
    assert!(stderr.contains("cannot be reached"), "{stderr}");

    let mut trusting = child("P01", true)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(trusting.stdout.take().unwrap()));
    banner_token(lines);
    let tree = poll_until(
        || tls_json(&url, &token, &ca, &["sites"]),
        |t| {
            t.as_array()
                .unwrap()
                .iter()
                .any(|s| s["code"] == "P01" && s["last_sync_at"].is_string())
        },
    );
    let p01 = (tree.as_array().unwrap().iter())
        .find(|s| s["code"] == "P01")
        .unwrap();
    assert_eq!(p01["link"], "joined");
    assert!(p01["last_sync_at"].is_string(), "{tree}");
    common::stop(trusting);
    common::stop(parent);
}

/// At the centre, `--site` narrows the summaries (monthly by device; hourly recomputed from the
/// raw records of the site's devices), the reclaim list and the reports to one branch: P01
/// holds its own 5 records and S01's 7, P02 its 3, each record 59 s from 08:00 two days ago.
fn site_narrowed_summaries_and_reports(cen: &Node) {
    let day = morning(2).date_naive().to_string();
    let monthly = |site: &str| {
        let args = [
            "summaries",
            "monthly",
            "--rule",
            "Code",
            "--from",
            &day,
            "--site",
            site,
        ];
        let rows = cen.json(&args);
        let rows = rows.as_array().unwrap().clone();
        let runs: i64 = rows.iter().map(|r| r["runs"].as_i64().unwrap()).sum();
        (runs, rows.len())
    };
    assert_eq!(monthly("P01"), (12, 2));
    assert_eq!(monthly("S01"), (7, 1));
    assert_eq!(monthly("P02"), (3, 1));
    let hour = |site: &str| {
        let query = format!("rule=Code&from={day}&to={day}&site={site}");
        let rows = cen.get(&format!("/api/v1/summaries/file-usage?{query}"));
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 1, "{site}: {rows:?}");
        let row = &rows[0];
        assert_eq!(row["rule"], "Code");
        (
            row["usage_ms"].as_i64().unwrap(),
            row["distinct_devices"].as_i64().unwrap(),
        )
    };
    assert_eq!(hour("P01"), (12 * 59_000, 2));
    assert_eq!(hour("P02"), (3 * 59_000, 1));
    assert_eq!(hour("CEN"), (15 * 59_000, 3));
    // Without --from, the period starts where raw records are all kept; it holds the day.
    let rows = cen.json(&["summaries", "file-usage", "--rule", "Code", "--site", "p01"]);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    // Raw records are kept 5 days by default, so hours a month back are refused with what to
    // do, as is a period over 92 days.
    let refused = |from: &str, to: &str, says: &str| {
        let args = [
            "summaries",
            "file-usage",
            "--from",
            from,
            "--to",
            to,
            "--site",
            "P01",
        ];
        let out = tally_at(&cen.url(), &cen.token, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{stderr}");
    };
    let month_ago = morning(30).date_naive().to_string();
    refused(&month_ago, &day, "--age-days");
    let long_ago = morning(200).date_naive().to_string();
    refused(&long_ago, &day, "92 days");
    // A code no site has is a 404 with where to look; a malformed one a 400, on every path.
    for path in [
        "/api/v1/summaries/monthly",
        "/api/v1/summaries/file-usage",
        "/api/v1/compliance/detail?app=Code",
        "/api/v1/reclaim",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let status = |site: &str| {
            let resp = reqwest::blocking::Client::new()
                .get(format!("{}{path}{sep}site={site}", cen.url()))
                .bearer_auth(&cen.token)
                .send()
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().unwrap())
        };
        let (code, body) = status("X99");
        assert_eq!(code, 404, "{path}: {body}");
        assert!(body.contains("tally sites"), "{path}: {body}");
        assert_eq!(status("P01;DROP").0, 400, "{path}");
    }
    // The reclaim list: Code is not metered there, so its installations are listed as having
    // no usage data, one per device of the branch.
    let no_data = |site: &str| {
        let list = cen.json(&["reclaim", "--site", site]);
        let row = (list["no_usage_data"].as_array().unwrap().iter())
            .find(|r| r["application"] == "Code")
            .cloned();
        row.unwrap_or_else(|| panic!("{list}"))["installations"]
            .as_i64()
            .unwrap()
    };
    assert_eq!((no_data("P01"), no_data("P02"), no_data("CEN")), (2, 1, 3));

    // Reports take the same narrowing: --site, or --param site=CODE.
    let report = |args: &[&str]| {
        let mut all = vec!["report"];
        all.extend(args);
        all.extend(["--format", "json", "--out", "-"]);
        let out = tally_at(&cen.url(), &cen.token, &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let sum = |report: &Value, column: &str| -> i64 {
        let rows = report["rows"].as_array().unwrap();
        rows.iter().map(|r| r[column].as_i64().unwrap_or(0)).sum()
    };
    let monthly = report(&["monthly-usage", "--site", "P01"]);
    assert_eq!(sum(&monthly, "runs"), 12, "{monthly}");
    assert_eq!(sum(&monthly, "computers"), 2, "{monthly}");
    assert_eq!(monthly["params"]["site"], "P01");
    let whole = report(&["monthly-usage"]);
    assert_eq!(sum(&whole, "runs"), 15, "{whole}");
    assert_eq!(whole["params"]["site"], "this site and every site below it");
    let users = report(&[
        "program-users",
        "--param",
        "program=Code",
        "--param",
        "site=p02",
    ]);
    let accounts: Vec<&str> = (users["rows"].as_array().unwrap().iter())
        .map(|r| r["user"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, ["carol"], "{users}");
    let computers = report(&["program-computers", "--site", "P01"]);
    let hosts: Vec<&str> = (computers["rows"].as_array().unwrap().iter())
        .map(|r| r["computer"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["s01-pc", "p01-pc"], "most used first: {computers}");
    let elp = report(&["elp", "--site", "S01"]);
    let code = (elp["rows"].as_array().unwrap().iter())
        .find(|r| r["application"] == "Code")
        .cloned()
        .unwrap();
    assert_eq!(code["required"], 1, "{elp}");
    let notes = elp["notes"].to_string();
    assert!(notes.contains("whole stock"), "{notes}");
    let no_data_note = |site: &str| report(&["reclaim", "--site", site])["notes"].to_string();
    assert!(no_data_note("P02").contains("No usage data: 1 "));
    assert!(no_data_note("P01").contains("No usage data: 2 "));
    // Alice (S01) and bob (P01) both run Code from 08:00; carol (P02) too, at another branch.
    let from_to = [format!("from={day}"), format!("to={day}")];
    let hourly = |kind: &str, site: &str| {
        let args = [
            kind,
            "--site",
            site,
            "--param",
            &from_to[0],
            "--param",
            &from_to[1],
        ];
        report(&args)
    };
    let peak_users = |site: &str| {
        let concurrency = hourly("concurrency", site);
        let rows = concurrency["rows"].as_array().unwrap();
        let day = rows.iter().find(|r| r["period"] == "day").cloned();
        day.unwrap_or_else(|| panic!("{concurrency}"))["peak_users"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(peak_users("P01"), 2);
    assert_eq!(peak_users("P02"), 1);
    // The heat map adds up the minutes of the branch's devices: P01's 12 runs of 59 s are 12
    // minutes (rounded), P02's 3 are 3.
    let minutes = |site: &str| -> i64 {
        let heat = hourly("heat-map", site);
        (heat["rows"].as_array().unwrap().iter())
            .flat_map(|r| r.as_object().unwrap().values())
            .filter_map(Value::as_i64)
            .sum()
    };
    assert_eq!((minutes("P01"), minutes("P02")), (12, 3));
    let bad = tally_at(
        &cen.url(),
        &cen.token,
        &["report", "monthly-usage", "--site", "X99", "--out", "-"],
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("X99"), "{stderr}");
}

/// At the centre, `compliance --trend --site` gives the kept days computed again over one
/// branch (Code is installed on one computer at each of P01, S01 and P02), and refuses an
/// unknown site and a period over 92 days with what to do.
fn site_narrowed_trend(cen: &Node) {
    cen.run_task("snapshot_compliance");
    let required = |extra: &[&str]| -> Vec<i64> {
        let mut args = vec!["compliance", "--trend", "--app", "Code"];
        args.extend(extra);
        let rows = cen.json(&args);
        let rows = rows.as_array().unwrap().clone();
        rows.iter()
            .map(|r| r["required"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(required(&[]), [3], "the kept snapshot: the whole subtree");
    assert_eq!(required(&["--site", "P01"]), [2]);
    assert_eq!(required(&["--site", "s01"]), [1]);
    let p02 = cen.json(&["compliance", "--trend", "--site", "P02"]);
    let code = (p02.as_array().unwrap().iter()).find(|r| r["application"] == "Code");
    assert_eq!(code.unwrap()["required"], 1, "{p02}");
    let refused = |args: &[&str], says: &str| {
        let mut all = vec!["compliance", "--trend"];
        all.extend(args);
        let out = tally_at(&cen.url(), &cen.token, &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{stderr}");
    };
    refused(&["--site", "X99"], "no site X99");
    let long_ago = morning(120).date_naive().to_string();
    refused(&["--site", "P01", "--since", &long_ago], "92 days");
}

/// The centre's console narrowed to one branch with `?site=`: the positions, an
/// application's page, the programs and the reclaim list show that branch's figures only and
/// say so with a way back to every site; an unknown site is a 404 page, a malformed one a 400.
fn site_narrowed_console(cen: &Node) {
    use web::{cells_of, client, get, rows_of, sign_in, text_of, value};
    let (http, url) = (client(), cen.url());
    let session = value(&sign_in(&http, &url, &cen.token));
    let page = |path: &str| {
        let resp = get(&http, &url, &session, path);
        let status = resp.status().as_u16();
        (status, resp.text().unwrap())
    };
    let shown = |path: &str| {
        let (status, body) = page(path);
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    // Positions: the required installations of Code, the whole subtree's and one branch's.
    let required = |query: &str| {
        let list = shown(&format!("/applications{query}"));
        cells_of(&list, "applications", "Code")[2].clone()
    };
    assert_eq!(required(""), "3");
    assert_eq!(required("?site=P01"), "2");
    assert_eq!(required("?site=p02"), "1");
    let list = shown("/applications?site=P01");
    let says = text_of(&list, "site-scope");
    assert!(says.contains("Narrowed to site P01"), "{says}");
    assert!(
        list.contains("href=\"/applications/Code?site=P01\""),
        "{list}"
    );
    assert!(
        list.contains("<option value=\"S01\">S01</option>"),
        "the choice of site"
    );
    assert!(list.contains("<option value=\"P01\" selected>P01</option>"));
    assert!(
        !shown("/applications").contains("site-scope"),
        "not narrowed"
    );
    // An application's page: its figures and the computers it names.
    let app = shown("/applications/Code?site=S01");
    assert_eq!(text_of(&app, "required"), "1");
    let uncovered = rows_of(&app, "uncovered");
    assert!(
        uncovered.len() == 1 && uncovered[0].contains("s01-pc"),
        "{uncovered:?}"
    );
    let back = "id=\"site-scope-all\" href=\"/applications/Code\"";
    assert!(app.contains(back), "a way back to every site: {app}");
    assert_eq!(rows_of(&shown("/applications/Code"), "uncovered").len(), 3);
    let concurrency = shown("/applications/Code/concurrency?site=S01");
    assert!(text_of(&concurrency, "site-scope").contains("S01"));
    // The programs: the monthly summaries of the branch's devices.
    let runs =
        |query: &str| cells_of(&shown(&format!("/programs{query}")), "programs", "Code")[2].clone();
    assert_eq!(runs(""), "15");
    assert_eq!(runs("?site=P02"), "3");
    assert_eq!(runs("?site=P01"), "12");
    // The reclaim list: Code's installations whose use is not known, one per computer.
    assert!(shown("/reclaim").contains("Code: 3 installations"));
    let reclaim = shown("/reclaim?site=P02");
    assert!(reclaim.contains("Code: 1 installations"), "{reclaim}");
    assert!(
        reclaim.contains("/reclaim.csv?days=90&amp;site=P02"),
        "the export keeps it"
    );
    // Unknown and malformed sites, escaped on the error page.
    let (status, body) = page("/applications?site=X99");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("X99"), "{body}");
    let (status, body) = page("/programs?site=%3Cscript%3E");
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("<script>"), "{body}");
}
