//! The web console's sessions on SQLite and on PostgreSQL: only the secret's hash is stored, a
//! session ends when idle too long, when older than the absolute limit however busy, on
//! sign-out and when its operator token is revoked; an unknown or over-long token opens none.

#[path = "../../tally-store/tests/common/pgdb.rs"]
mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::Backend;
use tally_core::{Role, SiteCode};
use tally_service::web_sessions::{self, secret_hash, SessionPolicy};
use tally_service::Service;
use tally_store::{Page, Store};

each_backend!(async sessions_expire_end_and_keep_only_a_hash);

/// Whether `secret` opens a session at `now`: what each step below checks (reading a
/// session renews it, as a request to the console would).
async fn is_open(
    service: &Service,
    secret: &str,
    now: DateTime<Utc>,
    policy: SessionPolicy,
) -> bool {
    let session = web_sessions::session(service, secret, now, policy).await;
    session.unwrap().is_some()
}

async fn sessions_expire_end_and_keep_only_a_hash(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(&dir.path().join("t.db"));
    let store: Arc<dyn Store> = tally_store::open(&url).await.unwrap();
    let token = "tally_web_session_test_token";
    let at = Utc::now();
    let operator = store
        .create_operator_token("ann", Role::Auditor, &secret_hash(token), at, None)
        .await
        .unwrap();
    let service = Service::new(store.clone(), SiteCode::parse("S01").unwrap());
    let policy = SessionPolicy::default();
    let sign_in = |now| web_sessions::sign_in(&service, token, now, policy);

    assert!(web_sessions::sign_in(&service, "tally_nope", at, policy)
        .await
        .unwrap()
        .is_none());
    let long = "t".repeat(web_sessions::MAX_TOKEN_CHARS + 1);
    assert!(web_sessions::sign_in(&service, &long, at, policy)
        .await
        .unwrap()
        .is_none());

    // Only the hash is stored: the secret itself finds nothing.
    let opened = sign_in(at).await.unwrap().unwrap();
    assert_eq!(opened.operator.name, "ann");
    assert!(store.web_session(&opened.secret).await.unwrap().is_none());
    assert!(store
        .web_session(&secret_hash(&opened.secret))
        .await
        .unwrap()
        .is_some());

    // Used every 20 minutes it lives on, until the absolute limit.
    let mut now = at;
    while now - at + Duration::minutes(20) < policy.absolute {
        now += Duration::minutes(20);
        assert!(
            is_open(&service, &opened.secret, now, policy).await,
            "alive {} minutes in",
            (now - at).num_minutes()
        );
    }
    let late = at + policy.absolute + Duration::minutes(1);
    assert!(!is_open(&service, &opened.secret, late, policy).await);

    // Idle past the limit, it ends, and stays ended.
    let idle = sign_in(at).await.unwrap().unwrap();
    let later = at + policy.idle + Duration::minutes(1);
    assert!(!is_open(&service, &idle.secret, later, policy).await);
    assert!(!is_open(&service, &idle.secret, at, policy).await);

    // Signing out ends one session; revoking the token ends all of its sessions.
    let (a, b) = (
        sign_in(at).await.unwrap().unwrap(),
        sign_in(at).await.unwrap().unwrap(),
    );
    web_sessions::sign_out(&service, "ann", &a.secret)
        .await
        .unwrap();
    assert!(!is_open(&service, &a.secret, at, policy).await);
    assert!(is_open(&service, &b.secret, at, policy).await);
    store
        .revoke_operator_token(operator.id, at, None)
        .await
        .unwrap();
    assert!(!is_open(&service, &b.secret, at, policy).await);

    let log = store.audit_log(Page::default()).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|(_, e)| e.action.as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "web.sign_in").count(), 4);
    assert_eq!(actions.iter().filter(|a| **a == "web.sign_out").count(), 1);
}
