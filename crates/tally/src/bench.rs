//! `tally bench ingest`: the load generator for usage ingest. It starts a real server on a
//! fresh database, enrols simulated agents over HTTP and has them upload concurrently, and in
//! the same run measures the storage ceiling: the same rows inserted straight through the
//! `Store`, with the HTTP, JSON and id resolution taken away.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{TimeZone, Utc};
use clap::Args;

use tally_core::wire::v1::{EnrollRequest, EnrollResponse, UsageBatch, UsageRecordV1, UserRef};
use tally_core::{FileInfo, SiteCode};
use tally_store::prelude::*;
use tally_store::{NewAgent, NewEnrollmentToken, NewUsageRecord};

#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// Database to benchmark [default: a new SQLite file in a temporary directory]. A PostgreSQL
    /// database should be empty: the bench adds its rows there.
    #[arg(long)]
    database_url: Option<String>,
    /// Simulated agents uploading at once.
    #[arg(long, default_value_t = 32)]
    agents: usize,
    /// Records in all, per phase.
    #[arg(long, default_value_t = 400_000)]
    records: usize,
    /// Records per upload.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

/// One agent's uploads: `batches` batches of `size` distinct records.
fn agent_batches(agent: usize, batches: usize, size: usize) -> Vec<UsageBatch> {
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    (0..batches)
        .map(|b| UsageBatch {
            batch_id: format!("a{agent}-b{b}"),
            device_id: None,
            dropped: 0,
            records: (0..size)
                .map(|i| {
                    let n = b * size + i;
                    let start = base + chrono::Duration::seconds(n as i64 * 60);
                    UsageRecordV1 {
                        meter_data_id: format!("a{agent}-m{n}"),
                        file: FileInfo {
                            file_name: format!("prog{}", n % 40),
                            original_file_name: format!("prog{}", n % 40),
                            version: format!("{}.0", n % 3),
                            product_name: "Bench".into(),
                            publisher: "Tally".into(),
                            language: 65535,
                        },
                        user: UserRef {
                            account: format!("user{}", (agent * 7 + n) % 500),
                            full_name: None,
                        },
                        start_time: start,
                        start_time_offset: 60,
                        end_time: start + chrono::Duration::seconds(45),
                        end_time_offset: 60,
                        started: true,
                        still_running: false,
                        start_not_captured: false,
                        end_not_captured: false,
                        in_ts_session: n.is_multiple_of(11),
                    }
                })
                .collect(),
        })
        .collect()
}

pub async fn ingest(args: IngestArgs) -> Result<()> {
    if args.agents == 0 || args.batch == 0 || args.records < args.agents * args.batch {
        bail!("--records must be at least --agents × --batch, and both above zero");
    }
    let temp = tempfile::tempdir().context("temporary directory")?;
    let (store, site) =
        crate::bench_agent::bench_store(args.database_url.as_deref(), temp.path()).await?;
    let per_agent = args.records / args.agents / args.batch;
    let total = per_agent * args.batch * args.agents;
    println!(
        "tally bench ingest: backend {}, {} agents × {} batches × {} records = {} records per phase",
        store.backend(), args.agents, per_agent, args.batch, total
    );

    let ceiling = storage_ceiling(&store, &site, &args, per_agent).await?;
    let end_to_end = http_ingest(store.clone(), site, &args, per_agent).await?;
    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    println!(
        "storage ceiling : {:>10.0} records/s ({:.2} s)",
        rate(ceiling),
        ceiling.as_secs_f64()
    );
    println!(
        "end to end HTTP : {:>10.0} records/s ({:.2} s)",
        rate(end_to_end),
        end_to_end.as_secs_f64()
    );
    println!(
        "ratio           : {:>10.2}",
        ceiling.as_secs_f64() / end_to_end.as_secs_f64()
    );
    Ok(())
}

/// The same rows straight into the store, ids resolved beforehand, same concurrency.
async fn storage_ceiling(
    store: &Arc<dyn Store>,
    site: &SiteCode,
    args: &IngestArgs,
    per_agent: usize,
) -> Result<Duration> {
    let token = NewEnrollmentToken {
        site_code: site.clone(),
        name: "ceiling".into(),
        expires_at: None,
        max_uses: None,
    };
    store
        .create_enrollment_token(&token, "bench-ceiling", Utc::now(), None)
        .await?;
    let mut work = Vec::new();
    for a in 0..args.agents {
        let agent = NewAgent {
            agent_id: format!("ceiling-{a}"),
            secret_hash: String::new(),
            host_name: format!("ceiling-{a}"),
            fqdn: None,
            os: None,
            serial: None,
            machine_id: None,
        };
        let (_, device) = store
            .enroll_agent("bench-ceiling", &agent, Utc::now(), None)
            .await?
            .context("enrol")?;
        let cache = tally_service::ingest::DimensionCache::default();
        let mut batches = Vec::new();
        for b in agent_batches(a, per_agent, args.batch) {
            let rows: Vec<NewUsageRecord> = cache
                .resolve(store.as_ref(), device.id, &b.records, None)
                .await?;
            batches.push((device.id, b.batch_id, rows));
        }
        work.push(batches);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for batches in work {
        let store = store.clone();
        tasks.spawn(async move {
            for (device, id, rows) in batches {
                store
                    .insert_usage_batch(device, &id, &rows, Utc::now())
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

/// Simulated agents enrol over HTTP and upload their batches concurrently.
async fn http_ingest(
    store: Arc<dyn Store>,
    site: SiteCode,
    args: &IngestArgs,
    per_agent: usize,
) -> Result<Duration> {
    let server = crate::bench_agent::BenchServer::serve(store, site).await?;
    let url = server.url.clone();
    let http = reqwest::Client::new();
    let enrol = server
        .api
        .create_enrollment_token(&tally_api::CreateEnrollmentToken {
            name: "bench".into(),
            site_code: None,
            expires_at: None,
            max_uses: None,
        })
        .await?;
    let mut agents = Vec::new();
    for a in 0..args.agents {
        let request = EnrollRequest::named(&enrol.token, format!("agent-{a}"));
        let e: EnrollResponse = http
            .post(format!("{url}/api/v1/agent/enroll"))
            .json(&request)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let creds = e.bearer();
        let bodies: Vec<Vec<u8>> = agent_batches(a, per_agent, args.batch)
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<_, _>>()?;
        agents.push((creds, bodies));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (creds, bodies) in agents {
        let http = http.clone();
        let endpoint = format!("{url}/api/v1/agent/usage");
        tasks.spawn(async move {
            let mut stored = 0;
            for body in bodies {
                let resp = http
                    .post(&endpoint)
                    .bearer_auth(&creds)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    bail!("upload failed: {} {}", resp.status(), resp.text().await?);
                }
                let ack: serde_json::Value = resp.json().await?;
                stored += ack["stored"].as_u64().context("ack without stored")?;
            }
            anyhow::Ok(stored)
        });
    }
    let mut stored = 0;
    while let Some(done) = tasks.join_next().await {
        stored += done??;
    }
    let elapsed = started.elapsed();
    let expected = (args.agents * per_agent * args.batch) as u64;
    if stored != expected {
        bail!("the server acknowledged {stored} stored records, expected {expected}");
    }
    server.stop().await?;
    Ok(elapsed)
}
