//! A reclaim campaign: an admin takes installations from the reclaim list
//! ([`crate::reclaim::reclaim`], the one definition of "idle") and marks each proposed →
//! confirmed → removed. Every step is audited with its operator, and the totals per state add
//! up the cost each installation tied up when it was proposed, per currency, so the campaign is
//! tracked to the money it freed. Also here: narrowing the reclaim list to an org node, which
//! the list itself does not know about.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use tally_core::compliance::Money;
use tally_core::reclaim::{
    Campaign, NewReclaimItem, ReclaimItem, ReclaimState, ReclaimStep, StateTotal,
};
use tally_store::{ErrorKind, Store};

use crate::audit::{entry, OrMissing};
use crate::compliance::estate;
use crate::reclaim::{ReclaimList, ReclaimQuery};
use crate::{Result, Service, ServiceError};

/// Sums of money per currency, in currency order.
pub fn per_currency<'m>(items: impl IntoIterator<Item = &'m Money>) -> Vec<Money> {
    let mut sums = BTreeMap::<&str, i64>::new();
    for m in items {
        let sum = sums.entry(&m.currency).or_default();
        *sum = sum.saturating_add(m.minor);
    }
    sums.into_iter()
        .map(|(currency, minor)| Money {
            minor,
            currency: currency.to_string(),
        })
        .collect()
}

/// The campaign as it stands.
pub async fn campaign(store: &dyn Store) -> Result<Campaign> {
    let items = store.reclaim_items().await?;
    let totals = ReclaimState::ALL
        .into_iter()
        .map(|state| {
            let of_state: Vec<&ReclaimItem> = items.iter().filter(|i| i.state == state).collect();
            StateTotal {
                state,
                items: of_state.len(),
                cost: per_currency(of_state.iter().filter_map(|i| i.item.cost.as_ref())),
            }
        })
        .collect();
    Ok(Campaign { items, totals })
}

/// Keeps the idle installations on devices at the org node `name` or below it; refuses a name
/// that is no node.
pub async fn within_org_node(
    store: &dyn Store,
    mut list: ReclaimList,
    name: &str,
) -> Result<ReclaimList> {
    let nodes = store.org_nodes().await?;
    let node = nodes
        .iter()
        .find(|n| n.name == name)
        .ok_or_else(|| ServiceError::Invalid(format!("org_node: no org node named {name:?}")))?;
    let estate = estate(store, list.as_of).await?;
    list.idle.retain(|r| {
        let on = estate.devices.get(&r.device_id).and_then(|d| d.org_node);
        on.is_some_and(|n| estate.org.within(n, node.id))
    });
    list.idle_total = list.idle.len() as i64;
    list.idle_value = per_currency(list.idle.iter().filter_map(|r| r.cost.as_ref()));
    Ok(list)
}

/// Puts the installation of `application` on device `device_id` on the campaign's list as
/// proposed by `actor`, with the cost it ties up now. Only an installation the reclaim list
/// holds for `days` unused days (as of `today`) can be proposed; one already on the list is a
/// conflict.
pub async fn propose(
    service: &Service,
    actor: &str,
    (application, device_id): (&str, i64),
    today: NaiveDate,
    days: i64,
) -> Result<ReclaimItem> {
    let store = service.store();
    let mut query = ReclaimQuery::days(today, days);
    query.application = Some(application.to_string());
    let list = service.reclaim_shared(&query).await?;
    let found = (list.idle.iter())
        .find(|r| r.device_id == device_id)
        .cloned()
        .ok_or_else(|| {
            ServiceError::Invalid(format!(
                "{application} on device {device_id} is not on the reclaim list of installations \
                 unused for {days} days; see /reclaim"
            ))
        })?;
    let item = NewReclaimItem {
        application: found.application,
        device_id,
        host_name: found.host_name,
        units: found.units,
        cost: found.cost,
        license: found.license,
    };
    let step = ReclaimStep {
        at: Utc::now(),
        by: actor.to_string(),
    };
    let audit =
        |stored: &ReclaimItem| entry(actor, "reclaim.proposed", target(stored.id), &stored.item);
    match store.propose_reclaim(&item, &step, Some(&audit)).await {
        Err(e) if e.kind() == ErrorKind::Conflict => Err(ServiceError::Conflict(format!(
            "{} on {} is on the reclaim list already",
            item.application, item.host_name
        ))),
        done => Ok(done?),
    }
}

