//! Per-credential request-rate limits: a credential over its budget is answered 429 with the
//! JSON error body and `Retry-After`, and no other credential is slowed by it.

mod common;

use common::json::assert_message_has;
use common::{start_with_limits, Backend, TestServer};
use serde_json::json;
use tally_server::config::Limits;

each_backend!(async
    an_agent_over_its_budget_waits_and_other_agents_do_not,
    an_operator_token_over_its_budget_waits_and_other_tokens_do_not,
);

/// Sends `GET path` (or a heartbeat when `heartbeat`) with `creds`: status, `Retry-After` and
/// the body.
async fn send(
    server: &TestServer,
    creds: &str,
    heartbeat: bool,
) -> (u16, Option<u64>, serde_json::Value) {
    let request = if heartbeat {
        let beat = json!({"agent_version": "test", "sent_at": chrono::Utc::now()});
        server
            .client
            .post(format!("{}/api/v1/agent/heartbeat", server.url))
            .json(&beat)
    } else {
        server.client.get(format!("{}/api/v1/agents", server.url))
    };
    let resp = request.bearer_auth(creds).send().await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if status == 429 {
        assert_eq!(content_type.as_deref(), Some("application/json"), "{body}");
    }
    (status, retry_after, body)
}

fn limits(agents: u32, operators: u32) -> Limits {
    Limits {
        agent_requests_per_minute: agents,
        operator_requests_per_minute: operators,
        ..Limits::default()
    }
}

fn assert_throttled((status, retry_after, body): (u16, Option<u64>, serde_json::Value)) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "too_many_requests", "{body}");
    let wait = retry_after.expect("a 429 says when to come back");
    // A budget of 3 a minute refills one request every 20 s.
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    assert_message_has(&body, "retry after");
}

async fn an_agent_over_its_budget_waits_and_other_agents_do_not(backend: Backend) {
    let server = start_with_limits(backend, limits(3, 0)).await;
    let (busy, _) = server.enroll("busy").await;
    let (quiet, _) = server.enroll("quiet").await;
    for _ in 0..3 {
        let (status, _, body) = send(&server, &busy, true).await;
        assert!(status < 300, "{status} {body}");
    }
    assert_throttled(send(&server, &busy, true).await);
    let (status, _, body) = send(&server, &quiet, true).await;
    assert!(
        status < 300,
        "another agent has its own budget: {status} {body}"
    );
    // Operators are not limited here (0), however many requests they make.
    for _ in 0..50 {
        assert_eq!(send(&server, &server.admin, false).await.0, 200);
    }
}

async fn an_operator_token_over_its_budget_waits_and_other_tokens_do_not(backend: Backend) {
    let server = start_with_limits(backend, limits(0, 3)).await;
    for _ in 0..3 {
        assert_eq!(send(&server, &server.admin, false).await.0, 200);
    }
    assert_throttled(send(&server, &server.admin, false).await);
    assert_eq!(send(&server, &server.auditor, false).await.0, 200);
    // An unknown token is refused before it is counted: it spends nobody's budget.
    assert_eq!(send(&server, "tally_nope", false).await.0, 401);
    assert_eq!(send(&server, &server.auditor, false).await.0, 200);
}
