//! `tally bench fleet`: the steady load a whole site's agents put on its server. It seeds N
//! agents straight into a fresh database (a million enrolments over HTTP would take longer
//! than the measurement), starts a real server on loopback, and offers what those agents send
//! at their default cadence (usage uploads, heartbeats, policy checks, inventories) over real
//! HTTP. The load is open-loop: every request has a scheduled time, its latency counts from
//! that time, and what the server cannot take in time waits in a backlog, so a slow server
//! shows as latency and backlog instead of quietly lowering the load (no coordinated omission).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use tokio::sync::Semaphore;

use tally_core::wire::v1::{
    Hardware, Heartbeat, InstalledSoftware, Inventory, LocalAccount, UsageAck, UsageBatch,
    UsageRecordV1, UserRef,
};
use tally_core::{FileInfo, SiteCode};
use tally_service::agents::{
    HEARTBEAT_INTERVAL_SECS, INVENTORY_INTERVAL_SECS, REPORT_INTERVAL_SECS,
};
use tally_store::{NewAgent, Store};

mod report;

use report::Run;

/// How often an agent checks its policy by default: hourly, answered `304` while unchanged.
const POLICY_INTERVAL_SECS: u64 = tally_agent::config::DEFAULT_POLICY_SECS;
/// Agents seeded per transaction: big enough that seeding a million takes seconds, small
/// enough that the rows of one transaction stay a few MB.
const SEED_CHUNK: u64 = 20_000;
/// How long requests still in flight when the window closes may take to finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// The most one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Programs and accounts the simulated agents report: a site's few dozen metered programs
/// and the users behind them.
const PROGRAMS: u64 = 40;
const USERS: u64 = 50;

#[derive(Args, Debug, Clone)]
pub struct FleetArgs {
    /// Database [default: a new SQLite file in a temporary directory]. A PostgreSQL database
    /// should be empty: the bench adds its devices, agents and usage there.
    #[arg(long)]
    database_url: Option<String>,
    /// Agents in the site, seeded straight into the database before the server starts.
    #[arg(long, default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..=2_000_000))]
    agents: u64,
    /// The agents' reporting cycle in seconds [default: the agent's]. A shorter cycle
    /// compresses time: heartbeat, policy and inventory intervals shrink in proportion.
    #[arg(long, default_value_t = REPORT_INTERVAL_SECS,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    cycle_secs: u64,
    /// The agents' heartbeat interval in seconds at the real cadence [default: the agent's],
    /// scaled with --cycle-secs like the others: what a longer interval would save.
    #[arg(long, default_value_t = HEARTBEAT_INTERVAL_SECS,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    heartbeat_secs: u64,
    /// How long the load is offered, in minutes (fractions allowed, up to a day).
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    /// Requests in flight at most; when all are taken, due requests wait (the backlog).
    #[arg(long, default_value_t = 512,
        value_parser = clap::value_parser!(u64).range(1..=65_536))]
    in_flight: u64,
    /// The server's group-commit writers, as `tally server --ingest-writers`: 0 writes each
    /// upload and heartbeat in a transaction of its own [default: 1 on SQLite, 4 on
    /// PostgreSQL].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=64))]
    ingest_writers: Option<u64>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// What an agent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Upload,
    Heartbeat,
    Policy,
    Inventory,
}

const KINDS: [Kind; 4] = [Kind::Upload, Kind::Heartbeat, Kind::Policy, Kind::Inventory];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Upload => "upload",
            Kind::Heartbeat => "heartbeat",
            Kind::Policy => "policy",
            Kind::Inventory => "inventory",
        }
    }

    /// Its interval at the default cadence, in seconds.
    fn default_interval(self) -> u64 {
        match self {
            Kind::Upload => REPORT_INTERVAL_SECS,
            Kind::Heartbeat => HEARTBEAT_INTERVAL_SECS,
            Kind::Policy => POLICY_INTERVAL_SECS,
            Kind::Inventory => INVENTORY_INTERVAL_SECS,
        }
    }
}

