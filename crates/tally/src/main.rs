//! `tally`: the site server, `tally up` for a one-minute trial, and admin verbs.

mod admin;
mod agent_setup;
mod backup;
mod bench;
mod bench_agent;
mod bench_compliance;
mod bench_fleet;
mod bench_summary;
mod certificates;
mod compliance;
mod estate;
mod export;
mod import;
mod licensing;
mod manuals;
mod org;
mod output;
mod pseudonyms;
mod reclaim;
mod report;
mod serve;
mod site;
mod sites;
mod tasks;
mod usage;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};
use tally_server::ConfigOverrides;

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Software metering and license compliance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a local Tally on embedded SQLite in ./tally-data and print an admin token.
    Up(ServerArgs),
    /// Run a site server (SQLite or PostgreSQL) until stopped with Ctrl-C or SIGTERM.
    Server(ServerArgs),
    /// Run the metering agent for this machine until stopped (settings in --config FILE,
    /// e.g. /etc/tally/agent.toml); `tally agent install` sets a machine up.
    Agent(agent_setup::AgentCommand),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Copy a SQLite site's database while the server runs (PostgreSQL: pg_dump).
    Backup(backup::BackupArgs),
    /// Restore a `tally backup` file into a new data directory.
    Restore(backup::RestoreArgs),
    /// Print a shell completion script: `tally completions bash > /etc/bash_completion.d/tally`.
    Completions(manuals::CompletionsArgs),
    /// Print the man page (roff): `tally man > tally.1`.
    Man,
    /// Load generators: `tally bench ingest`.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Metering rules: list, add, edit, enable, disable, delete.
    Rules {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: admin::RulesCmd,
    },
    /// Operator API tokens.
    Tokens {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: admin::TokensCmd,
    },
    /// Enrolment tokens that agents join a site with.
    Enrollment {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: admin::EnrollmentCmd,
    },
    /// Devices known to the server; with --inventory HOST, one device's software and
    /// accounts; verbs to set a status, retire or merge devices.
    Devices {
        #[command(flatten)]
        api: admin::ApiArgs,
        /// Show this device's installed software (with its programs) and local accounts.
        #[arg(long, value_name = "HOST")]
        inventory: Option<String>,
        #[command(subcommand)]
        cmd: Option<estate::DevicesCmd>,
    },
    /// Site maintenance tasks: list (default), run NAME, set NAME.
    Tasks {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: Option<tasks::TasksCmd>,
    },
    /// Usage summaries: file-usage (per rule and hour) or monthly.
    Summaries {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: tasks::SummariesCmd,
    },
    /// Enrolled agents: last heartbeat, version, and records they reported dropping.
    Agents {
        #[command(flatten)]
        api: admin::ApiArgs,
    },
    /// Reports: `tally report list`, or `tally report NAME [--param K=V…] [--format pdf|html|csv|json] [--out FILE]`.
    Report(report::ReportArgs),
    /// Load org nodes, devices, users, applications, installations, usage sessions, licenses
    /// and custom compare values from CSV or JSON files into the database, all or nothing.
    Import(import::ImportArgs),
    /// Write the stored estate back as the CSV or JSON files `tally import` reads, one per kind.
    Export(export::ExportArgs),
    /// Applications (what licenses are bought for) and how they are recognised.
    Apps {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: Option<licensing::AppsCmd>,
    },
    /// Registered licenses: list, add, remove.
    Licenses {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: Option<licensing::LicensesCmd>,
    },
    /// The organisation tree: nodes, placement rules, placing a device or user by hand.
    Org {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: org::OrgCmd,
    },
    /// Each application's license position: required, owned, covered, shortfall, surplus,
    /// the money they stand for and why; `--app NAME` for one application in detail.
    #[command(
        after_help = "Exit status: 0, or 2 with --fail-on under when any application \
        is under-licensed (the position is printed first); 1 on any other error."
    )]
    Compliance {
        #[command(flatten)]
        api: admin::ApiArgs,
        /// Only this application, in detail: demand per org node, each license with its used
        /// and idle units, and the uncovered and excluded devices and users by name.
        #[arg(long)]
        app: Option<String>,
        /// With --app: list at most this many uncovered (and excluded) consumers.
        #[arg(long, default_value_t = 50, requires = "app", value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
        /// With --app: skip this many consumers first (the next page).
        #[arg(long, default_value_t = 0, requires = "app", value_parser = clap::value_parser!(i64).range(0..=2_147_483_647))]
        offset: i64,
        /// Exit with status 2 when any application is under-licensed (for scripts and
        /// schedulers); the position is printed first.
        #[arg(long, value_enum, conflicts_with = "trend")]
        fail_on: Option<compliance::FailOn>,
        /// The position as it stood on this day (YYYY-MM-DD); default today.
        #[arg(long, conflicts_with = "trend")]
        as_of: Option<String>,
        /// The daily figures kept by the snapshot_compliance task instead of today's position.
        #[arg(long)]
        trend: bool,
        /// With --trend: from this day (YYYY-MM-DD); default 90 days ago.
        #[arg(long, requires = "trend")]
        since: Option<String>,
        /// On a parent site: only the demand of devices of this site and the sites below it,
        /// against this site's licenses (default: the whole subtree this site holds); with
        /// --app, that application's detail over them; with --trend, each kept day computed
        /// again over them (at most 92 days back).
        #[arg(long, value_name = "CODE")]
        site: Option<String>,
    },
    /// Installations whose use is known and that were not used for a while, with the license
    /// each would free and the cost it ties up; then the applications whose use is unknown.
    Reclaim {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(flatten)]
        args: reclaim::ReclaimArgs,
    },
    /// License certificates: trust an issuer, import, list; keygen, sign and verify-report
    /// work on this machine alone.
    Certificates {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: Option<certificates::CertificatesCmd>,
    },
    /// This site: its alias (which heads every report), its public key, and the device
    /// statuses' relevance for the system-metering report.
    Site {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: Option<site::SiteCmd>,
    },
    /// The site hierarchy: the tree below this site with last sync, lag and counts (the
    /// default); invite a child site; revoke one.
    Sites {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: Option<sites::SitesCmd>,
    },
    /// Users seen running metered programs.
    Users {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(subcommand)]
        cmd: Option<estate::UsersCmd>,
    },
    /// Usage records, or runs with --runs.
    Usage {
        #[command(flatten)]
        api: admin::ApiArgs,
        #[command(flatten)]
        args: usage::UsageArgs,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Usage ingest: simulated agents over HTTP against the raw storage insert rate.
    Ingest(bench::IngestArgs),
    /// Agent overhead: short programs at a steady rate; CPU, memory and capture per watcher.
    Agent(bench_agent::AgentBenchArgs),
    /// Summarisation: generated raw records, both summary tasks, time and peak memory.
    Summarize(bench_summary::SummaryBenchArgs),
    /// Compliance: a generated estate imported, then every application's position computed.
    Compliance(bench_compliance::ComplianceBenchArgs),
    /// A site's whole fleet: N agents' uploads, heartbeats, policy checks and inventories at
    /// their cadence, offered open-loop over HTTP; rates, latency and backlog.
    Fleet(bench_fleet::FleetArgs),
}

