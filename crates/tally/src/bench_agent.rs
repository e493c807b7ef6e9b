//! `tally bench agent`: what metering costs a busy machine. It starts a real server in this
//! process, then for each watcher a real `tally agent` process, and starts short programs that a
//! rule meters at a steady rate. It reports the agent's CPU share (from `/proc/<pid>/stat`),
//! its peak resident memory (`VmHWM`) and the fraction of the programs that reached the server.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Args;
use serde_json::Value;
use tally_api::{Client, CreateEnrollmentToken, UsageFilter};
use tally_core::rules::RuleSpec;
use tally_core::SiteCode;
use tally_server::config::Limits;
use tally_server::AppState;

#[derive(Args, Debug, Clone)]
pub struct AgentBenchArgs {
    /// Watchers to measure, one after the other: netlink, poll, or both.
    #[arg(long, default_value = "both")]
    watcher: String,
    /// Programs started per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// How long programs are started for, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// How long each program runs, in milliseconds.
    #[arg(long, default_value_t = 20)]
    run_ms: u64,
    /// Meter none of the programs (the rule names another program): the cost of watching
    /// alone, as on a machine where most programs are not metered.
    #[arg(long)]
    unmetered: bool,
    /// The polling watcher's interval, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
}

/// One watcher's figures.
struct Figures {
    started: usize,
    captured: usize,
    cpu_share: f64,
    peak_rss_kb: u64,
}

