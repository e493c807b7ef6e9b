//! `tally backup` and `tally restore` for a SQLite site. The backup is taken while the server
//! runs and agents upload (see `tally_store`'s `SqliteStore::backup_to`), checked, and only
//! then given its name; a restore goes into a new data directory, checked and migrated to
//! this binary's schema before it is given the database's name. PostgreSQL has its own tools
//! (`pg_dump`, docs/operations.md).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use tally_store::SqliteStore;

use crate::import::Database;

#[derive(Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    database: Database,
    /// The file to write (must not exist); readable by its owner only.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A file `tally backup` wrote.
    file: PathBuf,
    #[command(flatten)]
    database: Database,
}

pub async fn backup(args: BackupArgs) -> Result<()> {
    let source = sqlite_path(&args.database.url())?;
    if !source.exists() {
        bail!(
            "there is no database at {}: pass the server's --data-dir",
            source.display()
        );
    }
    refuse_existing(&args.out)?;
    let partial = partial_of(&args.out);
    remove_leftovers(&partial);
    let store = SqliteStore::open_unmigrated(&source).await?;
    store
        .backup_to(&partial)
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    store.close().await;
    let figures = checked(&partial).await?;
    std::fs::rename(&partial, &args.out)?;
    println!("backed up {} to {}", source.display(), args.out.display());
    print_figures(&figures);
    // Keys never change once made, so one copy kept safe serves every backup.
    println!(
        "not in the backup: the keys beside the database (site.key, pseudonym.key if names are \
         pseudonymised); keep one copy of each with your backups"
    );
    Ok(())
}

pub async fn restore(args: RestoreArgs) -> Result<()> {
    let target = sqlite_path(&args.database.url())?;
    if target.exists() {
        bail!(
            "{} exists: restore into a new data directory (--data-dir), then point the server at it",
            target.display()
        );
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let partial = partial_of(&target);
    remove_leftovers(&partial);
    std::fs::copy(&args.file, &partial)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let figures = checked(&partial).await?;
    // Migrated now, so a backup of an older release starts like any upgraded database.
    let store = SqliteStore::open(&partial).await?;
    store.close().await;
    std::fs::rename(&partial, &target)?;
    println!("restored {} into {}", args.file.display(), target.display());
    print_figures(&figures);
    println!(
        "start the server with --data-dir {}",
        target.parent().unwrap_or(Path::new(".")).display()
    );
    Ok(())
}

/// The SQLite file a URL names; PostgreSQL is refused with what to use instead.
fn sqlite_path(url: &str) -> Result<PathBuf> {
    match url.strip_prefix("sqlite://") {
        Some(path) => Ok(PathBuf::from(path.split('?').next().unwrap_or(path))),
        None => bail!(
            "tally backup and restore handle SQLite; for PostgreSQL use pg_dump --format=custom and pg_restore (docs/operations.md)"
        ),
    }
}

fn refuse_existing(path: &Path) -> Result<()> {
    if path.exists() {
        bail!("{} exists: name a new file", path.display());
    }
    Ok(())
}

/// `path.partial`: where a file is written before it is complete and checked.
fn partial_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Removes what an interrupted run left at `partial`.
fn remove_leftovers(partial: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = partial.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Checks the database file at `path` page by page and counts its tables' rows; owner-only.
async fn checked(path: &Path) -> Result<Vec<(String, i64)>> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let store = SqliteStore::open_unmigrated(path).await?;
    if let Some(problem) = store.integrity_problem().await? {
        bail!("{} is damaged: {problem}", path.display());
    }
    let rows = store.table_rows().await?;
    store.close().await;
    if !rows.iter().any(|(table, _)| table == "_sqlx_migrations") {
        bail!("{} is not a Tally database", path.display());
    }
    Ok(rows)
}

fn print_figures(rows: &[(String, i64)]) {
    for (table, n) in rows.iter().filter(|(t, _)| !t.starts_with('_')) {
        println!("  {table}: {n} rows");
    }
}
