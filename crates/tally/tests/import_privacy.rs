//! `tally import --pseudonymize-users` stores account and full names as the site's pseudonyms,
//! as a server with the setting does for its agents: no plain name reaches the database files.

mod common;

#[test]
fn a_pseudonymising_import_leaves_no_plain_name_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = [
        ("devices.csv", "host_name\npc1\n"),
        (
            "users.csv",
            "account,full_name\nzelda.importname,Zelda Importface\n",
        ),
        ("applications.csv", "name,metric\nChat,concurrent_users\n"),
        (
            "usage_sessions.csv",
            "application,host_name,account,start,end\n\
             Chat,pc1,zelda.importname,2026-03-02T09:00:00Z,2026-03-02T10:00:00Z\n",
        ),
    ]
    .iter()
    .map(|(name, text)| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    })
    .collect();
    let data = dir.path().join("tally-data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["import", "--create"])
        .args(&files)
        .args(["--data-dir", data.to_str().unwrap(), "--pseudonymize-users"])
        .env_remove("TALLY_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    common::assert_names_pseudonymised_in(&data, &["importname", "importface"]);
}