/// One request due: which agent sends what, when (seconds after the start), in which of its
/// periods (numbered from the start).
#[derive(Debug, Clone, Copy)]
struct Event {
    kind: Kind,
    at: f64,
    agent: u64,
    period: u64,
}

/// One kind's requests from all agents: each agent once per interval, the agents' phases
/// spread evenly over it in a scrambled order (their jitter). The j-th request is due at
/// `j × interval / N`, from agent `(j mod N) × mult + shift mod N`; `mult` is coprime with N,
/// so each period is a permutation of the agents.
struct Stream {
    kind: Kind,
    gap: f64,
    n: u64,
    mult: u64,
    shift: u64,
    next: u64,
}

impl Stream {
    fn new(kind: Kind, interval: f64, n: u64, salt: u64) -> Self {
        let mut mult = (1_000_003 + salt) % n;
        while gcd(mult, n) != 1 {
            mult = (mult + 1) % n;
        }
        Self {
            kind,
            gap: interval / n as f64,
            n,
            mult,
            shift: mix(salt) % n,
            next: 0,
        }
    }

    fn at(&self) -> f64 {
        self.next as f64 * self.gap
    }

    fn take(&mut self) -> Event {
        let j = self.next;
        self.next += 1;
        Event {
            kind: self.kind,
            at: j as f64 * self.gap,
            agent: ((j % self.n) * self.mult + self.shift) % self.n,
            period: j / self.n,
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// SplitMix64: a cheap, well-spread hash that makes each agent's records differ.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// All agents' requests in time order.
struct Schedule {
    streams: Vec<Stream>,
}

impl Schedule {
    fn new(n: u64, intervals: &[f64; 4]) -> Self {
        let streams = KINDS
            .iter()
            .zip(intervals)
            .enumerate()
            .map(|(i, (kind, interval))| Stream::new(*kind, *interval, n, i as u64 * 7_777))
            .collect();
        Self { streams }
    }

    /// The next request due before `window` seconds, if any.
    fn next_before(&mut self, window: f64) -> Option<Event> {
        let first = self
            .streams
            .iter_mut()
            .min_by(|a, b| a.at().total_cmp(&b.at()))?;
        (first.at() < window).then(|| first.take())
    }
}

/// Records in one upload: 6 to 12, as a machine's cycle of a few programs and users.
fn records_in(agent: u64, period: u64) -> u64 {
    6 + mix(agent ^ (period << 24)) % 7
}

/// The site's simulated agents: credentials derived from per-run prefixes, so a million
/// agents need no table of secrets.
struct Keys {
    id_prefix: String,
    secret_prefix: String,
}

impl Keys {
    fn new() -> Self {
        let (secret, _) = tally_server::auth::generate_token();
        Self {
            id_prefix: format!("fl{}_", &secret[secret.len() - 8..]),
            secret_prefix: secret,
        }
    }

    fn id(&self, agent: u64) -> String {
        format!("{}{agent}", self.id_prefix)
    }

    fn secret(&self, agent: u64) -> String {
        format!("{}{agent:08}", self.secret_prefix)
    }

    fn bearer(&self, agent: u64) -> String {
        format!("{}.{}", self.id(agent), self.secret(agent))
    }
}

/// Each agent and its own device, in big transactions; returns how long that took.
async fn seed(store: &Arc<dyn Store>, site: &SiteCode, n: u64, keys: &Keys) -> Result<Duration> {
    let started = Instant::now();
    let now = Utc::now();
    for from in (0..n).step_by(SEED_CHUNK as usize) {
        let agents: Vec<NewAgent> = (from..n.min(from + SEED_CHUNK))
            .map(|a| NewAgent {
                agent_id: keys.id(a),
                secret_hash: tally_server::auth::hash_token(&keys.secret(a)),
                host_name: format!("{}host{a}", keys.id_prefix),
                fqdn: None,
                os: Some("Linux".into()),
                serial: None,
                machine_id: None,
            })
            .collect();
        store
            .seed_agents(site, &agents, now)
            .await
            .context("seeding agents")?;
    }
    Ok(started.elapsed())
}

/// What one kind of request came to.
#[derive(Debug, Default)]
struct Tally {
    /// Due within the window.
    offered: u64,
    sent: u64,
    /// Answered with success, at any time and within the window.
    ok: u64,
    ok_in_window: u64,
    /// From the scheduled time to the whole answer read, in microseconds.
    latencies_us: Vec<u32>,
    /// Failures by HTTP status, or by what went wrong before one came.
    errors: BTreeMap<String, u64>,
    records_offered: u64,
    /// Records the server acknowledged as newly stored (uploads only).
    records_stored: u64,
    records_stored_in_window: u64,
}

/// What the load generator shares with its requests.
struct Fleet {
    url: String,
    /// One client per loopback source address, taken in turn: the server lets one address
    /// hold only `MAX_CONNECTIONS_PER_CLIENT` connections, and a real fleet's agents each
    /// come from their own.
    clients: Vec<reqwest::Client>,
    turn: std::sync::atomic::AtomicUsize,
    keys: Keys,
    /// The policy's ETag, as every agent of the site holds it after its first check.
    etag: String,
    cycle_secs: f64,
    start: Instant,
    start_wall: DateTime<Utc>,
    window_end: Instant,
    tallies: Mutex<[Tally; 4]>,
}

/// How one request ended.
enum Answer {
    Ok { stored: u64 },
    Failed(String),
}

impl Fleet {
    /// Sends `event` (due at `due`) and counts how it went.
    async fn send(&self, event: Event, due: Instant) {
        let answer = match self.request(event).await {
            Ok(answer) => answer,
            Err(e) if e.is_timeout() => Answer::Failed("timeout".into()),
            Err(e) if e.is_connect() => Answer::Failed("connect".into()),
            Err(e) => {
                // The cause, not the URL: one key per way of failing.
                let mut cause: &dyn std::error::Error = &e;
                while let Some(inner) = cause.source() {
                    cause = inner;
                }
                Answer::Failed(format!("transport: {cause}"))
            }
        };
        let done = Instant::now();
        let latency = done.saturating_duration_since(due).as_micros();
        let mut tallies = self.tallies.lock().expect("tallies");
        let t = &mut tallies[event.kind as usize];
        t.latencies_us
            .push(u32::try_from(latency).unwrap_or(u32::MAX));
        match answer {
            Answer::Ok { stored } => {
                t.ok += 1;
                t.records_stored += stored;
                if done <= self.window_end {
                    t.ok_in_window += 1;
                    t.records_stored_in_window += stored;
                }
            }
            Answer::Failed(why) => *t.errors.entry(why).or_default() += 1,
        }
    }

    async fn request(&self, e: Event) -> reqwest::Result<Answer> {
        let url = |path: &str| format!("{}/api/v1/agent/{path}", self.url);
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let http = &self.clients[turn % self.clients.len()];
        let request = match e.kind {
            Kind::Upload => http.post(url("usage")).json(&self.batch(e)),
            Kind::Heartbeat => http.post(url("heartbeat")).json(&Heartbeat {
                agent_version: "tally-bench-fleet".into(),
                sent_at: Utc::now(),
                spooled_records: Some(0),
            }),
            Kind::Policy => http.get(url("policy")).header("if-none-match", &self.etag),
            Kind::Inventory => http.post(url("inventory")).json(&inventory(e)),
        };
        let response = request
            .bearer_auth(self.keys.bearer(e.agent))
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !(status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED) {
            return Ok(Answer::Failed(status.as_u16().to_string()));
        }
        let stored = match e.kind {
            Kind::Upload => match serde_json::from_slice::<UsageAck>(&body) {
                Ok(ack) => ack.stored,
                Err(_) => return Ok(Answer::Failed("unreadable acknowledgement".into())),
            },
            _ => 0,
        };
        Ok(Answer::Ok { stored })
    }

    /// One agent's records of one cycle: programs run one after another over the cycle
    /// before the upload.
    fn batch(&self, e: Event) -> UsageBatch {
        let count = records_in(e.agent, e.period);
        let due = self.start_wall + chrono::Duration::microseconds((e.at * 1e6) as i64);
        let slot = self.cycle_secs / count as f64;
        let records = (0..count)
            .map(|k| {
                let h = mix(e.agent ^ (e.period << 24) ^ (k << 48));
                let program = format!("fleetprog{}", h % PROGRAMS);
                let from = self.cycle_secs - k as f64 * slot;
                let start = due - chrono::Duration::microseconds((from * 1e6) as i64);
                let end = start + chrono::Duration::microseconds((slot * 0.8e6) as i64);
                UsageRecordV1::whole_run(
                    format!("p{}-{k}", e.period),
                    FileInfo {
                        file_name: program.clone(),
                        original_file_name: program,
                        version: format!("{}.0", h % 3),
                        product_name: "Fleet".into(),
                        publisher: "Tally Bench".into(),
                        language: 1033,
                    },
                    UserRef {
                        account: format!("fleetuser{}", (h >> 16) % USERS),
                        full_name: None,
                    },
                    start,
                    end,
                )
            })
            .collect();
        UsageBatch {
            batch_id: format!("fleet-p{}", e.period),
            device_id: None,
            records,
            dropped: 0,
        }
    }
}

/// A machine's inventory: 25 of 400 packages, two accounts.
fn inventory(e: Event) -> Inventory {
    let software = (0..25)
        .map(|p| InstalledSoftware {
            name: format!("package-{}", (e.agent + p * 16) % 400),
            version: format!("{}.{}", p % 4, e.period % 3),
            publisher: "Tally Bench".into(),
            executables: vec![format!("fleetprog{}", (e.agent + p) % PROGRAMS)],
        })
        .collect();
    let account = |name: String, uid: u32, service: bool| LocalAccount {
        name,
        uid,
        full_name: None,
        shell: "/bin/bash".into(),
        service_account: service,
        reason: service.then(|| "uid 0 (system account)".into()),
    };
    Inventory {
        hash: format!("fleet-{}-{}", e.agent, e.period),
        os: Some("Linux".into()),
        hardware: Hardware {
            cores: Some(4),
            sockets: Some(1),
            ..Hardware::default()
        },
        software,
        accounts: vec![
            account("root".into(), 0, true),
            account(format!("fleetuser{}", e.agent % USERS), 1000, false),
        ],
    }
}

/// The site server under test, in this process, on loopback.
struct Server {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(
        store: Arc<dyn Store>,
        site: SiteCode,
        ingest: tally_service::group_commit::IngestMode,
    ) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = tally_service::Service::new(store, site).with_ingest_mode(ingest);
        let state = tally_server::AppState::with_service(service);
        let limits = tally_server::config::Limits::default();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            tally_server::serve(listener, state, &limits, shutdown).await
        });
        Ok(Self { url, stop, task })
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }
}