pub async fn agent(args: AgentBenchArgs) -> Result<()> {
    let watchers: &[&str] = match args.watcher.as_str() {
        "both" => &["netlink", "poll"],
        "netlink" => &["netlink"],
        "poll" => &["poll"],
        other => bail!("unknown watcher {other:?}; use netlink, poll or both"),
    };
    if args.rate == 0 || args.seconds == 0 {
        bail!("--rate and --seconds must be above zero");
    }
    let temp = tempfile::tempdir().context("temporary directory")?;
    let server = BenchServer::start(temp.path()).await?;
    let name = format!("tally-bench-prog-{}", std::process::id());
    let program = temp.path().join(&name);
    std::fs::copy("/bin/sleep", &program).context("copying /bin/sleep")?;
    let metered = if args.unmetered {
        "tally-bench-unused".to_string()
    } else {
        name
    };
    let rule = RuleSpec {
        file_name: metered,
        ..RuleSpec::named("BenchProg")
    };
    server.api.create_rule(&rule).await?;
    println!(
        "tally bench agent: {} {} programs/s of {} ms for {} s, {} cores",
        args.rate,
        if args.unmetered {
            "unmetered"
        } else {
            "metered"
        },
        args.run_ms,
        args.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("watcher        started  captured  fraction  agent CPU  peak RSS");
    for watcher in watchers {
        let f = measure(&server, temp.path(), &program, watcher, &args).await?;
        println!(
            "{watcher:<13} {:>8}  {:>8}  {:>8.4}  {:>8.2}%  {:>5.1} MB",
            f.started,
            f.captured,
            f.captured as f64 / f.started as f64,
            f.cpu_share * 100.0,
            f.peak_rss_kb as f64 / 1024.0
        );
    }
    server.stop().await
}

async fn measure(
    server: &BenchServer,
    dir: &Path,
    program: &Path,
    watcher: &str,
    args: &AgentBenchArgs,
) -> Result<Figures> {
    let enrol = server
        .api
        .create_enrollment_token(&CreateEnrollmentToken {
            name: watcher.to_string(),
            site_code: None,
            expires_at: None,
            max_uses: Some(1),
        })
        .await?;
    let state = dir.join(format!("agent-{watcher}"));
    let mut agent = Command::new(std::env::current_exe()?)
        .args(["agent", "--server", &server.url, "--watcher", watcher])
        .args(["--enroll-token", &enrol.token])
        .args(["--report-secs", "5", "--policy-secs", "5"])
        .args(["--poll-ms", &args.poll_ms.to_string()])
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the agent")?;
    let creds = state.join("agent.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !creds.exists() {
        if Instant::now() > deadline {
            bail!("the {watcher} agent did not enrol within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let device_id = serde_json::from_slice::<Value>(&std::fs::read(&creds)?)?["device_id"]
        .as_i64()
        .context("device id")?;
    // Let enrolment, the policy and the first inventory settle before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = agent.id();
    // Both watchers' agents run on this machine, so they enrol into one device (one machine
    // keeps its device); only runs that end after this run's start are this watcher's.
    let measured_from = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (cpu_before, wall_before) = (cpu_ticks(pid)?, Instant::now());
    let run = format!("{:.3}", args.run_ms as f64 / 1000.0);
    let program = program.to_path_buf();
    let (rate, seconds) = (args.rate, args.seconds);
    let started =
        tokio::task::spawn_blocking(move || start_programs(&program, &run, rate, seconds))
            .await??;
    let cpu = (cpu_ticks(pid)? - cpu_before) as f64 / 100.0;
    let cpu_share = cpu / wall_before.elapsed().as_secs_f64();
    let peak_rss_kb = peak_rss_kb(pid)?;
    // A graceful stop reports and uploads everything metered.
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    wait_for_exit(&mut agent).await?;
    let mut captured = 0;
    loop {
        let filter = UsageFilter {
            rule: Some("BenchProg".into()),
            since: Some(measured_from.clone()),
            device_id: Some(device_id),
            limit: 1000,
            after: Some(captured as i64),
            ..UsageFilter::default()
        };
        let n = server.api.runs(&filter).await?.len();
        captured += n;
        if n < 1000 {
            break;
        }
    }
    Ok(Figures {
        started,
        captured,
        cpu_share,
        peak_rss_kb,
    })
}

/// Starts `rate` programs a second for `seconds`, reaping them as they end; returns how many
/// were started once all have ended.
fn start_programs(program: &Path, run: &str, rate: u32, seconds: u64) -> Result<usize> {
    let every = Duration::from_secs(1) / rate;
    let begin = Instant::now();
    let total = rate as usize * seconds as usize;
    let mut children: Vec<Child> = Vec::new();
    for n in 0..total {
        let due = begin + every * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        children.push(Command::new(program).arg(run).spawn()?);
        children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
    }
    for mut c in children {
        c.wait()?;
    }
    // The exit of the last one reaches the agent.
    std::thread::sleep(Duration::from_millis(500));
    Ok(total)
}

async fn wait_for_exit(agent: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while agent.try_wait()?.is_none() {
        if Instant::now() > deadline {
            agent.kill()?;
            bail!("the agent did not stop within 60 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &stat[stat.rfind(')').context("stat")? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3: utime is field 14, stime field 15.
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn peak_rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/<pid>/status")
}

/// Opens the database at `url`, or a new SQLite file in `dir`, with the bench's site
/// registered.
pub async fn bench_store(
    url: Option<&str>,
    dir: &Path,
) -> Result<(std::sync::Arc<dyn tally_store::Store>, SiteCode)> {
    let fresh = format!("sqlite://{}", dir.join("bench.db").display());
    let store = tally_store::open(url.unwrap_or(&fresh)).await?;
    let site = SiteCode::parse("BEN").expect("valid code");
    store
        .put_site(&tally_core::Site::central(site.clone(), "Bench"))
        .await?;
    Ok((store, site))
}

/// A real server in this process, with an admin token.
pub struct BenchServer {
    pub url: String,
    /// The admin API, as this server's admin.
    pub api: Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BenchServer {
    /// On a fresh SQLite database in `dir`.
    async fn start(dir: &Path) -> Result<Self> {
        let (store, site) = bench_store(None, dir).await?;
        Self::serve(store, site).await
    }

    /// On `store`, as site `site`.
    pub async fn serve(
        store: std::sync::Arc<dyn tally_store::Store>,
        site: SiteCode,
    ) -> Result<Self> {
        let (token, hash) = tally_server::auth::generate_token();
        store
            .create_operator_token("bench", tally_core::Role::Admin, &hash, Utc::now(), None)
            .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let refresh = Duration::from_secs(tally_server::config::DEFAULT_POSITION_REFRESH_SECS);
        let service = tally_service::Service::new(store, site).with_position_refresh(refresh);
        let state = AppState::with_service(service);
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            tally_server::serve(listener, state, &Limits::default(), shutdown).await
        });
        Ok(Self {
            api: Client::new(&url, Some(token), None)?,
            url,
            stop,
            task,
        })
    }

    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }
}
