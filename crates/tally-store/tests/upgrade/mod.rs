//! The upgrade a release performs: a database at the previous schema version (the newest
//! migration's predecessor, derived from the migrator, so every new migration is tested the day
//! it is written), holding the rows of this directory's fixture for that version, migrated to
//! the newest; every row and every value it held must still be there. docs/storage.md says how
//! a new migration gets its fixture.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::{Pool, Row};
use tally_store::{Page, Store};

pub fn latest(m: &Migrator) -> i64 {
    m.iter().map(|m| m.version).max().unwrap()
}

/// The schema version before the newest: what the next release upgrades from.
pub fn previous(m: &Migrator) -> i64 {
    let newest = latest(m);
    m.iter()
        .map(|m| m.version)
        .filter(|v| *v < newest)
        .max()
        .expect("at least two migrations")
}

/// How a backend lists its tables and a table's columns.
pub struct Catalogue {
    pub backend: &'static str,
    tables: &'static str,
    columns: &'static str,
}

pub const SQLITE: Catalogue = Catalogue {
    backend: "sqlite",
    tables: "SELECT name FROM sqlite_master
             WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    columns: "SELECT name FROM pragma_table_info($1) ORDER BY cid",
};

pub const POSTGRES: Catalogue = Catalogue {
    backend: "postgres",
    tables: "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
               AND table_name <> '_sqlx_migrations'",
    columns: "SELECT CAST(column_name AS TEXT) FROM information_schema.columns
              WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
};

/// A table's columns and every row, each value as text (NULL as `None`), rows sorted.
#[derive(Debug)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

/// Every table of a database by name.
pub type Snapshot = BTreeMap<String, Table>;

/// The two queries this file runs, on either backend's pool.
#[allow(async_fn_in_trait)] // tests only: nothing needs the futures to be `Send`
pub trait Db {
    /// Runs `sql` (with one optional text parameter) and returns each row's values as text.
    async fn texts(&self, sql: &str, param: Option<&str>) -> Vec<Vec<Option<String>>>;
    /// Runs a script of several statements.
    async fn script(&self, sql: &str);
}

impl<DB> Db for Pool<DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    async fn texts(&self, sql: &str, param: Option<&str>) -> Vec<Vec<Option<String>>> {
        let mut query = sqlx::query(sql);
        if let Some(p) = param {
            query = query.bind(p.to_string());
        }
        let rows = query.fetch_all(self).await.unwrap();
        rows.iter()
            .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
            .collect()
    }

    async fn script(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(self).await.unwrap();
    }
}

/// Every row of every table (but sqlx's own), as text.
pub async fn snapshot(pool: &impl Db, catalogue: &Catalogue) -> Snapshot {
    let mut tables = Snapshot::new();
    for row in pool.texts(catalogue.tables, None).await {
        let name = row[0].clone().unwrap();
        let columns: Vec<String> = pool
            .texts(catalogue.columns, Some(&name))
            .await
            .into_iter()
            .map(|c| c[0].clone().unwrap())
            .collect();
        let values: Vec<String> = columns
            .iter()
            .map(|c| format!("CAST(\"{c}\" AS TEXT)"))
            .collect();
        let select = format!("SELECT {} FROM \"{name}\"", values.join(", "));
        let mut rows = pool.texts(&select, None).await;
        rows.sort();
        tables.insert(name, Table { columns, rows });
    }
    tables
}

/// The rows a database at the previous schema version is given before it is upgraded.
pub struct Fixture;

impl Fixture {
    /// Loads the fixture for the database's (previous) version into it and returns a snapshot
    /// of it, after checking the fixture gives the newest migration something to carry.
    pub async fn load(pool: &impl Db, catalogue: &Catalogue, migrator: &Migrator) -> Snapshot {
        let from = previous(migrator);
        let sql = Self::text(catalogue.backend, from);
        pool.script(&sql).await;
        let mut before = snapshot(pool, catalogue).await;
        let newest = migrator.iter().find(|m| m.version == latest(migrator));
        for table in tables_changed(&newest.unwrap().sql) {
            if let Some(held) = before.get(&table) {
                assert!(
                    !held.rows.is_empty(),
                    "the schema-{from} upgrade fixture has no rows in {table}, which the newest \
                     migration changes: add some (docs/storage.md)"
                );
            }
        }
        for rewrite in REWRITTEN.iter().filter(|r| r.from == from) {
            rewrite.apply(&mut before);
        }
        before
    }

