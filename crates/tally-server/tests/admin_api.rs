//! The admin API over HTTP: operator tokens and roles, rules, filters, audit log.

mod common;

use common::json::{assert_message_has, strings};
use common::{start, Backend};
use reqwest::Method;
use serde_json::json;

each_backend!(async
    tokens_roles_and_revocation,
    rules_are_validated_edited_and_audited,
    rule_names_are_unique_per_site_in_any_case,
    usage_filters_and_paging,
    every_served_route_is_in_the_openapi_document_with_its_errors,
);

async fn tokens_roles_and_revocation(backend: Backend) {
    let s = start(backend).await;
    let (status, _) = s
        .post_as_auditor("/api/v1/tokens", json!({"name": "x", "role": "admin"}))
        .await;
    assert_eq!(status, 403, "an auditor cannot create tokens");
    let (status, created) = s
        .post_as_admin("/api/v1/tokens", json!({"name": "ci", "role": "auditor"}))
        .await;
    assert_eq!(status, 201);
    let token = created["token"].as_str().unwrap().to_string();
    let (status, me) = s.get("/api/v1/whoami", &token).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("ci")));
    let (status, body) = s
        .post_as_admin("/api/v1/tokens", json!({"name": "x", "role": "root"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/tokens/{id}");
    assert_eq!(
        s.call(Method::DELETE, &path, Some(&s.admin), None).await.0,
        204
    );
    assert_eq!(s.get("/api/v1/whoami", &token).await.0, 401, "revoked");
    assert_eq!(
        s.call(Method::DELETE, &path, Some(&s.admin), None).await.0,
        404
    );
    let (_, list) = s.get("/api/v1/tokens", &s.auditor).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
}

async fn rules_are_validated_edited_and_audited(backend: Backend) {
    let s = start(backend).await;
    let (status, body) = s
        .post_as_admin("/api/v1/rules", json!({"name": "Nothing"}))
        .await;
    assert_eq!(status, 400);
    assert_message_has(&body, "file name");
    let (status, _) = s
        .post_as_admin("/api/v1/rules", json!({"name": "Wild", "file_name": "co*"}))
        .await;
    assert_eq!(status, 400, "no wildcards in file names");
    let editor = json!({"name": "Editor", "file_name": "code", "file_version": "1.*", "product_name": "Code"});
    assert_eq!(
        s.post_as_auditor("/api/v1/rules", editor.clone()).await.0,
        403
    );
    let (status, rule) = s.post_as_admin("/api/v1/rules", editor).await;
    assert_eq!(status, 201);
    assert_eq!(rule["site_code"], "S01");
    assert_eq!(rule["origin"], "manual");
    assert_eq!(
        rule["apply_to_child_sites"], false,
        "seed 000: own site only by default"
    );
    let id = rule["id"].as_i64().unwrap();
    let path = format!("/api/v1/rules/{id}");
    let mut edited = rule.clone();
    edited["enabled"] = json!(false);
    for k in ["id", "site_code", "origin", "updated_at"] {
        edited.as_object_mut().unwrap().remove(k);
    }
    let (status, updated) = s
        .call(Method::PUT, &path, Some(&s.admin), Some(edited.clone()))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["enabled"], false);
    assert_eq!(
        s.call(
            Method::PUT,
            "/api/v1/rules/999",
            Some(&s.admin),
            Some(edited)
        )
        .await
        .0,
        404
    );
    assert_eq!(s.get(&path, &s.auditor).await.1["enabled"], false);
    assert_eq!(
        s.call(Method::DELETE, &path, Some(&s.admin), None).await.0,
        204
    );
    assert_eq!(s.get(&path, &s.admin).await.0, 404);

    let (_, log) = s.get("/api/v1/audit", &s.auditor).await;
    let actions = strings(&log, "action");
    assert_eq!(actions, ["rule.create", "rule.update", "rule.delete"]);
    assert_eq!(log[0]["actor"], "admin");
    assert_eq!(log[0]["target"], format!("rule:{id}"));
}

/// `rules add --name Snoozer` twice made two rules one name finds (and `rules disable Snoozer`
/// then acted on one of them): a taken name, in any case, is refused with 409 naming the rule
/// that has it, on create and on rename, and nothing is stored.
async fn rule_names_are_unique_per_site_in_any_case(backend: Backend) {
    let s = start(backend).await;
    let snoozer = json!({"name": "Snoozer", "file_name": "snooze"});
    let (status, first) = s.post_as_admin("/api/v1/rules", snoozer).await;
    assert_eq!(status, 201, "{first}");
    let again = json!({"name": "SNOOZER", "file_name": "snooze2"});
    let (status, body) = s.post_as_admin("/api/v1/rules", again).await;
    assert_eq!(status, 409, "{body}");
    let message = body["message"].as_str().unwrap();
    let id = first["id"].as_i64().unwrap();
    assert!(
        message.contains(&format!("rule {id} (\"Snoozer\"")) && message.contains("unique"),
        "{message}"
    );
    let (_, rules) = s.get("/api/v1/rules", &s.auditor).await;
    assert_eq!(strings(&rules, "name"), ["Snoozer"], "nothing stored");

    // Renaming another rule to the name is refused too; keeping one's own name is not.
    let other = json!({"name": "Other", "file_name": "other"});
    let (status, other) = s.post_as_admin("/api/v1/rules", other).await;
    assert_eq!(status, 201);
    let path = format!("/api/v1/rules/{}", other["id"]);
    let renamed = json!({"name": "snoozer", "file_name": "other"});
    let (status, body) = s
        .call(Method::PUT, &path, Some(&s.admin), Some(renamed))
        .await;
    assert_eq!(status, 409, "{body}");
    let path = format!("/api/v1/rules/{id}");
    let same = json!({"name": "Snoozer", "file_name": "snooze", "enabled": false});
    let (status, body) = s.call(Method::PUT, &path, Some(&s.admin), Some(same)).await;
    assert_eq!(status, 200, "{body}");
    let (_, rules) = s.get("/api/v1/rules", &s.auditor).await;
    assert_eq!(strings(&rules, "name"), ["Snoozer", "Other"]);
}

async fn usage_filters_and_paging(backend: Backend) {
    let s = start(backend).await;
    let (creds, _) = s.enroll("pc1").await;
    let rec = |id: &str, file: &str, day: u32| {
        json!({
            "meter_data_id": id,
            "file": {"file_name": file, "original_file_name": file, "version": "1.0",
                     "product_name": "", "publisher": "", "language": 65535},
            "user": {"account": "bob"},
            "start_time": format!("2026-05-{day:02}T10:00:00Z"), "start_time_offset": 0,
            "end_time": format!("2026-05-{day:02}T10:05:00Z"), "end_time_offset": 0,
            "started": true, "still_running": false,
            "start_not_captured": false, "end_not_captured": false, "in_ts_session": true
        })
    };
    let records: Vec<_> = (1..=6)
        .map(|d| rec(&format!("m{d}"), if d % 2 == 0 { "code" } else { "vim" }, d))
        .collect();
    let (status, _) = s
        .post(
            "/api/v1/agent/usage",
            Some(&creds),
            json!({"batch_id": "b", "records": records}),
        )
        .await;
    assert_eq!(status, 200);
    s.post(
        "/api/v1/rules",
        Some(&s.admin),
        json!({"name": "Editor", "file_name": "CODE"}),
    )
    .await;
    let (_, by_rule) = s.get("/api/v1/usage?rule=editor", &s.auditor).await;
    assert_eq!(
        by_rule.as_array().unwrap().len(),
        3,
        "rule names and file names ignore case"
    );
    let (_, since) = s.get("/api/v1/usage?since=2026-05-05", &s.auditor).await;
    assert_eq!(since.as_array().unwrap().len(), 2);
    let (_, runs) = s
        .get("/api/v1/runs?rule=Editor&since=2026-05-03", &s.auditor)
        .await;
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert_eq!(runs[0]["in_ts_session"], true);
    let (_, page1) = s.get("/api/v1/usage?limit=4", &s.auditor).await;
    let last = page1[3]["id"].as_i64().unwrap();
    let (_, page2) = s
        .get(&format!("/api/v1/usage?limit=4&after={last}"), &s.auditor)
        .await;
    assert_eq!(
        (
            page1.as_array().unwrap().len(),
            page2.as_array().unwrap().len()
        ),
        (4, 2)
    );
    assert_eq!(s.get("/api/v1/usage?rule=nope", &s.auditor).await.0, 404);
    assert_eq!(
        s.get("/api/v1/usage?since=yesterday", &s.auditor).await.0,
        400
    );
    assert_eq!(s.get("/api/v1/devices?limit=0", &s.auditor).await.0, 400);
    let (_, devices) = s.get("/api/v1/devices", &s.auditor).await;
    assert_eq!(devices[0]["host_name"], "pc1");
}

async fn every_served_route_is_in_the_openapi_document_with_its_errors(backend: Backend) {
    let s = start(backend).await;
    let (_, doc) = s.get("/api/v1/openapi.json", &s.admin).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths", paths.len());
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2') || k == "304"),
                "{method} {path}"
            );
            if op.get("security").is_some() {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} lacks its 401"
                );
            }
        }
    }
}
