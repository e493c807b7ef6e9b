//! The system-metering report (seed 003) on a real server, SQLite and PostgreSQL: its figures
//! on a seeded estate (statuses in and out of relevance, service users by each indication and
//! an admin override, deleted users, mobile devices, operators), in all three formats (the
//! DAT's signature verified and a tampered DAT refused, the HTML read, the PDF through
//! pdftotext), with no name of the estate in any file; the alias from each of its sources; the
//! upload against a receiver of the test's own, up, down, then up; and the certificates fed
//! back as installations and compare values.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::json::entry;
use common::{
    assert_ok, assert_stderr_has, import, keygen, local, poll_until, server_with_flags, sign,
    tally, tally_json, write, Backend, Running,
};

each_backend!(
    the_report_measures_the_estate_in_three_formats_signed_and_without_names,
    the_alias_comes_from_each_of_its_three_sources,
    uploads_are_kept_readable_sent_and_retried_when_the_endpoint_is_down,
    certificates_become_installations_and_the_result_sets_compare_values,
);

/// A certificate of Tally's own: ten devices, measured by the metering.
const DEVICES_CERT: (&str, &str, &str, &str, &str, &str) = (
    "Tally Devices",
    "metered_devices",
    "10",
    "2026-01-01",
    "",
    "TD-1",
);

/// Names that must never appear in a metering file.
const NAMES: &[&str] = &[
    "pc-alpha",
    "pc-bravo",
    "phone-charlie",
    "pc-delta",
    "pc-echo",
    "pc-foxtrot",
    "phone-golf",
    "anna.person",
    "Anna Person",
    "bert.builder",
    "Bert Builder",
    "svc-backup",
    "carl.classified",
    "Carl Classified",
    "dora.deleted",
    "Dora Deleted",
    "ivan.inactive",
    "Ivan Inactive",
    "viewer-token",
    "retired-admin",
];

fn config(dir: &Path, lines: &str) -> String {
    write(dir, "tally.toml", lines)
}

fn start(dir: &Path, backend: &Backend, toml: &str) -> Running {
    let path = config(dir, toml);
    server_with_flags(dir, backend, &["--config", &path])
}

/// Devices in every status (two of them mobile), users of every kind, operators of each sort.
fn seed_estate(dir: &Path, backend: &Backend, server: &Running) {
    let files = vec![
        write(
            dir,
            "devices.csv",
            "host_name,status,management_type\n\
             pc-alpha,active,\npc-bravo,active,\nphone-charlie,active,mdm\npc-delta,in_stock,\n\
             pc-echo,retired,\npc-foxtrot,in_repair,\nphone-golf,retired,mdm\n",
        ),
        write(
            dir,
            "users.csv",
            "account,full_name,status,service_account,cannot_change_password\n\
             anna.person,Anna Person,active,,\n\
             bert.builder,Bert Builder,active,,true\n\
             svc-backup,,active,,\n\
             carl.classified,Carl Classified,active,true,\n\
             dora.deleted,Dora Deleted,deleted,,\n\
             ivan.inactive,Ivan Inactive,inactive,,\n",
        ),
    ];
    assert_ok(&import(dir, backend, &files, &[]));
    let t = &server.token;
    // The administrator says the nameless account is a person after all.
    assert_ok(&tally(
        server,
        t,
        &["users", "set", "svc-backup", "--service-account", "no"],
    ));
    // In stock counts for the help desk here; in repair counts for nothing.
    assert_ok(&tally(
        server,
        t,
        &["site", "relevance", "in_stock", "--help-desk", "true"],
    ));
    let out = tally(
        server,
        t,
        &[
            "site",
            "relevance",
            "in_repair",
            "--compliance",
            "false",
            "--end-of-life",
            "false",
            "--principal-user",
            "false",
            "--help-desk",
            "false",
        ],
    );
    assert_ok(&out);
    assert_ok(&tally(
        server,
        t,
        &["tokens", "create", "--name", "viewer-token"],
    ));
    let out = tally(
        server,
        t,
        &[
            "tokens",
            "create",
            "--name",
            "retired-admin",
            "--role",
            "admin",
            "--format",
            "json",
        ],
    );
    assert_ok(&out);
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created[0]["id"].as_i64().unwrap().to_string();
    assert_ok(&tally(server, t, &["tokens", "revoke", &id]));
}

