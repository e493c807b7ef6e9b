//! Pseudonymisation end to end: a real agent reports a real person's use of a program and
//! their local account, to a `tally server --pseudonymize-users`; afterwards no file of the
//! server's database holds the person's account or full name, and an admin resolves the
//! pseudonym to the account.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{poll_until, tally_json_at, wait_for, Site};

/// A local user made for one test (needs root), removed when dropped.
struct LocalUser(String);

impl LocalUser {
    fn create(name: &str, full_name: &str) -> Option<Self> {
        let made = Command::new("useradd")
            .args([
                "--no-create-home",
                "--shell",
                "/bin/sh",
                "--comment",
                full_name,
                name,
            ])
            .status()
            .ok()?;
        made.success().then(|| Self(name.to_string()))
    }
}

impl Drop for LocalUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

#[test]
fn with_pseudonyms_an_agents_report_leaves_no_plain_name_in_the_database() {
    if !common::needs::group(
        "the privacy test of a real user's run",
        true,
        &[("useradd", "passwd")],
    ) {
        return;
    }
    let name = format!("zq{}", std::process::id());
    let full_name = "Quintessa Plainface";
    let _user = LocalUser::create(&name, full_name).expect("useradd as root");
    let dir = tempfile::tempdir().unwrap();
    // The person must be able to run the program the site meters, which lives in `dir`.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let site = Site::with_server_flags(dir.path(), "Private", &["--pseudonymize-users"]);
    let state = dir.path().join("agent");
    let mut agent = site.agent(&state, &["--watcher", "netlink"]);
    wait_for(&state.join("agent.json"));
    std::thread::sleep(std::time::Duration::from_secs(1));
    let ran = Command::new("runuser")
        .args(["-u", &name, "--"])
        .arg(&site.program)
        .arg("0.3")
        .status()
        .unwrap();
    assert!(ran.success());
    let records = site.records_until("Private", |r| r.iter().any(|x| x["still_running"] == false));
    assert!(!records.is_empty(), "the run arrived");

    // The person's account and full name, as the inventory reports them, are pseudonyms too.
    let devices = tally_json_at(&site.url, &site.token, &["devices"]);
    let id = devices[0]["id"].to_string();
    let inventory = poll_until(
        || tally_json_at(&site.url, &site.token, &["devices", "--inventory", &id]),
        |inv| inv["accounts"].as_array().is_some_and(|a| !a.is_empty()),
    );
    let accounts = inventory["accounts"].as_array().unwrap();
    assert!(
        accounts
            .iter()
            .all(|a| a["name"].as_str().unwrap().starts_with("pseu-")),
        "{accounts:#?}"
    );
    let users = tally_json_at(&site.url, &site.token, &["users"]);
    let pseudonyms: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["account"].as_str().unwrap())
        .collect();
    assert!(
        pseudonyms.iter().all(|p| p.starts_with("pseu-")),
        "{users:#?}"
    );
    let resolved: Vec<String> = pseudonyms
        .iter()
        .map(|p| {
            let r = tally_json_at(&site.url, &site.token, &["users", "resolve", p]);
            r[0]["account"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(resolved.contains(&name), "{resolved:?}");
    agent.kill().unwrap();
    agent.wait().unwrap();

    let plain = [name.as_str(), "Quintessa", "Plainface"];
    common::assert_names_pseudonymised_in(&dir.path().join("server"), &plain);
}
