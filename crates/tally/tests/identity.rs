//! Devices, users, agents and usage by name through the CLI (issue 16, items 3, 4 and 9): the
//! verbs that retire, re-status and merge devices and classify accounts, and a real agent that
//! enrols again from a fresh state directory and stays one device.

mod common;

use std::time::Duration;

use common::json::{entry, strings};
use common::{
    enrol_agent, poll_until, server_on, tally, tally_json, tally_json_at, wait_for, Backend, Site,
};
use serde_json::{json, Value};

each_backend!(devices_users_agents_and_usage_by_name_through_the_cli,);

/// Posts `body` to the agent endpoint `path` with `creds`.
fn agent_post(url: &str, creds: &str, path: &str, body: Value) {
    let status = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/agent/{path}"))
        .bearer_auth(creds)
        .json(&body)
        .send()
        .unwrap();
    let (status, body) = (status.status(), status.text().unwrap());
    assert_eq!(status, 200, "{path}: {body}");
}

/// A finished run of `code` by `account`, 65 minutes long.
fn run(id: &str, account: &str) -> Value {
    let period = ("2026-06-01T08:00:00.123456Z", "2026-06-01T09:05:00.123456Z");
    common::code_record(id, account, period, (true, false))
}

fn text(out: &std::process::Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn devices_users_agents_and_usage_by_name_through_the_cli(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let t = server.token.clone();
    tally_json(
        &server,
        &t,
        &["rules", "add", "--name", "Code", "--file-name", "code"],
    );
    let old = enrol_agent(&server.url, &t, "vm");
    let new = enrol_agent(&server.url, &t, "vm");
    let batch = |id: &str, records: Vec<Value>| json!({"batch_id": id, "records": records});
    agent_post(
        &server.url,
        &old,
        "usage",
        batch("o1", vec![run("r1", "alice")]),
    );
    agent_post(
        &server.url,
        &new,
        "usage",
        batch("n1", vec![run("r2", "root")]),
    );
    let accounts = json!([{"name": "root", "uid": 0, "full_name": "root", "shell": "/bin/bash",
                           "service_account": true, "reason": "uid 0 (system account)"}]);
    agent_post(
        &server.url,
        &new,
        "inventory",
        json!({"hash": "h1", "accounts": accounts}),
    );

    // Two devices named vm: a name that fits two is refused, saying what to do.
    let (ok, _, err) = text(&tally(&server, &t, &["usage", "--device", "vm"]));
    assert!(
        !ok && err.contains("2 devices are named \"vm\"") && err.contains("merge"),
        "{err}"
    );
    let devices = tally_json(&server, &t, &["devices"]);
    let ids: Vec<i64> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let (from, into) = (ids[0].to_string(), ids[1].to_string());
    let (ok, out, err) = text(&tally(&server, &t, &["devices", "merge", &from, &into]));
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("merged device {from} (vm) into {into} (vm)")),
        "{err}"
    );
    assert!(out.starts_with("MOVED"), "{out}");
    let moved = |what: &str| {
        out.lines()
            .find(|l| l.starts_with(what))
            .unwrap()
            .to_string()
    };
    assert!(moved("usage records").ends_with(" 1"), "{out}");
    assert!(moved("agents").ends_with(" 1"), "{out}");
    assert_eq!(
        strings(&tally_json(&server, &t, &["devices"]), "host_name"),
        ["vm"]
    );

    // Usage by host name and account; tables with names, seconds and durations that fit.
    let by_host = tally_json(&server, &t, &["usage", "--device", "vm"]);
    assert_eq!(by_host.as_array().unwrap().len(), 2, "{by_host}");
    let alice = tally_json(&server, &t, &["usage", "--user", "alice"]);
    assert_eq!(strings(&alice, "meter_data_id"), ["r1"]);
    assert_eq!(alice[0]["user"], "alice", "JSON keeps ids and adds names");
    assert_eq!(alice[0]["host"], "vm");
    let (ok, _, err) = text(&tally(&server, &t, &["usage", "--user", "zed"]));
    assert!(
        !ok && err.contains("no user with account or id \"zed\""),
        "{err}"
    );
    let (ok, out, err) = text(&tally(&server, &t, &["usage", "--runs", "--device", "vm"]));
    assert!(ok, "{err}");
    let header = out.lines().next().unwrap();
    assert!(
        header.starts_with("PROGRAM") && header.contains("RULES"),
        "{out}"
    );
    let row = out.lines().find(|l| l.contains("alice")).unwrap();
    for part in [
        "code 1.95.0",
        "Code",
        "vm",
        "2026-06-01 08:00:00 UTC",
        "1 h 05 min",
        "ended",
    ] {
        assert!(row.contains(part), "{part:?} in {row}");
    }
    let (_, out, _) = text(&tally(&server, &t, &["usage"]));
    assert!(
        out.contains("1 h 05 min") && !out.contains(".123456"),
        "{out}"
    );

    // Agents by host name, not device id.
    let (ok, out, _) = text(&tally(&server, &t, &["agents"]));
    assert!(ok && out.starts_with("HOST"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("vm ")).count(),
        2,
        "{out}"
    );

    // Users with the classification and its reason; an admin's override, then back to auto.
    let (_, out, _) = text(&tally(&server, &t, &["users"]));
    let root = out.lines().find(|l| l.starts_with("root")).unwrap();
    assert!(
        root.contains("yes") && root.contains("uid 0 (system account), from inventory of vm"),
        "{out}"
    );
    let (ok, out, err) = text(&tally(
        &server,
        &t,
        &["users", "set", "root", "--service-account", "no"],
    ));
    assert!(ok, "{err}");
    assert!(out.contains("set by admin"), "{out}");
    let users = tally_json(&server, &t, &["users"]);
    let root = entry(&users, "account", "root");
    assert_eq!(
        (
            &root["service_account"],
            &root["service_account_set_by_admin"]
        ),
        (&json!(false), &json!(false))
    );
    let (ok, _, err) = text(&tally(
        &server,
        &t,
        &["users", "set", "root", "--service-account", "maybe"],
    ));
    assert!(!ok && err.contains("maybe"), "{err}");
    tally_json(
        &server,
        &t,
        &["users", "set", "root", "--service-account", "auto"],
    );

    // Retire and re-status by host name.
    let (ok, _, err) = text(&tally(&server, &t, &["devices", "retire", "vm"]));
    assert!(ok && err.contains("vm is now retired"), "{err}");
    assert_eq!(
        tally_json(&server, &t, &["devices"])[0]["status"],
        "retired"
    );
    let back = tally_json(&server, &t, &["devices", "set-status", "vm", "in_repair"]);
    assert_eq!(back[0]["status"], "in_repair");
    let (ok, _, err) = text(&tally(
        &server,
        &t,
        &["devices", "set-status", "vm", "broken"],
    ));
    assert!(!ok && err.contains("broken"), "{err}");
    let (ok, _, err) = text(&tally(&server, &t, &["devices", "retire", "nosuch"]));
    assert!(
        !ok && err.contains("no device with host name or id \"nosuch\""),
        "{err}"
    );
    assert!(server.stop().success());
}

