//! A change and its audit entry are stored together or not at all, on SQLite and on
//! PostgreSQL: with a trigger that refuses every audit insert, a rule created, a license
//! added, a token revoked and a device placed all fail and leave nothing changed; with the
//! trigger gone, the same calls store both the change and its entry.

#[path = "../../tally-store/tests/common/pgdb.rs"]
mod common;

use std::sync::Arc;

use chrono::Utc;
use common::Backend;
use sqlx::Connection;
use tally_api::Placement;
use tally_core::import::{ApplicationRow, Batch, LicenseRow, OrgNodeRow, Origin};
use tally_core::org::OrgTarget;
use tally_core::rules::RuleSpec;
use tally_core::{Role, Site, SiteCode};
use tally_service::{licensing, operators, org, rules, Service};
use tally_store::{Page, Store};

fn site() -> SiteCode {
    SiteCode::parse("S01").unwrap()
}

fn origin() -> Origin {
    Origin {
        file: "setup".into(),
        line: 1,
    }
}

/// A site with one org node, one application, one device and one live operator token;
/// returns the device's and the token's ids.
async fn estate(store: &dyn Store) -> (i64, i64) {
    store
        .put_site(&Site::central(site(), "Main"))
        .await
        .unwrap();
    let application: ApplicationRow = serde_json::from_value(serde_json::json!({
        "name": "Editor", "publisher": "Acme", "metric": "installations"
    }))
    .unwrap();
    let device = serde_json::from_value(serde_json::json!({"host_name": "pc1"})).unwrap();
    let node = OrgNodeRow {
        name: "HQ".into(),
        parent: None,
    };
    let batch = Batch {
        org_nodes: vec![(origin(), node)],
        devices: vec![(origin(), device)],
        applications: vec![(origin(), application)],
        ..Default::default()
    };
    let now = Utc::now();
    store
        .import(&batch, &site(), now, &|_| {}, None)
        .await
        .unwrap();
    let device = store.devices(Page::default()).await.unwrap()[0].id;
    let token = store
        .create_operator_token("ci", Role::Admin, "hash", now, None)
        .await
        .unwrap();
    (device, token.id)
}

/// Executes `sql` on the test's database, outside the store.
async fn execute(backend: &Backend, url: &str, sql: &str) {
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres(_) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    }
}

/// Makes every insert into `audit_log` fail.
async fn refuse_audit(backend: &Backend, url: &str) {
    let sql = match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
        }
        Backend::Postgres(_) => {
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$;
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
        }
    };
    execute(backend, url, sql).await;
}

async fn allow_audit(backend: &Backend, url: &str) {
    let sql = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse_audit",
        Backend::Postgres(_) => "DROP TRIGGER refuse_audit ON audit_log",
    };
    execute(backend, url, sql).await;
}

/// The four changes, as `actor`; the error of each that failed, in order.
async fn changes(service: &Service, device: i64, token: i64) -> Vec<String> {
    let spec = RuleSpec {
        file_name: "editor".into(),
        ..RuleSpec::named("Editor")
    };
    let license: LicenseRow = serde_json::from_value(serde_json::json!({
        "application": "Editor", "metric": "installations", "quantity": 5,
        "assignment_type": "organization"
    }))
    .unwrap();
    let placement = Placement {
        org_node: Some("HQ".into()),
    };
    let actor = "ann";
    let results = [
        rules::create(service, actor, &spec).await.map(|_| ()),
        licensing::add_license(service, actor, &license, Utc::now())
            .await
            .map(|_| ()),
        operators::revoke_token(service, actor, token).await,
        org::place(service, actor, OrgTarget::Device(device), &placement).await,
    ];
    results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect()
}

each_backend!(async a_change_is_stored_with_its_audit_entry_or_not_at_all);

async fn a_change_is_stored_with_its_audit_entry_or_not_at_all(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(&dir.path().join("t.db"));
    let store: Arc<dyn Store> = tally_store::open(&url).await.unwrap();
    let (device, token) = estate(store.as_ref()).await;
    let service = Service::new(store.clone(), site());

    refuse_audit(&backend, &url).await;
    let failed = changes(&service, device, token).await;
    assert_eq!(
        failed.len(),
        4,
        "every change fails with its entry: {failed:?}"
    );
    assert!(
        failed.iter().all(|e| e.contains("audit refused")),
        "{failed:?}"
    );
    assert_eq!(
        store.rules().await.unwrap(),
        vec![],
        "no rule without its entry"
    );
    assert_eq!(store.licenses().await.unwrap(), vec![], "no license either");
    let tokens = store.operator_tokens().await.unwrap();
    assert_eq!(tokens[0].revoked_at, None, "the token is still live");
    let placed = store.device(device).await.unwrap().unwrap();
    assert_eq!(placed.org_node, None, "the device is still unplaced");
    assert_eq!(store.audit_log(Page::default()).await.unwrap(), vec![]);

    allow_audit(&backend, &url).await;
    let failed = changes(&service, device, token).await;
    assert_eq!(failed, Vec::<String>::new());
    let rule = store.rules().await.unwrap().remove(0);
    let license = store.licenses().await.unwrap().remove(0);
    assert!(store.operator_tokens().await.unwrap()[0]
        .revoked_at
        .is_some());
    let placed = store.device(device).await.unwrap().unwrap();
    assert!(placed.org_node.is_some(), "the device is placed");
    let entries: Vec<(String, String, String)> = store
        .audit_log(Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| (e.actor, e.action, e.target))
        .collect();
    let entry = |action: &str, target: String| ("ann".to_string(), action.to_string(), target);
    assert_eq!(
        entries,
        vec![
            entry("rule.create", format!("rule:{}", rule.id)),
            entry("license.add", format!("license:{}", license.id)),
            entry("token.revoke", format!("token:{token}")),
            entry("device.place", format!("device:{device}")),
        ]
    );
}
