//! Starting a server: configuration, logging, storage, the local site, and the first token.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::Utc;
use tally_core::{Role, Site};
use tally_server::config::{LogFormat, Transport};
use tally_server::{auth, AppState, Config, ConfigFile, ReportOutput};
use tally_service::group_commit::IngestMode;
use tally_service::Service;
use tally_store::prelude::*;

use crate::ServerArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The newcomer's path: mints an admin token at the first start, keeps it in the data
    /// directory's `admin-token` file (mode 0600) and, on later starts, points there instead
    /// of minting another.
    Up,
    /// Production: mints a token only when the database has none yet.
    Server,
}

pub async fn run(args: ServerArgs, mode: Mode) -> Result<()> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let config = Config::resolve(args.overrides(), file)?;
    init_logging(config.log_format);
    let store = tally_store::open(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database at {}",
                redact(&config.database_url)
            )
        })?;
    tracing::info!(backend = store.backend(), "database ready");
    ensure_site(store.as_ref(), &config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server using it? Pass --listen 127.0.0.1:PORT",
                config.listen
            )
        })?;
    let tls = match &config.transport {
        Transport::Tls { cert, key } => Some(tally_server::transport::load_tls(cert, key)?),
        Transport::Plain { insecure: true } => {
            tracing::warn!(listen = %config.listen, "serving plain HTTP on a non-loopback address: tokens and usage cross the network unencrypted; configure tls_cert_file and tls_key_file");
            None
        }
        Transport::Plain { insecure: false } => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr()?);
    let token = match mode {
        Mode::Up => Some(up_token(store.as_ref(), &config.data_dir).await?),
        Mode::Server => first_token(store.as_ref()).await?.map(AdminToken::New),
    };
    print_banner(&url, token.as_ref(), &config, store.backend());
    if mode == Mode::Up {
        print_next_steps(&url, &config)?;
    }
    tracing::info!(%url, site = %config.site_code, "listening");
    let ingest = ingest_mode(config.ingest_writers, store.backend());
    let mut service = Service::new(store, config.site_code.clone())
        .with_ingest_mode(ingest)
        .with_reports(ReportOutput {
            dir: Some(config.data_dir.join("reports")),
            scheduled: config.scheduled_reports.clone(),
        })
        .with_position_refresh(config.position_refresh);
    service = service.with_metering(tally_service::metering::MeteringSetup {
        dir: Some(std::path::absolute(config.data_dir.join("metering"))?),
        key: Some(crate::pseudonyms::site_key(
            &config.data_dir.join("site.key"),
        )?),
        config_alias: config.alias.clone(),
        upload_url: config.metering_upload_url.clone(),
        server_host: Some(tally_agent::enrolment::host_name()),
    });
    if let Some(path) = &config.pseudonym_key_file {
        service = service.with_pseudonyms(crate::pseudonyms::load_or_create(path)?);
        tracing::info!(key = %path.display(), "account and full names are stored as pseudonyms");
    }
    let mut state = AppState::with_service(service);
    if let Some(path) = &config.metrics_token_file {
        state = state.with_metrics_token(&read_secret(path)?);
        tracing::info!(token_file = %path.display(), "serving /metrics to its token's bearer");
    }
    // Today's license position computed ahead of its readers whenever its data changes.
    tokio::spawn(tally_service::positions::keep_warm(
        std::sync::Arc::downgrade(&state.service),
        tally_service::positions::WARM_CHECK,
    ));
    // Summaries, ageing and automatic rules, each on its own schedule (`tally tasks`).
    tokio::spawn(tally_service::maintenance::schedule(
        state.service.clone(),
        std::time::Duration::from_secs(60),
    ));
    if let Some(parent) = &config.parent {
        start_site_sync(&state.service, parent, &config.data_dir).await?;
    }
    if mode == Mode::Up {
        start_local_agent(state.store.as_ref(), &config, &url).await?;
    }
    let shutdown = tally_server::shutdown_signal();
    match tls {
        Some(tls) => {
            tally_server::serve_tls(listener, state, &config.limits, tls, shutdown).await?
        }
        None => tally_server::serve(listener, state, &config.limits, shutdown).await?,
    }
    tracing::info!("stopped");
    Ok(())
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TALLY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a log file or journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Hides a password in a database URL before it reaches a log or an error.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Registers this server's own site on first start; later starts keep what is stored.
async fn ensure_site(store: &dyn Store, config: &Config) -> Result<()> {
    if store.site(&config.site_code).await?.is_none() {
        store
            .put_site(&Site::central(
                config.site_code.clone(),
                config.site_name.clone(),
            ))
            .await?;
        tracing::info!(site = %config.site_code, "registered this site");
    }
    Ok(())
}