/// What the window left behind: requests due and never sent, and how the rest ended.
struct Offered {
    backlog: [u64; 4],
    in_flight_at_end: u64,
    drain: Duration,
}

/// Sends every request due in the window at its time, at most `in_flight` at once.
async fn offer(fleet: Arc<Fleet>, schedule: &mut Schedule, window: f64, in_flight: u32) -> Offered {
    let slots = Arc::new(Semaphore::new(in_flight as usize));
    let mut unsent = None;
    while let Some(event) = schedule.next_before(window) {
        let due = fleet.start + Duration::from_secs_f64(event.at);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let end = fleet.window_end.into();
        let Ok(Ok(slot)) = tokio::time::timeout_at(end, slots.clone().acquire_owned()).await else {
            unsent = Some(event);
            break;
        };
        {
            let mut tallies = fleet.tallies.lock().expect("tallies");
            let t = &mut tallies[event.kind as usize];
            t.offered += 1;
            t.sent += 1;
            if event.kind == Kind::Upload {
                t.records_offered += records_in(event.agent, event.period);
            }
        }
        let fleet = fleet.clone();
        tokio::spawn(async move {
            fleet.send(event, due).await;
            drop(slot);
        });
    }
    let mut backlog = [0; 4];
    {
        let mut tallies = fleet.tallies.lock().expect("tallies");
        let rest = std::iter::from_fn(|| schedule.next_before(window));
        for event in unsent.into_iter().chain(rest) {
            let t = &mut tallies[event.kind as usize];
            t.offered += 1;
            backlog[event.kind as usize] += 1;
            if event.kind == Kind::Upload {
                t.records_offered += records_in(event.agent, event.period);
            }
        }
    }
    // Wait for the window's end even when the schedule ran out before it.
    tokio::time::sleep_until(fleet.window_end.into()).await;
    let in_flight_at_end = (in_flight as usize - slots.available_permits()) as u64;
    let draining = Instant::now();
    let _ = tokio::time::timeout(DRAIN_LIMIT, slots.acquire_many(in_flight)).await;
    Offered {
        backlog,
        in_flight_at_end,
        drain: draining.elapsed(),
    }
}

