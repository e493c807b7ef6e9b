//! `tally bench compliance`: imports a generated estate (by default 100,000 devices, 2,000,000
//! installations, 10,000,000 usage sessions, 500 applications) through the same checks and
//! the same one-transaction import `tally import` uses, then times the full compliance
//! computation. The baseline, in the same run, is a plain read of what the computation must
//! read: every installed-software row and every session of the metering periods.

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use clap::Args;
use tally_core::import::{
    ApplicationRow, Batch, DeviceRow, InstallationRow, LicenseRow, OrgNodeRow, Origin, Pool,
    SessionRow, UserRow,
};
use tally_core::{AssignmentType, DeviceStatus, Metric, UserStatus};
use tally_store::prelude::*;

use crate::bench_summary::{peak_rss_mb, reset_peak_rss};

#[derive(Args, Debug, Clone)]
pub struct ComplianceBenchArgs {
    /// Database to use [default: a new SQLite file in a temporary directory]. The estate is
    /// imported only into a database without applications; otherwise the stored one is used.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 100_000)]
    devices: usize,
    #[arg(long, default_value_t = 2_000_000)]
    installations: usize,
    #[arg(long, default_value_t = 10_000_000)]
    sessions: usize,
    #[arg(long, default_value_t = 500)]
    apps: usize,
    /// Also write each application's required quantity here (CSV: application, metric,
    /// required), for an independent computation to compare against
    /// (`crates/tally/benches/compliance_duckdb.py`).
    #[arg(long)]
    required_out: Option<std::path::PathBuf>,
}

/// The day positions are computed for; sessions spread over the 90 days before it.
fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 31).expect("a date")
}

pub async fn compliance(args: ComplianceBenchArgs) -> Result<()> {
    let temp = tempfile::tempdir().context("temporary directory")?;
    let (store, site) =
        crate::bench_agent::bench_store(args.database_url.as_deref(), temp.path()).await?;
    println!(
        "tally bench compliance: backend {}, {} devices, {} installations, {} sessions, {} applications",
        store.backend(),
        args.devices,
        args.installations,
        args.sessions,
        args.apps
    );
    if store.applications().await?.is_empty() {
        let started = Instant::now();
        let batch = generate(&args);
        println!(
            "generated       : {:>8.1} s",
            started.elapsed().as_secs_f64()
        );
        reset_peak_rss();
        let started = Instant::now();
        let problems =
            tally_core::import::validate(&batch, &store.import_known().await?, chrono::Utc::now());
        anyhow::ensure!(
            problems.is_empty(),
            "generated rows refused: {:?}",
            &problems[..1]
        );
        store
            .import(&batch, &site, Utc::now(), &|_| {}, None)
            .await?;
        println!(
            "import          : {:>8.1} s, peak RSS {:.0} MB (checks and one transaction)",
            started.elapsed().as_secs_f64(),
            peak_rss_mb()
        );
    } else {
        println!("using the estate already stored");
    }
    reset_peak_rss();
    let started = Instant::now();
    let rows = read_inputs(store.as_ref()).await?;
    println!(
        "baseline read   : {:>8.1} s, peak RSS {:.0} MB ({} software rows, {} sessions)",
        started.elapsed().as_secs_f64(),
        peak_rss_mb(),
        rows.0,
        rows.1
    );
    reset_peak_rss();
    let started = Instant::now();
    let positions = tally_service::compliance::compute(store.as_ref(), as_of(), None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "compliance      : {:>8.1} s, peak RSS {:.0} MB, {} applications",
        started.elapsed().as_secs_f64(),
        peak_rss_mb(),
        positions.len()
    );
    let under = positions.iter().filter(|p| p.shortfall > 0).count();
    let required: i64 = positions.iter().map(|p| p.required).sum();
    println!("                  {under} under-licensed; {required} units required in all");
    over_the_api(store.clone(), site).await?;
    if let Some(path) = &args.required_out {
        let mut out = csv::Writer::from_path(path)?;
        out.write_record(["application", "metric", "required"])?;
        for p in &positions {
            let required = p.required.to_string();
            out.write_record([p.application.as_str(), p.metric.as_str(), &required])?;
        }
        out.flush()?;
        println!("required quantities written to {}", path.display());
    }
    Ok(())
}

