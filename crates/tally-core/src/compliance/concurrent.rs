//! Concurrent use: the relevant users (or devices) using an application in each clock hour of
//! a period. The concurrent metrics' demand is the largest count (overall and per org node);
//! the same counts, hour by hour, chart concurrent use over time.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::{
    device_reason, excluded_for, hours_in_period, user_reason, AppFacts, Consumer, Estate,
    Excluded, NodeFigures, Pooled, Session,
};
use crate::licenses::Metric;

/// Per clock hour of the period that had any use, the relevant users (or devices) using the
/// application, each with its org node; and the consumers left out, with why.
type HourConsumers = HashMap<DateTime<Utc>, HashMap<Consumer, Option<i64>>>;

fn consumers_by_hour(
    estate: &Estate,
    by_user: bool,
    sessions: &[&Session],
    period: (DateTime<Utc>, DateTime<Utc>),
) -> (HourConsumers, BTreeMap<Consumer, (String, String)>) {
    let mut reasons: BTreeMap<Consumer, (String, String)> = BTreeMap::new();
    let mut hours: HourConsumers = HashMap::new();
    for s in sessions {
        let (consumer, node, reason) = match by_user {
            true => match estate.users.get(&s.user_id) {
                Some(u) => (Consumer::User(u.id), u.org_node, user_reason(u)),
                None => continue,
            },
            false => match estate.devices.get(&s.device_id) {
                Some(d) => (Consumer::Device(d.id), d.org_node, device_reason(d)),
                None => continue,
            },
        };
        if let Some(reason) = reason {
            reasons.insert(consumer, reason);
            continue;
        }
        for hour in hours_in_period(s.start, s.end, period) {
            hours.entry(hour).or_default().insert(consumer, node);
        }
    }
    (hours, reasons)
}

/// Whether a session touches `[from, to)`, as the metering period counts it.
pub(super) fn touches(s: &Session, (from, to): (DateTime<Utc>, DateTime<Utc>)) -> bool {
    s.start < to && s.end >= from
}

/// How many relevant users (`by_user`) or devices used the application in each clock hour of
/// `period` that had any use: the counts whose largest over the metering period is the
/// concurrent metrics' demand (see [`position`]), for charting concurrent use over time.
pub fn concurrent_by_hour(
    estate: &Estate,
    by_user: bool,
    sessions: &[Session],
    period: (DateTime<Utc>, DateTime<Utc>),
) -> BTreeMap<DateTime<Utc>, i64> {
    let sessions: Vec<&Session> = sessions.iter().filter(|s| touches(s, period)).collect();
    let (hours, _) = consumers_by_hour(estate, by_user, &sessions, period);
    hours
        .into_iter()
        .map(|(hour, consumers)| (hour, consumers.len() as i64))
        .collect()
}

/// The most distinct relevant users (or devices) using the application in one clock hour,
/// overall and within each org node's subtree.
pub(super) fn concurrent(
    estate: &Estate,
    facts: &AppFacts,
    sessions: &[&Session],
    period: (DateTime<Utc>, DateTime<Utc>),
    excluded: &mut Vec<Excluded>,
) -> Pooled {
    let by_user = facts.application.metric == Metric::ConcurrentUsers;
    let (hours, reasons) = consumers_by_hour(estate, by_user, sessions, period);
    excluded.extend(
        reasons
            .into_iter()
            .map(|(consumer, reason)| excluded_for(consumer, reason)),
    );
    let required = hours.values().map(|c| c.len() as i64).max().unwrap_or(0);
    let by_node = node_peaks(&hours)
        .into_iter()
        .map(|(org_node, required)| NodeFigures {
            org_node,
            required,
            covered: 0,
        })
        .collect();
    Pooled { required, by_node }
}

/// Per org node, the most of its own consumers in any one hour: each hour's consumers are
/// counted per node in one pass, so the work grows with the (hour, consumer) pairs, not with
/// their product with the number of nodes.
fn node_peaks(hours: &HourConsumers) -> BTreeMap<Option<i64>, i64> {
    let mut peaks: BTreeMap<Option<i64>, i64> = BTreeMap::new();
    let mut in_hour: HashMap<Option<i64>, i64> = HashMap::new();
    for consumers in hours.values() {
        in_hour.clear();
        for node in consumers.values() {
            *in_hour.entry(*node).or_default() += 1;
        }
        for (node, count) in &in_hour {
            let peak = peaks.entry(*node).or_default();
            *peak = (*peak).max(*count);
        }
    }
    peaks
}