/// HTTP clients enough for `in_flight` requests at once, each from its own loopback address
/// (127.0.0.2, 127.0.0.3, …) and, taken in turn, on about half the connections the server
/// allows one address.
fn clients(in_flight: u64) -> Result<Vec<reqwest::Client>> {
    let per_client = (tally_server::transport::MAX_CONNECTIONS_PER_CLIENT / 2).max(1) as u64;
    (0..in_flight.div_ceil(per_client))
        .map(|i| {
            let address = std::net::Ipv4Addr::from(
                u32::from(std::net::Ipv4Addr::new(127, 0, 0, 2)) + i as u32,
            );
            Ok(reqwest::Client::builder()
                .local_address(std::net::IpAddr::V4(address))
                .pool_max_idle_per_host(per_client as usize)
                .timeout(REQUEST_TIMEOUT)
                .build()?)
        })
        .collect()
}

/// The policy's ETag, read once as agent 0.
async fn policy_etag(http: &reqwest::Client, url: &str, keys: &Keys) -> Result<String> {
    let response = http
        .get(format!("{url}/api/v1/agent/policy"))
        .bearer_auth(keys.bearer(0))
        .send()
        .await?
        .error_for_status()
        .context("the first policy check")?;
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .context("the policy came without an ETag")?;
    Ok(etag.to_string())
}

