//! Issue 15's contract drift: every 4xx the server answers is the documented JSON error body
//! (`{"error": code, "message": sentence}` as `application/json`), including the refusals
//! made before a handler runs (path, query, content type, malformed JSON, unknown routes and
//! methods), and a JSON array is no stand-in for an object.

mod common;

use common::json::assert_message_has;
use common::{start, Backend, TestServer};
use reqwest::Method;
use serde_json::Value;

each_backend!(async
    refusals_before_a_handler_are_json_error_bodies,
    a_json_array_is_refused_where_an_object_is_required,
    the_openapi_document_states_the_enforced_limits,
);

/// Sends `method path` as the admin with `body` of `content_type`; returns the status, the
/// `Allow` header and the body, after checking the body is the error contract.
async fn refused(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<(&str, &str)>,
) -> (u16, Option<String>, Value) {
    let mut req = server
        .client
        .request(method.clone(), format!("{}{path}", server.url))
        .bearer_auth(&server.admin);
    if let Some((content_type, text)) = body {
        req = req
            .header("content-type", content_type)
            .body(text.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let header = |name: &str| (resp.headers().get(name)).map(|v| v.to_str().unwrap().to_string());
    let (kind, allow) = (header("content-type"), header("allow"));
    let text = resp.text().await.unwrap();
    assert_eq!(
        kind.as_deref(),
        Some("application/json"),
        "{method} {path}: {status} {text:?}"
    );
    let json: Value = serde_json::from_str(&text).unwrap();
    let object = json.as_object().unwrap();
    assert_eq!(object.len(), 2, "{method} {path}: {json}");
    assert!(
        json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{json}"
    );
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
    (status, allow, json)
}

async fn refusals_before_a_handler_are_json_error_bodies(backend: Backend) {
    let server = start(backend).await;
    let json = Some(("application/json", r#"{"name": "x", "file_name": "x"}"#));
    let cases = [
        (
            Method::DELETE,
            "/api/v1/rules/9223372036854775808",
            None,
            400,
            "bad_request",
            "9223372036854775808",
        ),
        (
            Method::GET,
            "/api/v1/rules/x",
            None,
            400,
            "bad_request",
            "Cannot parse",
        ),
        (
            Method::GET,
            "/api/v1/usage?limit=many",
            None,
            400,
            "bad_request",
            "limit",
        ),
        (
            Method::GET,
            "/api/v1/devices?after=1&after=2",
            None,
            400,
            "bad_request",
            "after",
        ),
        (
            Method::GET,
            "/api/v1/devices?limit=1001",
            None,
            400,
            "bad_request",
            "limit",
        ),
        (
            Method::POST,
            "/api/v1/rules",
            Some(("text/plain", r#"{"name": "x"}"#)),
            400,
            "bad_request",
            "Content-Type",
        ),
        (
            Method::POST,
            "/api/v1/rules",
            Some(("application/json", r#"{"name": "#)),
            400,
            "bad_request",
            "EOF",
        ),
        (
            Method::GET,
            "/api/v1/no-such-thing",
            None,
            404,
            "not_found",
            "/api/v1/no-such-thing",
        ),
        (
            Method::PATCH,
            "/api/v1/rules",
            json,
            405,
            "method_not_allowed",
            "PATCH",
        ),
    ];
    for (method, path, body, status, code, says) in cases {
        let (got, allow, json) = refused(&server, method.clone(), path, body).await;
        assert_eq!(
            (got, json["error"].as_str()),
            (status, Some(code)),
            "{method} {path}: {json}"
        );
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(says), "{method} {path}: {message}");
        if status == 405 {
            let allow = allow.unwrap_or_default();
            assert!(
                allow.contains("GET") && allow.contains("POST"),
                "Allow: {allow}"
            );
        }
    }
}

async fn a_json_array_is_refused_where_an_object_is_required(backend: Backend) {
    let server = start(backend).await;
    let body = Some(("application/json", r#"["x", "auditor"]"#));
    let (status, _, json) = refused(&server, Method::POST, "/api/v1/tokens", body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("bad_request")),
        "{json}"
    );
    assert_message_has(&json, "object");
    // Nothing was made: the admin and the auditor token only.
    let (status, tokens) = server.get("/api/v1/tokens", &server.admin).await;
    assert_eq!(status, 200);
    assert_eq!(tokens.as_array().unwrap().len(), 2, "{tokens}");
    // The object form is still accepted.
    let (status, made) = server
        .post_as_admin(
            "/api/v1/tokens",
            serde_json::json!({"name": "x", "role": "auditor"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
}

async fn the_openapi_document_states_the_enforced_limits(backend: Backend) {
    let server = start(backend).await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let param = |path: &str, name: &str| -> Value {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let found = params.iter().find(|p| p["name"] == name);
        found.unwrap_or_else(|| panic!("{path} has no {name}"))["schema"].clone()
    };
    for path in [
        "/api/v1/devices",
        "/api/v1/users",
        "/api/v1/usage",
        "/api/v1/runs",
        "/api/v1/audit",
    ] {
        let limit = param(path, "limit");
        assert_eq!(
            (&limit["minimum"], &limit["maximum"]),
            (&1.into(), &1000.into()),
            "{path}: {limit}"
        );
        assert_eq!(limit["default"], 100, "{path}: {limit}");
    }
    let days = param("/api/v1/reclaim", "days");
    assert_eq!(
        (&days["minimum"], &days["maximum"]),
        (&1.into(), &3650.into()),
        "{days}"
    );
    let max_uses = &doc["components"]["schemas"]["CreateEnrollmentToken"]["properties"]["max_uses"];
    assert_eq!(max_uses["minimum"], 1, "{max_uses}");
}