/// `tally report system-metering`, asked again while the scheduled run holds the lock.
fn metering(server: &Running) -> serde_json::Value {
    let args = ["report", "system-metering", "--format", "json"];
    let out = poll_until(
        || tally(server, &server.token, &args),
        |out| !String::from_utf8_lossy(&out.stderr).contains("being written already"),
    );
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn file(run: &serde_json::Value, ext: &str) -> PathBuf {
    let name = format!("System_Metering_Report.{ext}");
    let found = run["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f.as_str().unwrap().ends_with(&name));
    PathBuf::from(found.unwrap().as_str().unwrap())
}

/// The PDF's text; every page must draw without a complaint from the reader, one section a
/// page or more.
fn pdf_text(path: &Path) -> String {
    let tool = |tool: &str, args: &[&str]| {
        let out = std::process::Command::new(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool} (poppler-utils) is needed: {e}"));
        assert!(
            out.status.success() && (tool != "pdftoppm" || out.stderr.is_empty()),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let file = path.to_str().unwrap();
    let pages = path.with_extension("page");
    tool(
        "pdftoppm",
        &["-r", "20", "-png", file, pages.to_str().unwrap()],
    );
    let info = tool("pdfinfo", &[file]);
    assert!(
        info.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Pages:", "5"]),
        "{info}"
    );
    tool("pdftotext", &["-layout", file, "-"])
}

/// Whether a line of `pdftotext -layout` output holds exactly these words.
fn pdf_has_row(pdf: &str, words: &str) -> bool {
    let want: Vec<&str> = words.split_whitespace().collect();
    pdf.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == want)
}

fn site_key(server: &Running) -> String {
    let out = tally(server, &server.token, &["site", "key"]);
    assert_ok(&out);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn dat_payload(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let payload = text.lines().next().unwrap();
    serde_json::from_str(payload).unwrap()
}

fn the_report_measures_the_estate_in_three_formats_signed_and_without_names(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &backend, "alias = \"Production\"\n");
    seed_estate(dir.path(), &backend, &server);
    let (public, secret) = keygen(dir.path(), "Tally Vendor", "vendor");
    let cert = sign(dir.path(), &secret, DEVICES_CERT);
    assert_ok(&tally(
        &server,
        &server.token,
        &["certificates", "trust", &public],
    ));
    assert_ok(&tally(
        &server,
        &server.token,
        &["certificates", "import", &cert],
    ));

    let run = metering(&server);
    let today = chrono::Utc::now().date_naive().to_string();
    let folder = run["folder"].as_str().unwrap();
    assert!(
        folder.ends_with(&format!("tally-data/metering/reports/{today}")),
        "{run}"
    );
    for ext in ["dat", "html", "pdf"] {
        assert!(file(&run, ext).exists(), "{ext}");
    }
    // In stock (1) and active (3) are relevant; in repair and retired are not.
    assert_eq!(run["devices"], 4, "{run}");
    // Anna, and the nameless account the admin calls a person; Bert cannot change his
    // password, Carl is classified a service account; deleted and inactive do not count.
    assert_eq!(run["users"], 2, "{run}");
    // The bootstrap admin; the auditor cannot write and the other admin is revoked.
    assert_eq!(run["operators"], 1, "{run}");

    // DAT: the figures, signed; verified with the site key; a tampered copy refused.
    let dat = file(&run, "dat");
    let payload = dat_payload(&dat);
    assert_eq!(payload["site"], "Production");
    assert_eq!(payload["relevant_devices"], 4);
    assert_eq!(payload["natural_persons"], 2);
    assert_eq!(payload["write_operators"], 1);
    assert_eq!(payload["metering_version"], 1);
    let lines: Vec<&serde_json::Value> = payload["devices"].as_array().unwrap().iter().collect();
    let line = |s: &str| (*lines.iter().find(|l| l["status"] == s).unwrap()).clone();
    assert_eq!(
        (
            line("active")["devices"].as_i64(),
            line("active")["mobile"].as_i64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(line("in_stock")["relevant"], true);
    assert_eq!(line("in_repair")["relevant"], false);
    assert_eq!(
        (
            line("retired")["devices"].as_i64(),
            line("retired")["mobile"].as_i64()
        ),
        (Some(2), Some(1))
    );
    let users: Vec<&serde_json::Value> = payload["users"].as_array().unwrap().iter().collect();
    let active = users.iter().find(|u| u["status"] == "active").unwrap();
    assert_eq!(
        (
            active["natural_persons"].as_i64(),
            active["service_users"].as_i64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(payload["certificates"][0]["key"], "TD-1");
    assert!(payload["caution"]
        .as_str()
        .unwrap()
        .contains("aid to assessing licensing"));
    let key = site_key(&server);
    let verified = local(&[
        "certificates",
        "verify-report",
        dat.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_ok(&verified);
    assert!(String::from_utf8_lossy(&verified.stdout).contains("verified"));
    let tampered = dir.path().join("tampered.dat");
    let text = std::fs::read_to_string(&dat).unwrap();
    std::fs::write(
        &tampered,
        text.replace("\"relevant_devices\":4", "\"relevant_devices\":1"),
    )
    .unwrap();
    let refused = local(&[
        "certificates",
        "verify-report",
        tampered.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(!refused.status.success());
    assert_stderr_has(&refused, "refused: the signature does not match");

    // HTML and PDF: the same figures and sections.
    let html = std::fs::read_to_string(file(&run, "html")).unwrap();
    let read_pdf = common::needs_poppler("the system-metering PDF read-backs");
    let pdf = match read_pdf {
        true => pdf_text(&file(&run, "pdf")),
        false => String::new(),
    };
    let texts = if read_pdf {
        vec![&html, &pdf]
    } else {
        vec![&html]
    };
    for text in texts {
        for want in [
            "Production",
            "Installed certificates",
            "Device overview",
            "User overview",
            "Operator overview",
            "Devices in relevant statuses",
            "Contoso Ltd",
            "TD-1",
            "Metering version",
            "indications",
        ] {
            assert!(text.contains(want), "{want} missing");
        }
    }
    assert!(
        html.contains("<td>in_stock</td><td>yes</td><td>help desk</td><td class=\"num\">1</td>"),
        "{html}"
    );
    assert!(
        html.contains(
            "<td>active</td><td>yes</td><td class=\"num\">2</td><td class=\"num\">2</td>"
        ),
        "{html}"
    );
    // The PDF's rows, read back as words: the summary's figures and the overviews' lines.
    for row in [
        "Devices in relevant statuses 4",
        "Natural persons in relevant statuses 2",
        "Operators with write access 1",
        "in_stock yes help desk 1 0",
        "active yes compliance, end of life, principal user, help desk 3 1",
        "in_repair no none 1 0",
        "retired no none 2 1",
        "deleted no 1 0",
        "Contoso Ltd Tally Devices 10 2026-01-01 TD-1",
    ] {
        assert!(!read_pdf || pdf_has_row(&pdf, row), "{row} in {pdf}");
    }

    // No personal data: no name of the estate, nor this machine's, in any of the three.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for (what, text) in [("dat", &text), ("html", &html), ("pdf", &pdf)] {
        for name in NAMES.iter().chain([&host.trim()]) {
            assert!(!text.contains(name), "{what} names {name}");
        }
    }
    // The task is there, monthly by default.
    let tasks = tally_json(&server, &server.token, &["tasks"]);
    let task = entry(&tasks, "name", "system_metering");
    assert_eq!(task["every_secs"], 30 * 24 * 3600, "{task}");
}

fn report_site(server: &Running) -> String {
    let out = tally(
        server,
        &server.token,
        &["report", "tasks", "--format", "json", "--out", "-"],
    );
    assert_ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["site"].as_str().unwrap().to_string()
}

fn the_alias_comes_from_each_of_its_three_sources(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &backend,
        "alias = \"Production\"\nsite_name = \"db-host-17.corp.example\"\n",
    );
    let t = &server.token;
    let site = tally_json(&server, t, &["site"]);
    assert_eq!(
        (site[0]["alias"].as_str(), site[0]["alias_source"].as_str()),
        (Some("Production"), Some("configuration"))
    );
    assert_eq!(report_site(&server), "Production");
    assert_eq!(
        dat_payload(&file(&metering(&server), "dat"))["site"],
        "Production"
    );

    assert_ok(&tally(&server, t, &["site", "set", "--alias", "Staging"]));
    let site = tally_json(&server, t, &["site"]);
    assert_eq!(site[0]["alias_source"], "tally site set");
    assert_eq!(report_site(&server), "Staging");
    assert_eq!(
        dat_payload(&file(&metering(&server), "dat"))["site"],
        "Staging"
    );

    let alias_file = dir.path().join("tally-data/metering/serveralias.txt");
    std::fs::write(&alias_file, "Dev\n").unwrap();
    let site = tally_json(&server, t, &["site"]);
    assert_eq!(
        (site[0]["alias"].as_str(), site[0]["alias_source"].as_str()),
        (Some("Dev"), Some("serveralias.txt"))
    );
    assert_eq!(report_site(&server), "Dev");
    let run = metering(&server);
    let html = std::fs::read_to_string(file(&run, "html")).unwrap();
    assert!(html.contains("<div class=\"site\">Dev</div>"), "{html}");
    assert!(!html.contains("db-host-17"), "the server's name stays out");

    // Without any alias, reports fall back to the site's name; the metering to its code.
    std::fs::remove_file(&alias_file).unwrap();
    assert_ok(&tally(&server, t, &["site", "set", "--alias", ""]));
    assert_eq!(
        tally_json(&server, t, &["site"])[0]["alias_source"],
        "configuration"
    );
    let refused = tally(&server, t, &["site", "set", "--alias", &"x".repeat(300)]);
    assert_stderr_has(&refused, "alias: at most 255 characters");
}

/// A receiver of uploads on loopback: each body it took, while it is up.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl Receiver {
    fn up(port: u16, bodies: Arc<Mutex<Vec<String>>>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = std::sync::mpsc::channel();
        let got = bodies.clone();
        std::thread::spawn(move || loop {
            if stopped.try_recv().is_ok() {
                return;
            }
            match listener.accept() {
                Ok((stream, _)) => take(stream, &got),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        });
        Self {
            port,
            bodies,
            stop: Some(stop),
        }
    }

    fn down(mut self) -> (u16, Arc<Mutex<Vec<String>>>) {
        let _ = self.stop.take().unwrap().send(());
        std::thread::sleep(std::time::Duration::from_millis(200));
        (self.port, self.bodies.clone())
    }
}

/// Reads one HTTP request and answers 204.
fn take(stream: std::net::TcpStream, got: &Mutex<Vec<String>>) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    got.lock().unwrap().push(String::from_utf8(body).unwrap());
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .unwrap();
}

/// Whether the scheduled system_metering task has run.
fn scheduled_ran(tasks: &serde_json::Value) -> bool {
    let task = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "system_metering");
    task.is_some_and(|t| !t["last_run_at"].is_null())
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn uploads_are_kept_readable_sent_and_retried_when_the_endpoint_is_down(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::up(0, bodies.clone());
    let url = format!("http://127.0.0.1:{}/upload", receiver.port);
    let server = start(
        dir.path(),
        &backend,
        &format!("metering_upload_url = \"{url}\"\n"),
    );
    // The scheduler's first run (every task runs at the first start) is done first.
    poll_until(
        || tally_json(&server, &server.token, &["tasks"]),
        scheduled_ran,
    );
    let metering_dir = dir.path().join("tally-data/metering");
    let (outbox, sent) = (metering_dir.join("outbox"), metering_dir.join("sent"));
    let key = site_key(&server);

    // Up: sent, and kept readable in sent/.
    let run = metering(&server);
    assert!(run["upload_error"].is_null(), "{run}");
    assert!(files_in(&outbox).is_empty());
    let received = bodies.lock().unwrap().len();
    assert!(received >= 1);
    assert_eq!(
        files_in(&sent).len(),
        received,
        "every payload sent is kept"
    );

    // Down: the local copy stands, waiting readable in the outbox.
    let (port, bodies) = receiver.down();
    let run = metering(&server);
    assert!(
        run["upload_error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{run}"
    );
    let waiting = files_in(&outbox);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let kept = std::fs::read_to_string(outbox.join(&waiting[0])).unwrap();
    assert!(
        kept.starts_with("{\"format\":\"tally-system-metering\""),
        "{kept}"
    );
    assert_eq!(bodies.lock().unwrap().len(), received);
    assert!(
        file(&run, "dat").exists(),
        "the report is written whatever the upload does"
    );

    // Up again: the waiting one is retried, then the new one.
    let _receiver = Receiver::up(port, bodies.clone());
    let run = metering(&server);
    assert!(run["upload_error"].is_null(), "{run}");
    assert_eq!(run["uploaded"].as_array().unwrap().len(), 2, "{run}");
    assert!(files_in(&outbox).is_empty());
    let all = bodies.lock().unwrap().clone();
    assert_eq!(all.len(), received + 2);
    assert_eq!(
        all[received], kept,
        "the payload kept is exactly what was sent"
    );
    for body in &all {
        let path = dir.path().join("received.dat");
        std::fs::write(&path, body).unwrap();
        assert_ok(&local(&[
            "certificates",
            "verify-report",
            path.to_str().unwrap(),
            "--key",
            &key,
        ]));
    }
}

fn certificates_become_installations_and_the_result_sets_compare_values(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &backend, "");
    seed_estate(dir.path(), &backend, &server);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let own = write(
        dir.path(),
        "own_devices.csv",
        &format!("host_name,status\n{host},active\n"),
    );
    assert_ok(&import(dir.path(), &backend, &[own], &[]));
    let (public, secret) = keygen(dir.path(), "Tally Vendor", "vendor");
    let certs: Vec<String> = [
        DEVICES_CERT,
        (
            "Tally Users",
            "metered_users",
            "1",
            "2026-01-01",
            "",
            "TU-1",
        ),
        (
            "Tally Operators",
            "metered_operators",
            "5",
            "2026-01-01",
            "",
            "TO-1",
        ),
    ]
    .into_iter()
    .map(|c| sign(dir.path(), &secret, c))
    .collect();
    let t = &server.token;
    assert_ok(&tally(&server, t, &["certificates", "trust", &public]));
    let mut args = vec!["certificates", "import"];
    args.extend(certs.iter().map(String::as_str));
    assert_ok(&tally(&server, t, &args));

    // Each certificate's fingerprint is an installation on the server's own device.
    let inventory = tally_json(&server, t, &["devices", "--inventory", &host]);
    let titles = inventory.to_string();
    for title in [
        "Tally Devices license certificate TD-1",
        "Tally Users license certificate TU-1",
    ] {
        assert!(titles.contains(title), "{title} in {titles}");
    }
    // The application recognises it.
    let apps = tally_json(&server, t, &["apps"]);
    let app = entry(&apps, "name", "Tally Devices");
    assert_eq!(app["metric"], "custom_compare_values");
    assert!(
        app.to_string()
            .contains("Tally Devices license certificate *"),
        "{app}"
    );

    let run = metering(&server);
    // 4 relevant devices, and the server's own (active): 5.
    assert_eq!(run["devices"], 5, "{run}");
    let positions = tally_json(&server, t, &["compliance"]);
    let position = |name: &str| entry(&positions, "application", name).clone();
    let devices = position("Tally Devices");
    assert_eq!(
        (devices["required"].as_i64(), devices["owned"].as_i64()),
        (Some(5), Some(10)),
        "{devices}"
    );
    let users = position("Tally Users");
    assert_eq!(
        (users["required"].as_i64(), users["shortfall"].as_i64()),
        (Some(2), Some(1)),
        "{users}"
    );
    let operators = position("Tally Operators");
    assert_eq!(operators["required"], 1, "{operators}");
    let values = &run["compare_values"];
    let users = serde_json::json!({"application": "Tally Users", "quantity": 2});
    assert!(values.as_array().unwrap().contains(&users), "{values}");
}
