//! License certificates end to end on a real server (SQLite and PostgreSQL): an issuer key is
//! made and a certificate signed with the CLI, the issuer trusted, certificates imported and
//! listed, and the licenses and positions they yield read back; every refusal (unknown
//! issuer, bad signature, malformed, duplicate) names itself and stores nothing.

mod common;

use common::json::entry;
use common::{
    assert_ok, assert_stderr_has, audit_actions, keygen, server_on, sign, tally, tally_json,
    Backend, Running,
};

each_backend!(
    certificates_are_signed_trusted_imported_and_back_their_licenses,
    refused_certificates_say_which_and_why_and_store_nothing,
);

fn listed(server: &Running) -> Vec<serde_json::Value> {
    let list = tally_json(server, &server.token, &["certificates", "list"]);
    list.as_array().unwrap().clone()
}

fn licenses(server: &Running) -> Vec<serde_json::Value> {
    let list = tally_json(server, &server.token, &["licenses"]);
    list.as_array().unwrap().clone()
}

fn certificates_are_signed_trusted_imported_and_back_their_licenses(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let t = &server.token;
    let (public, secret) = keygen(dir.path(), "Tally Vendor", "vendor");
    let office = sign(
        dir.path(),
        &secret,
        ("Office", "installations", "5", "2026-01-01", "", "OFF-1"),
    );
    let chat = sign(
        dir.path(),
        &secret,
        ("Chat", "users", "3", "2024-01-01", "2025-01-01", "CHAT-1"),
    );
    assert_ok(&tally(&server, t, &["certificates", "trust", &public]));
    let out = tally(&server, t, &["certificates", "import", &office, &chat]);
    assert_ok(&out);
    let table = String::from_utf8_lossy(&out.stdout);
    for column in ["CUSTOMER", "PRODUCT", "COUNT", "CREATED", "EXPIRES", "KEY"] {
        assert!(table.contains(column), "{column} in {table}");
    }
    assert!(table.contains("2025-01-01 (expired)"), "{table}");

    let certs = listed(&server);
    assert_eq!(certs.len(), 2);
    let chat_cert = certs.iter().find(|c| c["key"] == "CHAT-1").unwrap();
    assert_eq!(chat_cert["expired"], true);
    assert_eq!(chat_cert["customer"], "Contoso Ltd");
    let office_cert = certs.iter().find(|c| c["key"] == "OFF-1").unwrap();
    assert_eq!(office_cert["expired"], false);
    assert_eq!(office_cert["expires"], serde_json::Value::Null);
    assert!(office_cert["license"]
        .as_str()
        .unwrap()
        .contains("Office, 5 installations"));

    // Each certificate registered its license, marked as backed by it.
    let all = licenses(&server);
    assert_eq!(all.len(), 2);
    let office_license = all.iter().find(|l| l["application"] == "Office").unwrap();
    assert_eq!(office_license["quantity"], 5);
    assert_eq!(office_license["order_reference"], "certificate OFF-1");
    assert_eq!(office_license["valid_from"], "2026-01-01");
    assert_eq!(office_license["vendor"], "Tally Vendor");
    let chat_license = all.iter().find(|l| l["application"] == "Chat").unwrap();
    assert_eq!(chat_license["valid_until"], "2025-01-01");

    // The expired certificate's license shows as expired in the position.
    let positions = tally_json(&server, t, &["compliance"]);
    let chat_position = entry(&positions, "application", "Chat");
    assert_eq!(chat_position["owned"], 0, "{chat_position}");
    assert!(
        chat_position["reason"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{chat_position}"
    );
    let office_position = entry(&positions, "application", "Office");
    assert_eq!(office_position["owned"], 5, "{office_position}");

    // A license typed by hand with the certificate's reference is updated, not doubled.
    let out = tally(
        &server,
        t,
        &[
            "licenses",
            "add",
            "--app",
            "Office",
            "--metric",
            "installations",
            "--quantity",
            "1",
            "--assignment",
            "organization",
            "--order-reference",
            "certificate OFF-2",
        ],
    );
    assert_ok(&out);
    let renewal = sign(
        dir.path(),
        &secret,
        (
            "Office",
            "installations",
            "7",
            "2026-06-01",
            "2027-05-31",
            "OFF-2",
        ),
    );
    assert_ok(&tally(&server, t, &["certificates", "import", &renewal]));
    let all = licenses(&server);
    assert_eq!(
        all.len(),
        3,
        "the hand-typed license was updated, not a fourth added"
    );
    let updated = all
        .iter()
        .find(|l| l["order_reference"] == "certificate OFF-2")
        .unwrap();
    assert_eq!(
        (
            updated["quantity"].as_i64(),
            updated["valid_until"].as_str()
        ),
        (Some(7), Some("2027-05-31"))
    );
    let actions = audit_actions(&server);
    assert!(
        actions.contains(&"certificate.trust".to_string()),
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "certificate.import")
            .count(),
        3
    );
}

