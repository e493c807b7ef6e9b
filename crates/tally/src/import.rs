//! `tally import`: loads org nodes, devices, users, applications, installations, usage
//! sessions and licenses from CSV or JSON files straight into the database (run it where the
//! server's database is reachable). Every file is read and every row checked first; only
//! then is anything written, in one transaction.

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tally_core::import::ImportError;
use tally_core::SiteCode;
use tally_service::import_files::Reading;

/// Problems printed before giving up; the count of the rest follows.
const SHOWN_ERRORS: usize = 50;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// CSV or JSON files, each named for what it holds: org_nodes, devices, users,
    /// applications, installations, usage_sessions, licenses, custom_values (e.g. devices.csv,
    /// 2026-licenses.json). See docs/import-format.md.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    database: Database,
    /// The site new devices belong to.
    #[arg(long, env = "TALLY_SITE_CODE", default_value = "S01")]
    site_code: String,
    /// Check the files against the database and report problems; load nothing.
    #[arg(long)]
    check: bool,
    /// Make a new database when there is none at --data-dir (or the SQLite --database-url),
    /// instead of refusing: a database no server reads is usually a wrong directory.
    #[arg(long)]
    create: bool,
    /// Store account and full names as pseudonyms, as a server with the same setting does
    /// (docs/privacy.md).
    #[arg(long, env = "TALLY_PSEUDONYMIZE_USERS")]
    pseudonymize_users: bool,
    /// The site's pseudonym key file [default: pseudonym.key in the data directory].
    #[arg(long, env = "TALLY_PSEUDONYM_KEY_FILE")]
    pseudonym_key_file: Option<PathBuf>,
}

/// The database `tally import` and `tally export` work on directly.
#[derive(Args, Debug)]
pub struct Database {
    /// The database (default: the SQLite file in --data-dir).
    #[arg(long, env = "TALLY_DATABASE_URL")]
    database_url: Option<String>,
    #[arg(long, env = "TALLY_DATA_DIR", default_value = "tally-data")]
    data_dir: PathBuf,
}

impl Database {
    /// The database's URL: --database-url, or the SQLite file in --data-dir.
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("tally.db").display()))
    }

    /// Opens the database; a SQLite file that does not exist is refused unless `create`, since
    /// one made here would be read by no server.
    pub async fn open(&self, create: bool) -> Result<std::sync::Arc<dyn tally_store::Store>> {
        let url = self.url();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = Path::new(path.split('?').next().unwrap_or(path));
            if !create && !path.exists() {
                bail!(
                    "there is no database at {}: run this where tally up keeps its data, or pass \
                     --data-dir or --database-url (TALLY_DATA_DIR, TALLY_DATABASE_URL); \
                     tally import --create makes a new one",
                    path.display()
                );
            }
        }
        tally_store::open(&url)
            .await
            .with_context(|| format!("cannot open the database {}", shown_url(&url)))
    }
}

/// A database URL as printed: without the password a PostgreSQL URL may carry.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if !scheme.starts_with("sqlite") => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_string(),
    }
}

pub async fn import(args: ImportArgs) -> Result<()> {
    let site = SiteCode::parse(&args.site_code)?;
    let mut reading = Reading::default();
    for path in &args.files {
        read_file(path, &mut reading)?;
    }
    let rows = reading.rows();
    let Reading {
        mut batch,
        mut errors,
        ..
    } = reading;
    let store = args.database.open(args.create).await?;
    ensure_site(store.as_ref(), &site, !args.check).await?;
    // Before the checks, so the rows refer to users as the database holds them.
    if args.pseudonymize_users {
        let key = match &args.pseudonym_key_file {
            Some(path) => path.clone(),
            None => args.database.data_dir.join("pseudonym.key"),
        };
        crate::pseudonyms::load_or_create(&key)?.import_batch(&mut batch);
    }
    let known = store.import_known().await?;
    if errors.is_empty() {
        errors = tally_core::import::validate(&batch, &known, chrono::Utc::now());
    }
    report(&errors)?;
    let warnings = tally_core::import::warnings(&batch, &known);
    for w in &warnings {
        eprintln!("warning: {}", tally_core::escape::controls(&w.to_string()));
    }
    if args.check {
        eprintln!(
            "{} checked; nothing loaded (--check)",
            counted(rows, "row", "rows")
        );
        return Ok(());
    }
    let bar = bar(rows, "loading");
    let progress = |done: u64| bar.set_position(done);
    let outcome = store
        .import(&batch, &site, chrono::Utc::now(), &progress, None)
        .await;
    bar.finish_and_clear();
    let outcome = outcome.context("the import failed and nothing was loaded")?;
    println!(
        "{} into {}",
        loaded(&outcome),
        shown_url(&args.database.url())
    );
    Ok(())
}

/// `3 devices`, `1 device`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What an import wrote, as a sentence: `Imported 3 devices, 1 license and 2 users`.
fn loaded(o: &tally_core::import::ImportOutcome) -> String {
    let parts: Vec<String> = [
        (o.org_nodes, "org node", "org nodes"),
        (o.devices, "device", "devices"),
        (o.users, "user", "users"),
        (o.applications, "application", "applications"),
        (o.installations, "installation", "installations"),
        (o.sessions, "usage session", "usage sessions"),
        (o.licenses, "license", "licenses"),
        (o.custom_values, "custom value", "custom values"),
    ]
    .into_iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|(n, one, many)| counted(n, one, many))
    .collect();
    match parts.split_last() {
        None => "Imported nothing (the files hold no rows)".to_string(),
        Some((last, [])) => format!("Imported {last}"),
        Some((last, rest)) => format!("Imported {} and {last}", rest.join(", ")),
    }
}

/// New devices need their site. A database no server has started on yet gets it (named as
/// `tally up` would name it), so an estate can be loaded before the first start; in one that
/// has sites, an unknown code is a mistake to report rather than a site to invent.
async fn ensure_site(store: &dyn tally_store::Store, code: &SiteCode, create: bool) -> Result<()> {
    if store.site(code).await?.is_some() || !create && store.sites().await?.is_empty() {
        return Ok(());
    }
    let sites = store.sites().await?;
    if !sites.is_empty() {
        let codes: Vec<&str> = sites.iter().map(|s| s.code.as_str()).collect();
        bail!(
            "site {code} is not in this database; pass --site-code with one of: {}",
            codes.join(", ")
        );
    }
    store
        .put_site(&tally_core::Site::central(
            code.clone(),
            format!("Tally site {code}"),
        ))
        .await?;
    Ok(())
}

fn report(errors: &[ImportError]) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    for e in errors.iter().take(SHOWN_ERRORS) {
        eprintln!("{}", tally_core::escape::controls(&e.to_string()));
    }
    if errors.len() > SHOWN_ERRORS {
        eprintln!("… and {} more", errors.len() - SHOWN_ERRORS);
    }
    bail!(
        "{} found; nothing was loaded. Fix the rows named above and run the import again",
        counted(errors.len() as u64, "problem", "problems")
    )
}

fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(what.to_string());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {eta}")
            .expect("a valid template"),
    );
    bar
}

fn read_file(path: &Path, into: &mut Reading) -> Result<()> {
    let name = path.display().to_string();
    tally_service::import_files::kind_of(&name)?;
    let file = File::open(path).with_context(|| format!("cannot read {name}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = bar(size, &format!("reading {name}"));
    into.read(&name, BufReader::new(bar.wrap_read(file)))?;
    bar.finish_and_clear();
    Ok(())
}
