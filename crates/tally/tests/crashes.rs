//! Known crashes and faults, one test per case, in the manner of Vector's buffer
//! `known_errors`: each names what goes wrong (a `kill -9` at a bad moment, a full disk, a
//! damaged file) and what must still hold afterwards. Real processes only: the `tally` binary
//! as server, importer and agent, on real SQLite files and (where cheap) real PostgreSQL.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::load::{batches, enrol, upload};
use common::{free_port, tally_json_at, wait_for, Backend, Site};
use serde_json::Value;
use tally_core::wire::v1::UsageBatch;

/// A `tally server` on `backend` with its data in `dir` (SQLite's file in `dir/tally-data`),
/// on a port that stays the same across restarts.
struct Server {
    child: Child,
    url: String,
    port: u16,
    token: Option<String>,
}

impl Server {
    fn start(dir: &Path, backend: &Backend) -> Self {
        Self::start_on(dir, backend, free_port())
    }

    /// Starts (or restarts) the server; a database that has tokens prints none.
    fn start_on(dir: &Path, backend: &Backend, port: u16) -> Self {
        let (child, lines) = common::spawn_lines(
            Command::new(env!("CARGO_BIN_EXE_tally"))
                .args(["server", "--listen", &format!("127.0.0.1:{port}")])
                .args(backend.db_args())
                .current_dir(dir)
                .env_remove("TALLY_DATABASE_URL")
                .env_remove("TALLY_DATA_DIR"),
        );
        let token = common::banner_token(lines);
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            token,
        }
    }

    /// `kill -9`: no shutdown, no flush, no checkpoint.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, as a service manager stops it.
    fn stop(self) {
        common::stop(self.child);
    }
}

/// Runs `sql` (one text column) on the backend's database and returns the rows.
fn strings(backend: &Backend, dir: &Path, sql: &str) -> Vec<String> {
    let url = backend.url(&dir.join("tally-data/tally.db"));
    let sql = sql.to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let rows = sqlx::query_scalar(&sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        } else {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let rows = sqlx::query_scalar(&sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    })
}

/// How many times each value occurs.
fn counted(values: Vec<String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_insert(0) += 1;
    }
    counts
}

const CLIENTS: usize = 4;
const BATCHES: usize = 60;
const BATCH_SIZE: usize = 200;

/// Case: the server is killed with `kill -9` while agents upload. Every batch it acknowledged
/// is stored after the restart, and once the agents re-send what was not acknowledged, every
/// record is stored exactly once (a re-sent acknowledged batch is answered as the first time).
fn kill_9_during_ingest_keeps_every_acknowledged_batch_exactly_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &backend);
    let token = server.token.clone().expect("a new server prints a token");
    let creds = enrol(&server.url, &token, CLIENTS);
    let work: Vec<Vec<UsageBatch>> = (0..CLIENTS)
        .map(|c| batches(c, BATCHES, BATCH_SIZE, 3))
        .collect();
    let work = Arc::new(work);
    // (client, batch) → the acknowledgement's body.
    let acked: Arc<Mutex<BTreeMap<(usize, usize), Value>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let uploaders: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, creds, work) = (server.url.clone(), creds[c].clone(), work.clone());
            let (acked, count) = (acked.clone(), count.clone());
            std::thread::spawn(move || {
                for (b, batch) in work[c].iter().enumerate() {
                    match upload(&url, &creds, batch) {
                        Ok(ack) => {
                            acked.lock().unwrap().insert((c, b), ack);
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        // The server is gone: like an agent, keep the batch to re-send.
                        Err(_) => return b,
                    }
                }
                BATCHES
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::SeqCst) < CLIENTS * BATCHES / 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let port = server.port;
    server.kill_9();
    let resume: Vec<usize> = uploaders.into_iter().map(|u| u.join().unwrap()).collect();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() < CLIENTS * BATCHES && resume.iter().any(|&b| b < BATCHES),
        "the kill came after every upload: nothing was in flight"
    );

    let server = Server::start_on(dir.path(), &backend, port);
    // Acknowledged means stored: before anything is re-sent, every acknowledged batch is there.
    let stored = counted(strings(
        &backend,
        dir.path(),
        "SELECT meter_data_id FROM usage_records",
    ));
    for &(c, b) in acked.keys() {
        for r in &work[c][b].records {
            assert_eq!(
                stored.get(&r.meter_data_id),
                Some(&1),
                "acknowledged batch c{c}-b{b} lost or doubled record {}",
                r.meter_data_id
            );
        }
    }
    // The agents re-send: an acknowledged batch is answered as the first time, the rest stored.
    for (c, &from) in resume.iter().enumerate() {
        if let Some(b) = from.checked_sub(1) {
            let again = upload(&server.url, &creds[c], &work[c][b]).unwrap();
            assert_eq!(again, acked[&(c, b)], "a replayed batch answers as before");
        }
        for batch in &work[c][from..] {
            upload(&server.url, &creds[c], batch).unwrap();
        }
    }
    let stored = counted(strings(
        &backend,
        dir.path(),
        "SELECT meter_data_id FROM usage_records",
    ));
    let expected: BTreeMap<String, usize> = work
        .iter()
        .flatten()
        .flat_map(|b| &b.records)
        .map(|r| (r.meter_data_id.clone(), 1))
        .collect();
    assert_eq!(stored.len(), expected.len());
    assert!(stored == expected, "every record stored exactly once");
    let batch_rows = strings(&backend, dir.path(), "SELECT batch_id FROM usage_batches");
    assert_eq!(batch_rows.len(), CLIENTS * BATCHES);
    server.stop();
}