fn target(id: i64) -> String {
    format!("reclaim_item:{id}")
}

/// Moves item `id`, which the caller saw in state `from`, one step on (proposed → confirmed →
/// removed), as `actor`. Saying the state seen means a form sent twice does not skip a step:
/// the second is refused as not found in that state.
pub async fn advance(service: &Service, actor: &str, id: i64, from: ReclaimState) -> Result<()> {
    let to = from.next().ok_or_else(|| {
        ServiceError::Invalid("state: a removed installation is the campaign's last step".into())
    })?;
    let action = format!("reclaim.{}", to.as_str());
    let detail = serde_json::json!({ "from": from.as_str(), "to": to.as_str() });
    let audit = entry(actor, &action, target(id), detail);
    let step = ReclaimStep {
        at: audit.at,
        by: actor.to_string(),
    };
    (service
        .store()
        .advance_reclaim(id, from, &step, Some(&audit))
        .await)
        .or_missing(|| format!("no reclaim item {id} that is {}", from.as_str()))
}

/// `-1234590` → `-12345.90`: an amount a spreadsheet reads as a number (no grouping, the
/// currency in a column of its own).
fn plain_amount(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        minor.unsigned_abs() / 100,
        minor.unsigned_abs() % 100
    )
}

/// The idle installations of `list` as CSV for a spreadsheet: one line each, the cost as a
/// plain number with its currency in the next column, every text cell neutralised
/// ([`tally_core::escape::csv_cell`]) so a host or package name cannot be run as a formula.
pub fn idle_csv(list: &ReclaimList) -> Result<Vec<u8>> {
    use tally_core::escape::csv_cell;
    let failed = |e: csv::Error| ServiceError::Internal(format!("writing the CSV: {e}"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "application",
        "computer",
        "package",
        "version",
        "last_used",
        "days_unused",
        "units",
        "cost",
        "currency",
        "license",
    ])
    .map_err(failed)?;
    for r in &list.idle {
        let last = r.last_used.map(|t| t.to_rfc3339()).unwrap_or_default();
        let cells = [
            r.application.clone(),
            r.host_name.clone(),
            r.package.clone(),
            r.version.clone(),
            last,
            r.days_unused.map(|d| d.to_string()).unwrap_or_default(),
            r.units.to_string(),
            r.cost
                .as_ref()
                .map(|c| plain_amount(c.minor))
                .unwrap_or_default(),
            r.cost
                .as_ref()
                .map(|c| c.currency.clone())
                .unwrap_or_default(),
            r.license.clone().unwrap_or_default(),
        ];
        out.write_record(cells.iter().map(|c| csv_cell(c).into_owned()))
            .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| ServiceError::Internal(format!("writing the CSV: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_plain_numbers_and_sums_keep_currencies_apart() {
        assert_eq!(plain_amount(1_234_590), "12345.90");
        assert_eq!(plain_amount(-5), "-0.05");
        let money = |minor, currency: &str| Money {
            minor,
            currency: currency.into(),
        };
        let sums = per_currency(&[money(100, "EUR"), money(250, "USD"), money(50, "EUR")]);
        assert_eq!(sums, [money(150, "EUR"), money(250, "USD")]);
    }

    #[test]
    fn the_csv_neutralises_formulas_and_keeps_the_currency_apart() {
        let idle = crate::Reclaimable {
            application: "=HYPERLINK(\"http://x\")".into(),
            device_id: 1,
            host_name: "@pc1".into(),
            package: "+pkg".into(),
            version: "-1".into(),
            last_used: None,
            days_unused: None,
            units: 2,
            cost: Some(Money {
                minor: -150,
                currency: "EUR".into(),
            }),
            license_id: None,
            license: Some("#1: 2 × installations".into()),
        };
        let list = ReclaimList {
            as_of: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            unused_since: chrono::DateTime::UNIX_EPOCH,
            idle: vec![idle],
            idle_total: 1,
            idle_value: Vec::new(),
            known_installations: 1,
            no_usage_data: Vec::new(),
        };
        let text = String::from_utf8(idle_csv(&list).unwrap()).unwrap();
        let line = text.lines().nth(1).unwrap();
        assert_eq!(
            line,
            "\"'=HYPERLINK(\"\"http://x\"\")\",'@pc1,'+pkg,-1,,,2,-1.50,EUR,#1: 2 × installations"
        );
    }
}