/// The position as `GET /api/v1/compliance` answers it from a real server in this process:
/// the summary of every application (timed, with its size) computed by the server, then asked
/// again with nothing changed (the server keeps positions until their data changes), again
/// after an agent's run is recorded (kept for the refresh's five minutes), then one
/// application's detail page of 100 consumers from the kept positions.
async fn over_the_api(store: std::sync::Arc<dyn Store>, site: tally_core::SiteCode) -> Result<()> {
    let server_store = store.as_ref();
    let server = crate::bench_agent::BenchServer::serve(store.clone(), site).await?;
    let day = as_of().to_string();
    let started = Instant::now();
    let positions = server.api.compliance(None, Some(&day)).await?;
    let took = started.elapsed().as_secs_f64();
    let size = serde_json::to_vec(&positions)?.len();
    println!(
        "over the API    : {took:>8.1} s, {:.1} kB summary for {} applications (computed)",
        size as f64 / 1000.0,
        positions.len()
    );
    let started = Instant::now();
    let again = server.api.compliance(None, Some(&day)).await?;
    anyhow::ensure!(
        again == positions,
        "the kept position differs from the computed one"
    );
    println!(
        "asked again     : {:>8.3} s (kept: nothing changed since)",
        started.elapsed().as_secs_f64()
    );
    observe_a_session(server_store, &positions).await?;
    let started = Instant::now();
    server.api.compliance(None, Some(&day)).await?;
    println!(
        "after a new run : {:>8.3} s (kept: an agent's usage waits for the refresh)",
        started.elapsed().as_secs_f64()
    );
    if let Some(app) = positions.iter().max_by_key(|p| p.shortfall) {
        let started = Instant::now();
        let detail = server
            .api
            .compliance_detail(&app.application, (Some(&day), None), (100, 0))
            .await?;
        println!(
            "one detail page : {:>8.3} s, {} ({} uncovered, 100 listed), {:.1} kB (kept)",
            started.elapsed().as_secs_f64(),
            app.application,
            detail.uncovered_consumers.total,
            serde_json::to_vec(&detail)?.len() as f64 / 1000.0
        );
    }
    server.stop().await
}

/// One run of the first application recorded as a session, as the hourly task records an
/// agent's usage: what a busy site receives all day.
async fn observe_a_session(store: &dyn Store, positions: &[tally_api::AppPosition]) -> Result<()> {
    let (Some(app), Some(device)) = (
        positions.first(),
        store.devices(tally_store::Page::default()).await?.pop(),
    ) else {
        return Ok(());
    };
    let Some(user) = store.users(tally_store::Page::default()).await?.pop() else {
        return Ok(());
    };
    let end = Utc::now();
    let run = tally_core::sessions::RunSession {
        application_id: app.application_id,
        meter_data_id: format!("bench-{}", end.timestamp_micros()),
        device_id: device.id,
        user_id: user.id,
        start: end - chrono::Duration::minutes(5),
        end,
    };
    store.put_run_sessions(&[run]).await?;
    Ok(())
}

/// What the computation has to read, read and dropped: the floor it cannot go below. Every
/// installed title and its devices, and the sessions of the usage-counting applications;
/// each part is timed.
async fn read_inputs(store: &dyn Store) -> Result<(usize, usize)> {
    let started = Instant::now();
    let on = as_of().and_hms_opt(0, 0, 0).expect("midnight").and_utc() + chrono::Duration::days(1);
    let titles = store.software_titles(on).await?;
    let mut installs = 0;
    for (name, publisher, version) in &titles {
        installs += store
            .devices_with((name, publisher, version), on)
            .await?
            .len();
    }
    let software = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut sessions = 0;
    for app in store.applications().await? {
        if tally_core::compliance::counts_usage(app.application.metric) {
            let period =
                tally_core::compliance::metering_period(app.application.metering_period, as_of());
            sessions += store.sessions(app.application.id, period).await?.len();
        }
    }
    println!(
        "  of which       : {software:.1} s installations ({} titles), {:.1} s sessions",
        titles.len(),
        started.elapsed().as_secs_f64()
    );
    Ok((installs, sessions))
}

/// Metrics of the generated applications, in proportion.
const METRICS: [Metric; 10] = [
    Metric::Installations,
    Metric::Installations,
    Metric::Installations,
    Metric::Installations,
    Metric::ProcessorCores,
    Metric::Pvu,
    Metric::Users,
    Metric::Devices,
    Metric::ConcurrentUsers,
    Metric::ConcurrentDevices,
];

/// Every generated row's origin, sharing one file name as rows read from a file do.
fn at(line: usize) -> Origin {
    static GENERATED: std::sync::LazyLock<std::sync::Arc<str>> =
        std::sync::LazyLock::new(|| "generated".into());
    Origin {
        file: GENERATED.clone(),
        line,
    }
}

fn generate(args: &ComplianceBenchArgs) -> Batch {
    let users = (args.devices / 2).max(1);
    let mut batch = Batch {
        org_nodes: org_nodes(),
        ..Default::default()
    };
    batch.devices = (0..args.devices)
        .map(|d| {
            let row = DeviceRow {
                host_name: format!("pc{d}"),
                org_node: Some(format!("dept{}", d % 100)),
                status: Some(match d % 33 {
                    0 => DeviceStatus::Retired,
                    _ => DeviceStatus::Active,
                }),
                sockets: Some(1 + (d % 2) as i32),
                cores: Some(2 + (d % 8) as i32 * 2),
                pvu_per_core: Some(70),
                os: None,
                serial: None,
                management_type: None,
            };
            (at(d + 2), row)
        })
        .collect();
    batch.users = (0..users)
        .map(|u| {
            let row = UserRow {
                account: format!("user{u}"),
                full_name: None,
                status: Some(match u % 29 {
                    0 => UserStatus::Inactive,
                    _ => UserStatus::Active,
                }),
                service_account: Some(u.is_multiple_of(50)),
                org_node: Some(format!("dept{}", u % 100)),
                cannot_change_password: None,
            };
            (at(u + 2), row)
        })
        .collect();
    batch.applications = (0..args.apps)
        .map(|a| (at(a + 2), application(a)))
        .collect();
    // Names shared as `tally import` shares them, so the import holds what it would.
    let mut pool = Pool::default();
    batch.installations = installations(args, &mut pool);
    batch.sessions = sessions(args, users, &mut pool);
    batch.licenses = (0..args.apps).flat_map(|a| licenses(a, args)).collect();
    batch
}