/// The admin token the banner shows.
enum AdminToken {
    /// Minted now: printed once (and, by `tally up`, kept in this file).
    New(String),
    NewInFile(String, PathBuf),
    /// `tally up` restarted: the token of an earlier start, still valid, is in this file.
    Kept(PathBuf),
}

/// `tally server` mints a token only when the database has none yet.
async fn first_token(store: &dyn Store) -> Result<Option<String>> {
    if !store.operator_tokens().await?.is_empty() {
        return Ok(None);
    }
    Ok(Some(mint(store, "bootstrap").await?))
}

async fn mint(store: &dyn Store, name: &str) -> Result<String> {
    let (token, hash) = auth::generate_token();
    store
        .create_operator_token(name, Role::Admin, &hash, Utc::now(), None)
        .await?;
    Ok(token)
}

/// `tally up` keeps its admin token in `DATA_DIR/admin-token`: a restart reuses it while the
/// database still accepts it (not revoked, the same database), so starts do not pile up
/// tokens; otherwise (first start, file deleted, another database) it mints one and writes the
/// file, readable by its owner only.
async fn up_token(store: &dyn Store, data_dir: &Path) -> Result<AdminToken> {
    let file = std::path::absolute(data_dir.join("admin-token"))?;
    if let Ok(text) = std::fs::read_to_string(&file) {
        let stored = store
            .operator_token_by_hash(&auth::hash_token(text.trim()))
            .await?;
        if stored.is_some_and(|t| t.revoked_at.is_none()) {
            return Ok(AdminToken::Kept(file));
        }
    }
    let token = mint(store, &format!("up-{}", Utc::now().format("%Y%m%dT%H%M%S"))).await?;
    write_private(&file, &token)
        .with_context(|| format!("cannot keep the admin token in {}", file.display()))?;
    Ok(AdminToken::NewInFile(token, file))
}

/// A token is ~70 characters; a file much longer is not one.
const MAX_SECRET_BYTES: u64 = 1024;

/// The secret (a token) kept in `path`, trimmed; refused when empty or too long to be one.
/// A file others may read is used, with a warning.
pub(crate) fn read_secret(path: &Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_SECRET_BYTES {
        anyhow::bail!("{} is too long to hold a token", path.display());
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(file = %path.display(), "a token file others may read; chmod 600 it");
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        anyhow::bail!("{} is empty: put the token in it", path.display());
    }
    Ok(secret.to_string())
}

/// Writes `text` to a file only its owner can read (0600 from its creation).
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{text}")
}

/// Joins the parent (once: the credential is then kept in `parent.json` in the data
/// directory, mode 0600) and starts syncing with it.
async fn start_site_sync(
    service: &std::sync::Arc<Service>,
    parent: &tally_server::config::ParentConfig,
    data_dir: &Path,
) -> Result<()> {
    let link = tally_service::site_sync::ParentLink {
        url: parent.url.clone(),
        ca_file: parent.ca_file.clone(),
        join_secret: parent.token.clone(),
        credentials_file: std::path::absolute(data_dir.join("parent.json"))?,
        interval: parent.interval,
    };
    tally_service::site_sync::start(service, link)
        .await
        .with_context(|| format!("cannot join the parent site at {}", parent.url))?;
    println!("Syncing with the parent site at {}.", parent.url);
    Ok(())
}