fn refused_certificates_say_which_and_why_and_store_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let t = &server.token;
    let (public, secret) = keygen(dir.path(), "Tally Vendor", "vendor");
    let (_, stranger) = keygen(dir.path(), "Tally Vendor", "stranger");
    let (_, unknown) = keygen(dir.path(), "Nobody Inc", "nobody");
    let good = sign(
        dir.path(),
        &secret,
        ("Office", "installations", "5", "2026-01-01", "", "OFF-1"),
    );

    // Unknown issuer: nothing is trusted yet.
    let out = tally(&server, t, &["certificates", "import", &good]);
    assert_stderr_has(&out, "unknown issuer \"Tally Vendor\"");
    assert_ok(&tally(&server, t, &["certificates", "trust", &public]));
    let out = tally(&server, t, &["certificates", "trust", &public]);
    assert_stderr_has(&out, "trusted already");
    let by_nobody = sign(
        dir.path(),
        &unknown,
        ("Office", "installations", "5", "2026-01-01", "", "NOB-1"),
    );
    assert_stderr_has(
        &tally(&server, t, &["certificates", "import", &by_nobody]),
        "unknown issuer \"Nobody Inc\"",
    );

    // Bad signature: a count changed after signing, and a certificate signed by another key
    // under the trusted issuer's name.
    let text = std::fs::read_to_string(&good).unwrap();
    let tampered = dir.path().join("tampered.cert");
    std::fs::write(&tampered, text.replace("count: 5", "count: 500")).unwrap();
    let out = tally(
        &server,
        t,
        &["certificates", "import", tampered.to_str().unwrap()],
    );
    assert_stderr_has(&out, "tampered.cert: signature: bad signature");
    let forged = sign(
        dir.path(),
        &stranger,
        ("Office", "installations", "9", "2026-01-01", "", "OFF-9"),
    );
    assert_stderr_has(
        &tally(&server, t, &["certificates", "import", &forged]),
        "bad signature",
    );

    // Malformed: FILE:LINE: field: reason.
    let malformed = dir.path().join("malformed.cert");
    std::fs::write(
        &malformed,
        text.replace("created: 2026-01-01", "created: 1 Jan 2026"),
    )
    .unwrap();
    let out = tally(
        &server,
        t,
        &["certificates", "import", malformed.to_str().unwrap()],
    );
    assert_stderr_has(
        &out,
        "malformed.cert:5: created: \"1 Jan 2026\" is not a day",
    );
    std::fs::write(&malformed, "hello\n").unwrap();
    let out = tally(
        &server,
        t,
        &["certificates", "import", malformed.to_str().unwrap()],
    );
    assert_stderr_has(&out, "malformed.cert:1: header");

    // None of it stored anything.
    assert!(listed(&server).is_empty());
    assert!(licenses(&server).is_empty());

    // Duplicate key: the second import of a key is refused, also alongside a good file,
    // which is then not stored either.
    assert_ok(&tally(&server, t, &["certificates", "import", &good]));
    let fresh = sign(
        dir.path(),
        &secret,
        ("Chat", "users", "3", "2026-01-01", "", "CHAT-1"),
    );
    let out = tally(&server, t, &["certificates", "import", &fresh, &good]);
    assert_stderr_has(
        &out,
        "key: duplicate key: certificate OFF-1 was imported on",
    );
    let out = tally(&server, t, &["certificates", "import", &fresh, &fresh]);
    assert_stderr_has(&out, "given twice");
    let keys: Vec<String> = listed(&server)
        .iter()
        .map(|c| c["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["OFF-1"]);
    assert_eq!(licenses(&server).len(), 1);
}