fn org_nodes() -> Vec<(Origin, OrgNodeRow)> {
    let root = OrgNodeRow {
        name: "Company".into(),
        parent: None,
    };
    let regions = (0..10).map(|r| OrgNodeRow {
        name: format!("region{r}"),
        parent: Some("Company".into()),
    });
    let depts = (0..100).map(|d| OrgNodeRow {
        name: format!("dept{d}"),
        parent: Some(format!("region{}", d % 10)),
    });
    std::iter::once(root)
        .chain(regions)
        .chain(depts)
        .enumerate()
        .map(|(i, r)| (at(i + 2), r))
        .collect()
}

fn application(a: usize) -> ApplicationRow {
    ApplicationRow {
        name: format!("app{a}"),
        publisher: format!("vendor{}", a % 40),
        metric: METRICS[a % METRICS.len()],
        period_days: a.is_multiple_of(3).then_some(30),
        total_user_metric: None,
        software: Some(format!("app{a}-*")),
        software_publisher: None,
        software_version: None,
        metering_rule: None,
    }
}

/// Spacing of one device's applications: installation `n` puts application
/// `(k * stride + d) % apps` on device `d = n % devices` (`k = n / devices`), so no device
/// gets one application twice.
fn stride(args: &ComplianceBenchArgs) -> usize {
    let per_device = (args.installations / args.devices).max(1);
    (args.apps / per_device).max(1)
}

fn installations(args: &ComplianceBenchArgs, pool: &mut Pool) -> Vec<(Origin, InstallationRow)> {
    let stride = stride(args);
    (0..args.installations)
        .map(|n| {
            let d = n % args.devices;
            let a = ((n / args.devices) * stride + d) % args.apps;
            let row = InstallationRow {
                host_name: pool.name(&format!("pc{d}")),
                software: pool.name(&format!("app{a}-suite")),
                version: pool.name("1.0"),
                publisher: pool.name(&format!("vendor{}", a % 40)),
                installed_on: None,
            };
            (at(n + 2), row)
        })
        .collect()
}

fn sessions(
    args: &ComplianceBenchArgs,
    users: usize,
    pool: &mut Pool,
) -> Vec<(Origin, SessionRow)> {
    let end = Utc.from_utc_datetime(&as_of().and_hms_opt(23, 0, 0).expect("a time"));
    let span = 90 * 24 * 60;
    let (stride, per_device) = (stride(args), (args.installations / args.devices).max(1));
    (0..args.sessions)
        .map(|n| {
            let d = (n * 7) % args.devices;
            let a = ((n % per_device) * stride + d) % args.apps;
            let start = end - Duration::minutes(((n * 7919) % span) as i64);
            let row = SessionRow {
                application: pool.name(&format!("app{a}")),
                host_name: pool.name(&format!("pc{d}")),
                account: pool.name(&format!("user{}", d % users)),
                start,
                end: start + Duration::minutes(5 + (n % 115) as i64),
            };
            (at(n + 2), row)
        })
        .collect()
}

/// An organisation-wide pool, a department's own, and for core-licensed applications
/// (computer licenses only) licenses for 200 computers.
fn licenses(a: usize, args: &ComplianceBenchArgs) -> Vec<(Origin, LicenseRow)> {
    let metric = METRICS[a % METRICS.len()];
    let license = |quantity: i64, to: AssignmentType, target: Option<String>| LicenseRow {
        assigned_to: target,
        unit_cost: Some(format!("{}.00", 10 + a % 90)),
        currency: Some("EUR".into()),
        ..LicenseRow::new(format!("app{a}"), metric, quantity, to)
    };
    let rows = match metric
        .allowed_assignments()
        .contains(&AssignmentType::Organization)
    {
        true => {
            let typical = (args.installations / args.apps) as i64;
            vec![
                license(typical * 3 / 4, AssignmentType::Organization, None),
                license(
                    50,
                    AssignmentType::Organization,
                    Some(format!("dept{}", a % 100)),
                ),
            ]
        }
        false => (0..200)
            .map(|i| {
                let d = (a + i * 500) % args.devices;
                license(8, AssignmentType::Computer, Some(format!("pc{d}")))
            })
            .collect(),
    };
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| (at(a * 1000 + i + 2), r))
        .collect()
}