/// Server settings. Precedence: flag, then `TALLY_*` variable, then the `--config` file, then
/// the default.
#[derive(Args, Debug, Clone, Default)]
struct ServerArgs {
    /// TOML configuration file.
    #[arg(long, env = "TALLY_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TALLY_LISTEN")]
    listen: Option<SocketAddr>,
    /// sqlite://PATH or postgres://USER@HOST/DB [default: SQLite in the data directory].
    #[arg(long, env = "TALLY_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory for the SQLite database and reports [default: tally-data].
    #[arg(long, env = "TALLY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// This site's three-character code [default: S01].
    #[arg(long, env = "TALLY_SITE_CODE")]
    site_code: Option<String>,
    /// This site's display name.
    #[arg(long, env = "TALLY_SITE_NAME")]
    site_name: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "TALLY_LOG_FORMAT")]
    log_format: Option<String>,
    /// Largest accepted request body in bytes [default: 16 MiB].
    #[arg(long, env = "TALLY_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Seconds before a request is answered 408 [default: 30].
    #[arg(long, env = "TALLY_REQUEST_TIMEOUT_SECS")]
    request_timeout_secs: Option<u64>,
    /// Requests per minute one agent may make before 429 Too Many Requests; 0 = no limit [default: 600].
    #[arg(long, env = "TALLY_AGENT_REQUESTS_PER_MINUTE")]
    agent_requests_per_minute: Option<u32>,
    /// Requests per minute one operator token may make; 0 = no limit [default: 3000].
    #[arg(long, env = "TALLY_OPERATOR_REQUESTS_PER_MINUTE")]
    operator_requests_per_minute: Option<u32>,
    /// Seconds a kept license position stands for new inventory and usage alone; 0 = follow
    /// every one [default: 300].
    #[arg(long, env = "TALLY_POSITION_REFRESH_SECS")]
    position_refresh_secs: Option<u64>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "TALLY_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "TALLY_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Store account and full names as keyed pseudonyms from now on (docs/privacy.md).
    #[arg(long, env = "TALLY_PSEUDONYMIZE_USERS")]
    pseudonymize_users: bool,
    /// The site's pseudonym key file [default: pseudonym.key in the data directory].
    #[arg(long, env = "TALLY_PSEUDONYM_KEY_FILE")]
    pseudonym_key_file: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (warned about at every start).
    #[arg(long, env = "TALLY_INSECURE_HTTP")]
    insecure_http: bool,
    /// The parent site's URL: join it (once, with --parent-token) and sync with it.
    #[arg(long, env = "TALLY_PARENT_URL")]
    parent_url: Option<String>,
    /// The one-time join secret `tally sites invite` printed on the parent.
    #[arg(long, env = "TALLY_PARENT_TOKEN")]
    parent_token: Option<String>,
    /// PEM CA to trust for the parent's certificate besides the system roots.
    #[arg(long, env = "TALLY_PARENT_CA_FILE")]
    parent_ca_file: Option<PathBuf>,
    /// Seconds between syncs with the parent [default: 60].
    #[arg(long, env = "TALLY_SYNC_INTERVAL_SECS")]
    sync_interval_secs: Option<u64>,
    /// File with the bearer token Prometheus sends to /metrics [default: /metrics is off].
    #[arg(long, env = "TALLY_METRICS_TOKEN_FILE")]
    metrics_token_file: Option<PathBuf>,
    /// Transactions writing agent uploads at once, each taking every upload waiting (group
    /// commit); 0 = one transaction per upload [default: 1 on SQLite, 4 on PostgreSQL].
    #[arg(long, env = "TALLY_INGEST_WRITERS")]
    ingest_writers: Option<usize>,
}