/// `tally up` meters this machine: an in-process agent, enrolled once with a single-use token,
/// keeping its state in the data directory.
async fn start_local_agent(store: &dyn Store, config: &Config, url: &str) -> Result<()> {
    let state_dir = config.data_dir.join("agent");
    let enroll_token = if state_dir.join("agent.json").exists() {
        None
    } else {
        let (token, hash) = auth::generate_token();
        let new = tally_store::NewEnrollmentToken {
            site_code: config.site_code.clone(),
            name: "tally up local agent".into(),
            expires_at: None,
            max_uses: Some(1),
        };
        store
            .create_enrollment_token(&new, &hash, Utc::now(), None)
            .await?;
        Some(token)
    };
    let agent = tally_agent::AgentConfig {
        enroll_token,
        poll_interval: std::time::Duration::from_millis(500),
        // A newcomer adds a rule and runs the program at once: pick rules up within seconds.
        policy_interval: std::time::Duration::from_secs(3),
        upload_interval: Some(std::time::Duration::from_secs(1)),
        ..tally_agent::AgentConfig::new(url.to_string(), state_dir)
    };
    tokio::spawn(async move {
        if let Err(e) = tally_agent::run(agent, tally_server::shutdown_signal()).await {
            tracing::error!(error = %e, "the local agent stopped");
        }
    });
    println!("Metering this machine with a local agent.");
    Ok(())
}

fn print_banner(url: &str, token: Option<&AdminToken>, config: &Config, backend: &str) {
    println!("Tally is running at {url}");
    println!(
        "  site {} ({backend} at {})",
        config.site_code,
        redact(&config.database_url)
    );
    match token {
        Some(AdminToken::New(token)) => {
            println!("Admin token (shown once, keep it): {token}");
            println!("  export TALLY_URL={url} TALLY_TOKEN={token}");
        }
        Some(AdminToken::NewInFile(token, file)) => {
            println!("Admin token (shown once, keep it): {token}");
            println!("  also kept in {} (readable by you only)", file.display());
            println!("  export TALLY_URL={url} TALLY_TOKEN={token}");
        }
        Some(AdminToken::Kept(file)) => {
            println!("Admin token: in {}", file.display());
            println!("  the one made at the first start; tally tokens create --name NAME --role admin makes another");
            println!(
                "  export TALLY_URL={url} TALLY_TOKEN=$(cat {})",
                file.display()
            );
        }
        None => {}
    }
    println!("Stop with Ctrl-C.");
}

/// What a newcomer does next, ending `tally up`'s banner: the console, a first rule, a second
/// machine, and where the data lives (and how to keep it).
fn print_next_steps(url: &str, config: &Config) -> Result<()> {
    let data = std::path::absolute(&config.data_dir)?;
    println!("Next steps:");
    println!("  1. Open the console at {url}/ and sign in with the admin token.");
    println!("  2. Meter a program: tally rules add --name Editor --file-name vim");
    println!("     (with TALLY_URL and TALLY_TOKEN exported as above), then tally usage --runs.");
    println!("  3. Enrol another machine: tally enrollment create --name laptops prints a token;");
    println!("     on that machine: tally agent install --server URL --enroll-token-file FILE");
    println!("     (serve on a reachable address with TLS first: docs/deploy.md).");
    println!(
        "  4. Your data lives in {} ({}); back it up with tally backup --data-dir {} --out FILE.",
        data.display(),
        redact(&config.database_url),
        data.display()
    );
    Ok(())
}

/// How uploads are written: `writers` as configured, else one writer on SQLite (it has one)
/// and four on PostgreSQL; zero writers means no group commit.
pub(crate) fn ingest_mode(writers: Option<usize>, backend: &str) -> IngestMode {
    let default = if backend == "postgres" { 4 } else { 1 };
    match writers.unwrap_or(default) {
        0 => IngestMode::OneByOne,
        writers => IngestMode::Grouped {
            writers,
            queue_records: tally_service::group_commit::QUEUE_RECORDS,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_the_banner() {
        assert_eq!(
            redact("postgres://tally:s3cret@db/tally"),
            "postgres://tally:***@db/tally"
        );
        assert_eq!(
            redact("postgres://tally@db/tally"),
            "postgres://tally@db/tally"
        );
        assert_eq!(
            redact("sqlite://tally-data/tally.db"),
            "sqlite://tally-data/tally.db"
        );
    }
}