    /// `upgrade/BACKEND/NNNN.sql` where the backends need different SQL, else `upgrade/NNNN.sql`
    /// followed by `upgrade/BACKEND/NNNN.more.sql` where one backend needs a few more statements.
    fn text(backend: &str, version: i64) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upgrade");
        let name = format!("{version:04}.sql");
        let more = dir.join(backend).join(format!("{version:04}.more.sql"));
        let more = std::fs::read_to_string(more).unwrap_or_default();
        [dir.join(backend).join(&name), dir.join(&name)]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .map(|text| text + "\n" + &more)
            .unwrap_or_else(|| {
                panic!(
                    "no upgrade fixture for schema {version}: write tests/upgrade/{name} with \
                     the rows a schema-{version} database holds, starting from the previous \
                     fixture (docs/storage.md)"
                )
            })
    }
}

/// A value the upgrade from schema `from` changes on purpose: in `table`, the fixture's row whose
/// `key` column holds `key_value` holds `value` in `column` afterwards. Every other value must
/// stay as it was.
pub struct Rewrite {
    from: i64,
    table: &'static str,
    key: &'static str,
    key_value: &'static str,
    column: &'static str,
    value: &'static str,
}

/// Migration 14 makes rule names unique per site: the later of the two "Snoozer" rules (any
/// case) of schema 13's rows is renamed. Applies only to an upgrade from schema 13, whose
/// fixture is gone now that the tests upgrade from 14; kept as the pattern for the next
/// migration that changes values on purpose.
pub const REWRITTEN: &[Rewrite] = &[Rewrite {
    from: 13,
    table: "metering_rules",
    key: "file_name",
    key_value: "snooze2",
    column: "name",
    value: "SNOOZER (2)",
}];

impl Rewrite {
    /// Changes the expected snapshot as the migration changes the database.
    fn apply(&self, snapshot: &mut Snapshot) {
        let table = snapshot.get_mut(self.table).expect("the rewritten table");
        let at = |name: &str| table.columns.iter().position(|c| c == name).unwrap();
        let (key, column) = (at(self.key), at(self.column));
        let row = table
            .rows
            .iter_mut()
            .find(|r| r[key].as_deref() == Some(self.key_value))
            .expect("the fixture holds the rewritten row");
        row[column] = Some(self.value.to_string());
        table.rows.sort();
    }
}

/// Tables whose existing rows a migration rewrites, copies or reads: those named after
/// `ALTER TABLE`, `DROP TABLE [IF EXISTS]`, `UPDATE` and `FROM` (which covers `DELETE FROM`
/// and `INSERT … SELECT … FROM`). Names that are no table (`DO UPDATE SET`) fall away when
/// the caller looks them up.
pub fn tables_changed(sql: &str) -> BTreeSet<String> {
    let words: Vec<String> = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .flat_map(|line| line.split(|c: char| c.is_whitespace() || "();,".contains(c)))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('"').to_ascii_lowercase())
        .collect();
    let word = |i: usize| words.get(i).map(String::as_str);
    let mut tables = BTreeSet::new();
    for i in 0..words.len() {
        let name = match (word(i), word(i + 1), word(i + 2)) {
            (Some("alter" | "drop"), Some("table"), Some("if")) => word(i + 4),
            (Some("alter" | "drop"), Some("table"), Some("only")) => word(i + 3),
            (Some("alter" | "drop"), Some("table"), name) => name,
            (Some("update" | "from"), name, _) => name,
            _ => None,
        };
        tables.extend(name.map(str::to_string));
    }
    tables
}