each_backend!(kill_9_during_ingest_keeps_every_acknowledged_batch_exactly_once);

/// Case: `tally import` of a large file is killed with `kill -9` while it writes. Nothing of
/// it is stored (the import is one transaction), and importing again loads all of it.
#[test]
fn kill_9_during_import_stores_all_or_nothing() {
    const DEVICES: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("devices.csv");
    let mut text = String::from("host_name,os,cores\n");
    for i in 0..DEVICES {
        text.push_str(&format!("import-host-{i:07},Linux,{}\n", 1 + i % 16));
    }
    std::fs::write(&csv, text).unwrap();
    std::fs::create_dir_all(dir.path().join("tally-data")).unwrap();
    let import = || {
        Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["import", "--create"])
            .arg(&csv)
            .current_dir(dir.path())
            .env_remove("TALLY_DATABASE_URL")
            .env_remove("TALLY_DATA_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let wal = dir.path().join("tally-data/tally.db-wal");
    let mut child = import();
    // A WAL past a few megabytes means the import's transaction is spilling its rows to it:
    // the writing has begun and has not committed.
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::metadata(&wal).map_or(0, |m| m.len()) < 4 << 20 && Instant::now() < deadline {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it was seen writing"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the import was killed mid-way");

    let devices = || {
        strings(
            &Backend::Sqlite,
            dir.path(),
            "SELECT CAST(COUNT(*) AS TEXT) FROM devices",
        )[0]
        .parse::<usize>()
        .unwrap()
    };
    let after_kill = devices();
    assert!(
        after_kill == 0 || after_kill == DEVICES,
        "a killed import left {after_kill} of {DEVICES} devices"
    );
    assert!(import().wait().unwrap().success(), "importing again works");
    assert_eq!(devices(), DEVICES);
}

/// The rules the summary case meters: one per program of [`record`].
fn add_rules(server: &Server, token: &str) {
    for p in 0..5 {
        let name = format!("prog{p}");
        tally_json_at(
            &server.url,
            token,
            &["rules", "add", "--name", &name, "--file-name", &name],
        );
    }
}

/// Both summaries as the API serves them, sorted.
fn summaries(server: &Server, token: &str) -> (Value, Value) {
    let sorted = |mut v: Value| {
        v.as_array_mut().unwrap().sort_by_key(|row| row.to_string());
        v
    };
    (
        sorted(tally_json_at(
            &server.url,
            token,
            &["summaries", "file-usage"],
        )),
        sorted(tally_json_at(&server.url, token, &["summaries", "monthly"])),
    )
}

const SUMMARY_TASKS: [&str; 2] = ["summarize_file_usage", "summarize_monthly_usage"];

/// `tally tasks run TASK` against `url`, as a child process.
fn run_task_process(url: &str, token: &str, task: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["tasks", "run", task])
        .env("TALLY_URL", url)
        .env("TALLY_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Case: the server is killed with `kill -9` while it summarises, in each summary task. Run
/// again after the restart, the tasks converge to exactly the summaries an uninterrupted run
/// makes from a copy of the same data: no hour or month counted twice, none missing. The
/// records are of the last three days, inside `delete_aged_usage`'s age (5 days).
#[test]
fn kill_9_during_summarisation_converges_on_the_next_run() {
    kill_9_during_summarisation(3);
}

/// As above, with records older than `delete_aged_usage`'s age (late uploads of an agent that
/// was away for a week): their hours may have lost raw records already, so the new records'
/// share is added to the stored rows — once, in the transaction that moves the watermark, so a
/// killed run adds nothing and the re-run adds it exactly once (it used to double `usage_ms`).
#[test]
fn kill_9_during_summarisation_of_old_records_converges_too() {
    kill_9_during_summarisation(8);
}

fn kill_9_during_summarisation(days_ago: i64) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    let server = Server::start(&a, &Backend::Sqlite);
    let token = server.token.clone().unwrap();
    for task in SUMMARY_TASKS.iter().chain(&["record_usage_sessions"]) {
        tally_json_at(&server.url, &token, &["tasks", "set", task, "--disable"]);
    }
    add_rules(&server, &token);
    let creds = enrol(&server.url, &token, 2);
    for (c, creds) in creds.iter().enumerate() {
        for batch in batches(c, 40, 1000, days_ago) {
            upload(&server.url, creds, &batch).unwrap();
        }
    }
    server.stop();
    copy_dir(&a, &b);

    // The uninterrupted run, on the copy, timed to know when "mid-way" is.
    let copy = Server::start(&b, &Backend::Sqlite);
    let mut took = Vec::new();
    for task in SUMMARY_TASKS {
        let started = Instant::now();
        let done = run_task_process(&copy.url, &token, task).wait().unwrap();
        assert!(done.success(), "{task} on the copy");
        took.push(started.elapsed());
    }
    let expected = summaries(&copy, &token);
    copy.stop();

    let mut port = free_port();
    for (task, took) in SUMMARY_TASKS.iter().zip(&took) {
        let server = Server::start_on(&a, &Backend::Sqlite, port);
        let mut client = run_task_process(&server.url, &token, task);
        if *task == "summarize_file_usage" {
            // Killed once its first rows are written (recent hours a day at a time, the
            // watermark last): the writing has begun and not ended.
            let written = || {
                strings(
                    &Backend::Sqlite,
                    &a,
                    "SELECT CAST(COUNT(*) AS TEXT) FROM file_usage_hourly",
                )[0] != "0"
            };
            // Hours past the ageing cut-off are written only at the end, with the watermark:
            // for those, halfway through the uninterrupted run's time is mid-way.
            let halfway = Instant::now() + *took / 2;
            while client.try_wait().unwrap().is_none() && !written() && Instant::now() < halfway {
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            // The monthly rows and their watermark are written in one transaction at the end:
            // halfway through is as good a moment as any.
            std::thread::sleep(*took / 2);
        }
        server.kill_9();
        let cut = !client.wait().unwrap().success();
        eprintln!("{task}: {took:?} uninterrupted; killed mid-way: {cut}");
        // The hourly kill waits for the writing to begin; the monthly one is timed, and on a
        // loaded machine the task may beat it (the re-run must converge all the same).
        assert!(
            cut || *task != "summarize_file_usage",
            "{task} finished before the kill: nothing was cut"
        );
        port = free_port();
    }
    let server = Server::start_on(&a, &Backend::Sqlite, port);
    for task in SUMMARY_TASKS {
        let ran = common::poll_until(
            || common::tally_at(&server.url, &token, &["tasks", "run", task]),
            |out| !String::from_utf8_lossy(&out.stderr).contains("running already"),
        );
        assert!(ran.status.success(), "{task}: {ran:?}");
    }
    let converged = summaries(&server, &token);
    assert!(
        !expected.0.as_array().unwrap().is_empty() && !expected.1.as_array().unwrap().is_empty()
    );
    same_rows("hourly", &converged.0, &expected.0);
    same_rows("monthly", &converged.1, &expected.1);
    server.stop();
}

/// Insists two answers hold the same rows; names a few of those that differ.
fn same_rows(what: &str, got: &Value, expected: &Value) {
    let rows = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect()
    };
    let (got, expected) = (rows(got), rows(expected));
    let extra: Vec<&String> = got.iter().filter(|r| !expected.contains(r)).collect();
    let missing: Vec<&String> = expected.iter().filter(|r| !got.contains(r)).collect();
    assert!(
        extra.is_empty() && missing.is_empty() && got.len() == expected.len(),
        "{what} summaries differ from an uninterrupted run's: {} rows against {}; \
         {} not expected, e.g. {:?}; {} missing, e.g. {:?}",
        got.len(),
        expected.len(),
        extra.len(),
        &extra[..extra.len().min(3)],
        missing.len(),
        &missing[..missing.len().min(3)]
    );
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Whether the tests run as root (needed to mount a tmpfs); says so when they do not.
fn root_or_skip(case: &str) -> bool {
    common::needs_root(&format!("the crash case {case} (it mounts a tmpfs)"))
}

/// A tmpfs of `size` mounted on a directory for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs on {}", at.display());
        Self(at.to_path_buf())
    }

    /// Writes a file until the file system has no space left.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Killed {
    /// SIGTERM, and wait for it to end.
    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tally agent` for `site` with its state in `state` and its log in `log`.
fn agent(site: &Site, state: &Path, log: &Path) -> Killed {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "agent",
            "--server",
            &site.url,
            "--enroll-token",
            &site.enroll,
        ])
        .args([
            "--report-secs",
            "1",
            "--policy-secs",
            "1",
            "--upload-secs",
            "1",
        ])
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Killed)
        .unwrap()
}

/// Waits until the agent logging to `log` has started `times` times.
fn started(log: &Path, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let count = || {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .matches("agent started")
            .count()
    };
    while count() < times && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(count() >= times, "the agent did not start");
}

/// The site's agent's `dropped_records` as `tally agents` shows it.
fn dropped(site: &Site) -> i64 {
    let agents = tally_json_at(&site.url, &site.token, &["agents"]);
    agents[0]["dropped_records"].as_i64().unwrap()
}

/// Distinct instances of `rule` the server has records of.
fn instances(site: &Site, rule: &str) -> usize {
    let records = tally_json_at(&site.url, &site.token, &["usage", "--rule", rule]);
    common::by_instance(records.as_array().unwrap()).len()
}

/// Runs the site's program `times` times for `seconds` each, one after another.
fn run_program(site: &Site, times: usize, seconds: &str) {
    for _ in 0..times {
        assert!(Command::new(&site.program)
            .arg(seconds)
            .status()
            .unwrap()
            .success());
    }
}

/// Case: the agent's spool is on a disk that fills up while the server is unreachable. The
/// agent keeps running; the records it could not write are counted and reported as dropped
/// once it can write and reach the server again, so every run is either stored or counted.
#[test]
fn agent_spool_on_a_full_disk_counts_what_it_drops() {
    if !root_or_skip("agent_spool_on_a_full_disk_counts_what_it_drops") {
        return;
    }
    const RUNS: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let mut site = Site::new(dir.path(), "FullDisk");
    let state = dir.path().join("state");
    let disk = Tmpfs::mount(&state, "2m");
    let log = dir.path().join("agent.log");
    let mut agent = agent(&site, &state, &log);
    wait_for(&state.join("agent.json"));
    started(&log, 1);
    // One run stored first: the agent meters, and its policy is in place.
    run_program(&site, 1, "0.3");
    site.records_until("FullDisk", |r| !r.is_empty());

    let port: u16 = site.url.rsplit(':').next().unwrap().parse().unwrap();
    common::stop(site.server.take().unwrap());
    let filler = disk.fill();
    run_program(&site, RUNS, "0.2");
    // A few checkpoints on the full disk.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        agent.0.try_wait().unwrap().is_none(),
        "the agent stopped on a full disk: {}",
        std::fs::read_to_string(&log).unwrap()
    );

    std::fs::remove_file(filler).unwrap();
    let (server, _) = common::server(&dir.path().join("server"), port);
    site.server = Some(server);
    let deadline = Instant::now() + Duration::from_secs(90);
    let (stored, lost) = loop {
        let (stored, lost) = (instances(&site, "FullDisk") - 1, dropped(&site));
        if stored + lost as usize >= RUNS || Instant::now() > deadline {
            break (stored, lost);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        lost > 0,
        "nothing counted as dropped; the agent said:\n{text}"
    );
    assert!(
        stored + lost as usize >= RUNS,
        "{stored} runs stored and {lost} records counted as dropped of {RUNS} runs:\n{text}"
    );
    assert!(text.contains("disk is full"), "the agent says why: {text}");
}

/// Case: the agent starts on a damaged spool file. It moves the file aside (keeping it for
/// inspection), says so and where, starts a new spool and meters on.
#[test]
fn agent_with_a_corrupt_spool_moves_it_aside_and_meters_on() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path(), "Damaged");
    let state = dir.path().join("state");
    let log = dir.path().join("agent.log");
    let first = agent(&site, &state, &log);
    wait_for(&state.join("agent.json"));
    started(&log, 1);
    run_program(&site, 1, "0.3");
    site.records_until("Damaged", common::ended);
    first.stop();

    // Everything into the main file, then its pages after the schema scribbled over.
    let spool = state.join("spool.db");
    checkpoint(&spool);
    let mut bytes = std::fs::read(&spool).unwrap();
    assert!(bytes.len() > 3 * 4096, "the spool has pages to damage");
    bytes[4096..].fill(0x5A);
    std::fs::write(&spool, &bytes).unwrap();

    let mut second = agent(&site, &state, &log);
    started(&log, 2);
    run_program(&site, 1, "0.3");
    let deadline = Instant::now() + Duration::from_secs(30);
    while instances(&site, "Damaged") < 2 && Instant::now() < deadline {
        assert!(
            second.0.try_wait().unwrap().is_none(),
            "the agent stopped: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(instances(&site, "Damaged"), 2, "it meters on:\n{text}");
    let aside = tally_agent::spool::set_aside_copies(&state.join("spool.db"));
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), bytes, "kept as it was");
    let name = aside[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        text.contains("moved aside") && text.contains(&name),
        "{text}"
    );
    drop(second);
}

/// Folds a SQLite file's WAL into it and removes the WAL.
fn checkpoint(path: &Path) {
    let url = format!("sqlite://{}", path.display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        });
}