/// A real agent enrolled, then reinstalled with an empty state directory and enrolled again:
/// the server finds the machine by its /etc/machine-id, so it stays one device and the first
/// agent's credentials are revoked.
#[test]
fn a_reinstalled_agent_enrols_again_into_the_same_device() {
    if !std::path::Path::new("/etc/machine-id").exists() {
        eprintln!("skipped: this machine has no /etc/machine-id");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path(), "Reinstall");
    let first = dir.path().join("first");
    let mut agent = site.agent(&first, &[]);
    wait_for(&first.join("agent.json"));
    agent.kill().unwrap();
    agent.wait().unwrap();
    let devices = tally_json_at(&site.url, &site.token, &["devices"]);
    assert_eq!(devices.as_array().unwrap().len(), 1, "{devices}");
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap();
    assert_eq!(devices[0]["machine_id"], machine_id.trim());

    let token = tally_json_at(
        &site.url,
        &site.token,
        &["enrollment", "create", "--name", "again", "--max-uses", "1"],
    );
    let second = dir.path().join("second");
    let mut agent = site.agent_at(&site.url, token[0]["token"].as_str().unwrap(), &second, &[]);
    wait_for(&second.join("agent.json"));
    let agents = poll_until(
        || tally_json_at(&site.url, &site.token, &["agents"]),
        |a| a.as_array().unwrap().len() == 2,
    );
    agent.kill().unwrap();
    agent.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let devices = tally_json_at(&site.url, &site.token, &["devices"]);
    assert_eq!(
        devices.as_array().unwrap().len(),
        1,
        "one machine, one device: {devices}"
    );
    let live: Vec<&Value> = agents
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["revoked_at"].is_null())
        .collect();
    assert_eq!(live.len(), 1, "the first agent is superseded: {agents}");
    assert!(agents
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["device_id"] == devices[0]["id"] && a["host_name"] == devices[0]["host_name"]));
}
