//! The typed client (`tally_api::Client`) against a real server, and the served OpenAPI
//! document against the snapshot taken before the API types moved to `tally-api`.

mod common;

use common::{start, Backend};
use serde_json::Value;
use tally_api::{Client, ClientError, CreateToken, Placement, TaskChange};
use tally_core::rules::RuleSpec;
use tally_core::Role;

each_backend!(async
    the_typed_client_creates_reads_back_and_gets_typed_refusals,
    the_typed_client_speaks_for_tokens_tasks_and_the_org_tree,
    the_served_openapi_document_is_the_snapshot_taken_before_the_types_moved,
);

fn spec(name: &str, file_name: &str) -> RuleSpec {
    RuleSpec {
        file_name: file_name.into(),
        file_version: "1.*".into(),
        comment: "from the typed client".into(),
        ..RuleSpec::named(name)
    }
}

/// The status and code of a refusal; panics on any other outcome.
fn refusal<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (u16, String, String) {
    match result {
        Err(e @ ClientError::Api { .. }) => (
            e.status().unwrap().as_u16(),
            e.code().unwrap_or_default().to_string(),
            e.to_string(),
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn the_typed_client_creates_reads_back_and_gets_typed_refusals(backend: Backend) {
    let s = start(backend).await;
    let admin = Client::new(&s.url, Some(s.admin.clone()), None).unwrap();
    let created = admin.create_rule(&spec("Editor", "code")).await.unwrap();
    assert_eq!(created.spec, spec("Editor", "code"));
    assert_eq!(created.site_code.as_str(), "S01");
    assert_eq!(admin.rule(created.id).await.unwrap(), created);
    assert_eq!(admin.rules().await.unwrap(), vec![created.clone()]);

    let mut disabled = created.spec.clone();
    disabled.enabled = false;
    let updated = admin.update_rule(created.id, &disabled).await.unwrap();
    assert!(!updated.spec.enabled);

    // 404: the server's code and message, and the CLI's `status: message` text.
    let (status, code, text) = refusal(admin.rule(created.id + 100).await);
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert_eq!(
        text,
        format!(
            "404 Not Found: no rule {}; see tally rules list",
            created.id + 100
        )
    );
    // 400 from the server's validation.
    let (status, code, text) = refusal(admin.create_rule(&spec("Bad", "")).await);
    assert_eq!((status, code.as_str()), (400, "bad_request"), "{text}");

    // 409: a task already running is not started again.
    let lock = s.store.lock_task("delete_aged_usage").await.unwrap();
    let (status, code, text) = refusal(admin.run_task("delete_aged_usage").await);
    assert_eq!((status, code.as_str()), (409, "conflict"));
    assert!(text.contains("is running already"), "{text}");
    lock.expect("the task is free").release().await.unwrap();
    assert_eq!(
        admin
            .run_task("delete_aged_usage")
            .await
            .unwrap()
            .state
            .name,
        "delete_aged_usage"
    );

    admin.delete_rule(created.id).await.unwrap();
    let (status, _, _) = refusal(admin.delete_rule(created.id).await);
    assert_eq!(status, 404);
}

async fn the_typed_client_speaks_for_tokens_tasks_and_the_org_tree(backend: Backend) {
    let s = start(backend).await;
    let admin = Client::new(&s.url, Some(s.admin.clone()), None).unwrap();
    let made = admin
        .create_token(&CreateToken {
            name: "ci".into(),
            role: Role::Auditor,
        })
        .await
        .unwrap();
    assert!(made.token.starts_with("tally_"), "{}", made.token);
    let auditor = Client::new(&s.url, Some(made.token.clone()), None).unwrap();
    let me = auditor.whoami().await.unwrap();
    assert_eq!((me.name.as_str(), me.role), ("ci", Role::Auditor));
    let (status, code, _) = refusal(auditor.delete_rule(1).await);
    assert_eq!((status, code.as_str()), (403, "forbidden"));

    let change = TaskChange {
        age_days: Some(30),
        ..TaskChange::default()
    };
    let task = admin
        .change_task("delete_aged_usage", &change)
        .await
        .unwrap();
    assert_eq!(task.state.age_days, Some(30));
    let listed = admin.tasks().await.unwrap();
    assert!(listed.contains(&task), "{listed:?}");

    let nowhere = Placement {
        org_node: Some("Mars".into()),
    };
    let (status, _, text) = refusal(admin.place_device(1, &nowhere).await);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("no org node named \"Mars\""), "{text}");
}

#[tokio::test]
async fn the_typed_client_says_what_went_wrong_before_any_answer() {
    let no_token = Client::new("http://127.0.0.1:9", None, None).unwrap();
    let err = no_token.rules().await.unwrap_err();
    assert!(matches!(err, ClientError::NoToken), "{err}");
    let nobody = Client::new("http://127.0.0.1:9/", Some("x".into()), None).unwrap();
    let err = nobody.rules().await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("cannot reach Tally at http://127.0.0.1:9: ")
            && text.ends_with("; is the server running (tally up)? Set TALLY_URL or --url, and --ca-file for a private CA"),
        "{text}"
    );
    assert_eq!(err.status(), None);
}

/// The first few places where two JSON documents differ, as JSON pointers.
fn differences(path: String, a: &Value, b: &Value, found: &mut Vec<String>) {
    if found.len() >= 10 || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (va, vb) = (&x.get(key), &y.get(key));
                let here = format!("{path}/{key}");
                match (va, vb) {
                    (Some(va), Some(vb)) => differences(here, va, vb, found),
                    _ => found.push(format!("{here}: only in one")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(format!("{path}/{i}"), va, vb, found);
            }
        }
        _ => found.push(format!("{path}: {a} != {b}")),
    }
}

async fn the_served_openapi_document_is_the_snapshot_taken_before_the_types_moved(
    backend: Backend,
) {
    let s = start(backend).await;
    let (status, served) = s.get("/api/v1/openapi.json", &s.admin).await;
    assert_eq!(status, 200);
    let snapshot: Value =
        serde_json::from_str(include_str!("snapshots/openapi.json")).expect("the snapshot parses");
    let mut found = Vec::new();
    differences(String::new(), &snapshot, &served, &mut found);
    // A deliberate change to the API refreshes the snapshot with
    // `tally openapi > crates/tally-server/tests/snapshots/openapi.json`.
    assert!(
        found.is_empty(),
        "the OpenAPI document changed (snapshot vs served):\n{}",
        found.join("\n")
    );
    assert!(served["paths"]["/api/v1/rules/{id}"]["get"].is_object());
    // `tally openapi` prints it in the same order as before, too.
    assert_eq!(
        format!("{}\n", tally_server::openapi_json()),
        include_str!("snapshots/openapi.json")
    );
}
