//! What the console's dashboard shows beyond today's position: the trend of the position from
//! the daily compliance snapshots, and the agents whose figures cannot be trusted (silent, or
//! dropping records).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tally_core::compliance::{Money, Status};
use tally_store::Store;

use crate::compliance::AppPosition;
use crate::reclaim_campaign::per_currency;
use crate::Result;

/// The position across applications on one day of the snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFigures {
    pub day: NaiveDate,
    pub under_licensed: usize,
    pub over_licensed: usize,
    /// The day's shortfall priced at each application's unit price today, per currency.
    pub shortfall_cost: Vec<Money>,
    /// The day's surplus priced the same way: the value of idle licenses.
    pub idle_value: Vec<Money>,
}

/// An application's unit prices today, read back from today's position: (one unit short, one
/// idle unit). Each stands in for the other when today's position has none of its units (both
/// come from the application's licenses); several currencies of surplus keep the first.
fn unit_prices(p: &AppPosition) -> (Option<Money>, Option<Money>) {
    let per_unit = |m: Option<&Money>, units: i64| {
        m.filter(|_| units > 0).map(|m| Money {
            minor: m.minor / units,
            currency: m.currency.clone(),
        })
    };
    let short = per_unit(p.shortfall_cost.as_ref(), p.shortfall);
    let idle = per_unit(p.surplus_value.first(), p.surplus);
    (short.clone().or(idle.clone()), idle.or(short))
}

/// The position every `step` days back from `today` over the last `days` days (the newest
/// snapshot on or before each such day), oldest first. Counts are the snapshots'; money is at
/// today's unit prices, since a snapshot keeps units only.
pub async fn position_trend(
    store: &dyn Store,
    today: NaiveDate,
    positions: &[AppPosition],
    (days, step): (i64, i64),
) -> Result<Vec<DayFigures>> {
    let prices: HashMap<&str, (Option<Money>, Option<Money>)> = positions
        .iter()
        .map(|p| (p.application.as_str(), unit_prices(p)))
        .collect();
    let points = crate::trends::snapshots(store, None, Some(today - Duration::days(days)), today);
    let mut by_day: BTreeMap<NaiveDate, Vec<tally_api::TrendPoint>> = BTreeMap::new();
    for p in points.await? {
        by_day.entry(p.snapshot.day).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut at = today;
    while at > today - Duration::days(days) {
        if let Some((&day, points)) = by_day.range(..=at).next_back() {
            if out.last().is_none_or(|f: &DayFigures| f.day != day) {
                out.push(figures(day, points, &prices));
            }
        }
        at -= Duration::days(step.max(1));
    }
    out.reverse();
    Ok(out)
}

fn figures(
    day: NaiveDate,
    points: &[tally_api::TrendPoint],
    prices: &HashMap<&str, (Option<Money>, Option<Money>)>,
) -> DayFigures {
    let status = |s: Status| {
        let text = serde_json::to_value(s).ok();
        let text = text.as_ref().and_then(|v| v.as_str()).unwrap_or_default();
        points.iter().filter(|p| p.snapshot.status == text).count()
    };
    let priced = |units: fn(&tally_api::TrendPoint) -> i64, which: usize| {
        let costs: Vec<Money> = points
            .iter()
            .filter(|p| units(p) > 0)
            .filter_map(|p| {
                let (short, idle) = prices.get(p.application.as_str())?;
                let unit = if which == 0 { short } else { idle }.as_ref()?;
                Some(Money {
                    minor: unit.minor.saturating_mul(units(p)),
                    currency: unit.currency.clone(),
                })
            })
            .collect();
        per_currency(&costs)
    };
    DayFigures {
        day,
        under_licensed: status(Status::UnderLicensed),
        over_licensed: status(Status::OverLicensed),
        shortfall_cost: priced(|p| p.snapshot.shortfall, 0),
        idle_value: priced(|p| p.snapshot.surplus, 1),
    }
}

/// An agent whose figures are in doubt, by its computer's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTrouble {
    pub host_name: String,
    pub device_id: i64,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub dropped_records: i64,
}

/// Agents not revoked that sent no heartbeat since `silent_since` (or never), and those that
/// dropped records from a full spool: (silent, dropping).
pub async fn agent_trouble(
    store: &dyn Store,
    silent_since: DateTime<Utc>,
) -> Result<(Vec<AgentTrouble>, Vec<AgentTrouble>)> {
    let live: Vec<_> = store
        .agents()
        .await?
        .into_iter()
        .filter(|a| a.revoked_at.is_none())
        .filter(|a| a.last_heartbeat.is_none_or(|t| t < silent_since) || a.dropped_records > 0)
        .collect();
    // The devices are read for their names only when some agent is in trouble.
    let hosts: HashMap<i64, String> = if live.is_empty() {
        HashMap::new()
    } else {
        (store.compliance_devices().await?.into_iter())
            .map(|d| (d.id, d.host_name))
            .collect()
    };
    let live = live.into_iter();
    let all: Vec<AgentTrouble> = live
        .map(|a| AgentTrouble {
            host_name: hosts.get(&a.device_id).cloned().unwrap_or_default(),
            device_id: a.device_id,
            last_heartbeat: a.last_heartbeat,
            dropped_records: a.dropped_records,
        })
        .collect();
    let silent = (all.iter())
        .filter(|a| a.last_heartbeat.is_none_or(|t| t < silent_since))
        .cloned()
        .collect();
    let dropping = all.into_iter().filter(|a| a.dropped_records > 0).collect();
    Ok((silent, dropping))
}