impl ServerArgs {
    fn overrides(&self) -> ConfigOverrides {
        ConfigOverrides {
            listen: self.listen,
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
            site_code: self.site_code.clone(),
            site_name: self.site_name.clone(),
            log_format: self.log_format.clone(),
            max_body_bytes: self.max_body_bytes,
            request_timeout_secs: self.request_timeout_secs,
            agent_requests_per_minute: self.agent_requests_per_minute,
            operator_requests_per_minute: self.operator_requests_per_minute,
            position_refresh_secs: self.position_refresh_secs,
            tls_cert_file: self.tls_cert.clone(),
            tls_key_file: self.tls_key.clone(),
            insecure_http: self.insecure_http.then_some(true),
            scheduled_reports: None,
            pseudonymize_users: self.pseudonymize_users.then_some(true),
            pseudonym_key_file: self.pseudonym_key_file.clone(),
            alias: None,
            metering_upload_url: None,
            parent_url: self.parent_url.clone(),
            parent_token: self.parent_token.clone(),
            parent_ca_file: self.parent_ca_file.clone(),
            sync_interval_secs: self.sync_interval_secs,
            metrics_token_file: self.metrics_token_file.clone(),
            ingest_writers: self.ingest_writers,
        }
    }
}

/// A verb that prints ends quietly when its reader goes away (`tally openapi | head`), as Unix
/// tools do: the default action of SIGPIPE, instead of Rust's ignored SIGPIPE and a panic in
/// the first `println!` after the pipe closed. The servers and the agent keep SIGPIPE ignored:
/// for them a closed connection is an error to handle, never the end of the process.
fn quiet_on_closed_pipe(command: &Command) {
    if matches!(
        command,
        Command::Up(_) | Command::Server(_) | Command::Agent(_)
    ) {
        return;
    }
    // SAFETY: called first in main, before any thread exists; it changes only what the
    // process does on SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    quiet_on_closed_pipe(&cli.command);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the async runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => serve::run(args, serve::Mode::Up).await,
            Command::Server(args) => serve::run(args, serve::Mode::Server).await,
            Command::Rules { api, cmd } => admin::rules(&api, cmd).await,
            Command::Tokens { api, cmd } => admin::tokens(&api, cmd).await,
            Command::Enrollment { api, cmd } => admin::enrollment(&api, cmd).await,
            Command::Devices {
                api,
                inventory,
                cmd,
            } => estate::devices(&api, inventory, cmd).await,
            Command::Agents { api } => estate::agents(&api).await,
            Command::Tasks { api, cmd } => tasks::tasks(&api, cmd).await,
            Command::Summaries { api, cmd } => tasks::summaries(&api, cmd).await,
            Command::Users { api, cmd } => estate::users(&api, cmd).await,
            Command::Certificates { api, cmd } => certificates::certificates(&api, cmd).await,
            Command::Site { api, cmd } => site::site(&api, cmd).await,
            Command::Sites { api, cmd } => sites::sites(&api, cmd).await,
            Command::Report(args) => report::report(args).await,
            Command::Import(args) => import::import(args).await,
            Command::Backup(args) => backup::backup(args).await,
            Command::Completions(args) => manuals::completions(args, Cli::command()),
            Command::Man => manuals::man(Cli::command()),
            Command::Restore(args) => backup::restore(args).await,
            Command::Export(args) => export::export(args).await,
            Command::Apps { api, cmd } => licensing::apps(&api, cmd).await,
            Command::Org { api, cmd } => org::org(&api, cmd).await,
            Command::Reclaim { api, args } => reclaim::reclaim(&api, args).await,
            Command::Licenses { api, cmd } => licensing::licenses(&api, cmd).await,
            Command::Compliance {
                api,
                app,
                as_of,
                trend: false,
                fail_on,
                limit,
                offset,
                site,
                ..
            } => {
                let ask = compliance::Ask {
                    app: app.as_deref(),
                    as_of: as_of.as_deref(),
                    fail_on,
                    page: (limit, offset),
                    site: site.as_deref(),
                };
                compliance::compliance(&api, ask).await
            }
            Command::Compliance {
                api,
                app,
                since,
                site,
                ..
            } => licensing::trend(&api, app.as_deref(), since.as_deref(), site.as_deref()).await,
            Command::Usage { api, args } => usage::usage(&api, args).await,
            Command::Bench(BenchCmd::Ingest(args)) => bench::ingest(args).await,
            Command::Bench(BenchCmd::Agent(args)) => bench_agent::agent(args).await,
            Command::Bench(BenchCmd::Summarize(args)) => bench_summary::summarize(args).await,
            Command::Bench(BenchCmd::Compliance(args)) => bench_compliance::compliance(args).await,
            Command::Bench(BenchCmd::Fleet(args)) => bench_fleet::fleet(args).await,
            Command::Agent(agent_setup::AgentCommand {
                cmd: Some(agent_setup::AgentCmd::Install(args)),
                ..
            }) => agent_setup::install(args),
            Command::Agent(agent) => agent_setup::run(agent.run).await,
            Command::Openapi => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                Ok(writeln!(out, "{}", tally_server::openapi_json())?)
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A refusal can quote stored or imported text: shown, never sent to the terminal.
            eprintln!("error: {}", tally_core::escape::controls(&format!("{e:#}")));
            match e.downcast_ref::<compliance::UnderLicensed>() {
                Some(_) => std::process::ExitCode::from(compliance::UNDER_LICENSED_EXIT),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment() {
        // The only test that touches the environment, so no other test races it.
        std::env::set_var("TALLY_SITE_CODE", "ENV");
        std::env::set_var("TALLY_LISTEN", "127.0.0.1:1111");
        let cli = Cli::try_parse_from(["tally", "server", "--listen", "127.0.0.1:2222"]).unwrap();
        std::env::remove_var("TALLY_SITE_CODE");
        std::env::remove_var("TALLY_LISTEN");
        let Command::Server(args) = cli.command else {
            panic!("parsed the wrong verb")
        };
        let o = args.overrides();
        assert_eq!(o.listen, Some("127.0.0.1:2222".parse().unwrap()));
        assert_eq!(o.site_code.as_deref(), Some("ENV"));
    }
}
