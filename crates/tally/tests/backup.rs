//! `tally backup` while agents upload, and `tally restore` into a new data directory: real
//! `tally server` processes on real SQLite files, loaded over the agent API.

mod common;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::load::{batches, enrol, upload};
use common::{assert_ok, free_port, poll_until, server, stop, tally_json_at};

const BATCH_SIZE: usize = 50;

fn tally(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .env_remove("TALLY_DATABASE_URL")
        .env_remove("TALLY_DATA_DIR")
        .output()
        .unwrap()
}

/// The `TABLE: N rows` figures a backup or restore printed.
fn figures(out: &Output) -> Vec<(String, i64)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (table, n) = l.trim().split_once(": ")?;
            Some((table.to_string(), n.strip_suffix(" rows")?.parse().ok()?))
        })
        .collect()
}

fn rows_of(figures: &[(String, i64)], table: &str) -> i64 {
    figures
        .iter()
        .find(|(t, _)| t == table)
        .map(|(_, n)| *n)
        .unwrap()
}

#[test]
fn a_backup_taken_under_upload_load_restores_with_the_same_figures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let (live, token) = server(&data, port);
    let url = format!("http://127.0.0.1:{port}");
    let token = token.unwrap();
    let creds = enrol(&url, &token, 2);
    let (stored, stop_uploads) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let uploaders: Vec<_> = creds
        .into_iter()
        .enumerate()
        .map(|(c, creds)| {
            let (url, stored, stop_uploads) = (url.clone(), stored.clone(), stop_uploads.clone());
            std::thread::spawn(move || {
                for batch in batches(c, 400, BATCH_SIZE, 1) {
                    if stop_uploads.load(Ordering::Relaxed) {
                        break;
                    }
                    upload(&url, &creds, &batch).unwrap();
                    stored.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    poll_until(|| stored.load(Ordering::Relaxed), |n| *n >= 10);
    let file = dir.path().join("tally.backup");
    let backup = tally(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_ok(&backup);
    let at_backup = stored.load(Ordering::Relaxed);
    // Uploads go on after the backup: the backup must not see them.
    poll_until(|| stored.load(Ordering::Relaxed), |n| *n >= at_backup + 10);
    stop_uploads.store(true, Ordering::Relaxed);
    for u in uploaders {
        u.join().unwrap();
    }
    let backed_up = figures(&backup);
    let records = rows_of(&backed_up, "usage_records");
    assert!(records > 0, "{backed_up:?}");
    assert_eq!(
        records % BATCH_SIZE as i64,
        0,
        "every batch whole or absent: {records}"
    );
    let live_total = (stored.load(Ordering::Relaxed) * BATCH_SIZE) as i64;
    assert!(records < live_total, "{records} backed up of {live_total}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "a backup holds personal data: owner only"
    );

    let restored = dir.path().join("restored");
    let restore = tally(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert_ok(&restore);
    assert_eq!(
        figures(&restore),
        backed_up,
        "restore read what backup wrote"
    );
    // Into an existing database: refused.
    let again = tally(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    common::assert_stderr_has(&again, "new data directory");
    stop(live);

    // A server on the restored directory serves the backed-up figures.
    let port = free_port();
    let (copy, none) = server(&restored, port);
    assert!(
        none.is_none(),
        "the restored database has its tokens: none minted"
    );
    let url = format!("http://127.0.0.1:{port}");
    let ready = reqwest::blocking::get(format!("{url}/readyz")).unwrap();
    assert_eq!(ready.status(), 200);
    let devices = tally_json_at(&url, &token, &["devices"]);
    assert_eq!(
        devices.as_array().unwrap().len() as i64,
        rows_of(&backed_up, "devices")
    );
    let usage = tally_json_at(&url, &token, &["usage", "--limit", "1000"]);
    let shown = usage.as_array().unwrap().len() as i64;
    assert_eq!(
        shown,
        records.min(1000),
        "the restored server reads the backed-up records"
    );
    stop(copy);
}

#[test]
fn postgres_is_pointed_to_pg_dump() {
    let out = tally(&[
        "backup",
        "--database-url",
        "postgres://tally@db.invalid/tally",
        "--out",
        "/nonexistent/x",
    ]);
    assert!(!out.status.success());
    common::assert_stderr_has(&out, "pg_dump");
}