pub async fn fleet(args: FleetArgs) -> Result<()> {
    if !(args.minutes > 0.0 && args.minutes <= 1440.0) {
        bail!("--minutes must be above 0 and at most 1440 (a day)");
    }
    let temp = tempfile::tempdir().context("temporary directory")?;
    let (store, site) =
        crate::bench_agent::bench_store(args.database_url.as_deref(), temp.path()).await?;
    let keys = Keys::new();
    let seeding = seed(&store, &site, args.agents, &keys).await?;
    let ingest =
        crate::serve::ingest_mode(args.ingest_writers.map(|w| w as usize), store.backend());
    let server = Server::start(store.clone(), site, ingest).await?;
    let clients = clients(args.in_flight)?;
    let etag = policy_etag(&clients[0], &server.url, &keys).await?;
    let scale = args.cycle_secs as f64 / REPORT_INTERVAL_SECS as f64;
    let intervals = KINDS.map(|k| match k {
        Kind::Heartbeat => args.heartbeat_secs as f64 * scale,
        _ => k.default_interval() as f64 * scale,
    });
    let window = args.minutes * 60.0;
    let start = Instant::now();
    let fleet = Arc::new(Fleet {
        url: server.url.clone(),
        clients,
        turn: Default::default(),
        keys,
        etag,
        cycle_secs: args.cycle_secs as f64,
        start,
        start_wall: Utc::now(),
        window_end: start + Duration::from_secs_f64(window),
        tallies: Mutex::default(),
    });
    let mut schedule = Schedule::new(args.agents, &intervals);
    let offered = offer(fleet.clone(), &mut schedule, window, args.in_flight as u32).await;
    let counted = store.usage_pending(i64::MIN).await?;
    server.stop().await?;
    let run = Run {
        backend: store.backend(),
        ingest,
        args: &args,
        intervals,
        seeding,
        offered,
        counted,
    };
    let tallies = std::mem::take(&mut *fleet.tallies.lock().expect("tallies"));
    let figures = run.report(tallies);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        report::print_report(&figures);
    }
    Ok(())
}