/// Every row the database held before the upgrade is still there with every value it had;
/// tables, columns and rows may be added.
pub fn assert_kept(before: &Snapshot, after: &Snapshot) {
    for (name, old) in before.iter().filter(|(_, t)| !t.rows.is_empty()) {
        let new = after
            .get(name)
            .unwrap_or_else(|| panic!("table {name} and its {} rows are gone", old.rows.len()));
        let at: Vec<usize> = old
            .columns
            .iter()
            .map(|c| {
                let i = new.columns.iter().position(|n| n == c);
                i.unwrap_or_else(|| panic!("column {name}.{c} and its values are gone"))
            })
            .collect();
        let mut left: BTreeMap<Vec<Option<String>>, usize> = BTreeMap::new();
        for row in &new.rows {
            let kept = at.iter().map(|&i| row[i].clone()).collect();
            *left.entry(kept).or_default() += 1;
        }
        for row in &old.rows {
            let count = left.get_mut(row).filter(|n| **n > 0);
            *count.unwrap_or_else(|| panic!("a row of {name} is lost or changed: {row:?}")) -= 1;
        }
    }
}

/// The upgraded database through the store, on the rows every fixture carries (pc1 with
/// Office and Chat): the schema is the newest, the software reads back, and a new inventory
/// keeps the package it no longer lists as history.
pub async fn assert_works(store: &dyn Store, pool: &impl Db, newest: i64) {
    use tally_core::wire::v1::{InstalledSoftware, Inventory};
    let v = store.schema_version().await.unwrap();
    assert_eq!((v.database, v.binary), (newest, newest));
    let devices = store.devices(Page::default()).await.unwrap();
    let pc1 = devices.iter().find(|d| d.host_name == "pc1").unwrap().id;
    let names = |inventory: tally_store::DeviceInventory| -> Vec<String> {
        inventory.software.into_iter().map(|s| s.name).collect()
    };
    assert_eq!(
        names(store.device_inventory(pc1).await.unwrap()),
        ["Chat", "Office"]
    );
    let office = InstalledSoftware {
        name: "Office".into(),
        version: "16.0".into(),
        publisher: "Microsoft".into(),
        executables: vec!["winword".into()],
    };
    let inventory = Inventory {
        hash: "after-upgrade".into(),
        os: None,
        hardware: Default::default(),
        software: vec![office],
        accounts: Vec::new(),
    };
    let at = chrono::Utc::now();
    assert!(store.put_inventory(pc1, &inventory, at).await.unwrap());
    assert_eq!(
        names(store.device_inventory(pc1).await.unwrap()),
        ["Office"]
    );
    let removed = "SELECT CAST(COUNT(*) AS TEXT) FROM installed_software
                   WHERE name = 'Chat' AND removed_at IS NOT NULL";
    let removed = pool.texts(removed, None).await;
    assert_eq!(
        removed[0][0].as_deref(),
        Some("1"),
        "Chat is kept as history"
    );
    // Usage after the upgrade comes after the fixture's (serials up to 41).
    assert_eq!(store.max_time_serial().await.unwrap(), 41);
    let alice = store.upsert_user("alice", None).await.unwrap();
    let file = store
        .upsert_file(&tally_core::FileInfo {
            file_name: "winword".into(),
            original_file_name: "winword".into(),
            version: "16.0".into(),
            product_name: "Office".into(),
            publisher: "Microsoft".into(),
            language: tally_core::file::ANY_LANGUAGE,
        })
        .await
        .unwrap();
    let record = tally_core::NewUsageRecord::whole_run(
        "after-upgrade",
        (pc1, file, alice),
        at - chrono::Duration::hours(1),
        at,
    );
    let written = store.insert_usage(&[record]).await.unwrap();
    assert_eq!(written.time_serial, 42);
    assert_eq!(store.max_time_serial().await.unwrap(), 42);
}

/// Migration 14's outcome, carried by the newer fixtures: of the two rules named "Snoozer" in any
/// case, the later is "SNOOZER (2)", and the database itself refuses a second rule of a site's
/// name.
pub async fn assert_rule_names_unique(store: &dyn Store) {
    use tally_core::rules::{RuleOrigin, RuleSpec};
    let mut names: Vec<String> = store
        .rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.spec.name)
        .collect();
    names.sort();
    assert_eq!(names, ["Editor", "SNOOZER (2)", "Snoozer"]);
    let spec = RuleSpec {
        file_name: "other".into(),
        ..RuleSpec::named("EDITOR")
    };
    let site = tally_core::SiteCode::parse("S01").unwrap();
    let at = chrono::Utc::now();
    let refused = store
        .create_rule(&site, RuleOrigin::Manual, &spec, at, None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, tally_store::StoreError::Conflict(_)),
        "{refused}"
    );
}
