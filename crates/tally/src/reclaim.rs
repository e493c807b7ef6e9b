//! `tally reclaim`: the one reclaim list (`tally_service::reclaim`) as people read it. Two
//! parts: the installations whose use is known and that were not used for `--days`, each with
//! the license it would free and the cost it ties up; then the applications whose use Tally
//! cannot know ("no usage data"), counted with the reason, never as unused.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use tally_api::{NoUsageData, ReclaimReport, Reclaimable};
use tally_service::reports::money_text;

use crate::admin::ApiArgs;
use crate::output::{print, print_value, time_text, Format};

#[derive(Args, Debug)]
pub struct ReclaimArgs {
    /// Unused for at least this many days.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// As it stood on this day (YYYY-MM-DD); default today.
    #[arg(long)]
    as_of: Option<String>,
    /// Only this application (its name, any case).
    #[arg(long)]
    app: Option<String>,
    /// On a parent site: only installations on devices of this site and the sites below it
    /// (default: the whole subtree this site holds).
    #[arg(long, value_name = "CODE")]
    site: Option<String>,
}

/// One line of either part: an idle installation, or an application with no usage data.
#[derive(Serialize, Default)]
struct Line<'a> {
    usage: &'static str,
    application: &'a str,
    host_name: &'a str,
    last_used: Option<String>,
    days_unused: Option<i64>,
    units: Option<i64>,
    cost: Option<String>,
    license: Option<&'a str>,
    installations: Option<i64>,
    reason: Option<&'a str>,
}

impl<'a> From<&'a Reclaimable> for Line<'a> {
    fn from(r: &'a Reclaimable) -> Self {
        Line {
            usage: "unused",
            application: &r.application,
            host_name: &r.host_name,
            last_used: Some(r.last_used.map_or("never".into(), time_text)),
            days_unused: r.days_unused,
            units: Some(r.units),
            cost: r.cost.as_ref().map(money_text),
            license: r.license.as_deref(),
            ..Default::default()
        }
    }
}

impl<'a> From<&'a NoUsageData> for Line<'a> {
    fn from(n: &'a NoUsageData) -> Self {
        Line {
            usage: "no usage data",
            application: &n.application,
            installations: Some(n.installations),
            reason: Some(&n.reason),
            ..Default::default()
        }
    }
}

const IDLE_COLUMNS: &[&str] = &[
    "application",
    "host_name",
    "last_used",
    "days_unused",
    "units",
    "cost",
    "license",
];
const UNKNOWN_COLUMNS: &[&str] = &["application", "installations", "reason"];

pub async fn reclaim(api: &ApiArgs, args: ReclaimArgs) -> Result<()> {
    let list = api
        .client()?
        .reclaim(
            args.days,
            tally_api::ReclaimOnly {
                as_of: args.as_of.as_deref(),
                app: args.app.as_deref(),
                site: args.site.as_deref(),
            },
        )
        .await?;
    match api.format {
        Format::Json => Ok(print_value(&list)?),
        // One flat table: the `usage` column tells the parts apart.
        Format::Csv => {
            let idle = list.idle.iter().map(Line::from);
            let lines: Vec<Line> = idle
                .chain(list.no_usage_data.iter().map(Line::from))
                .collect();
            Ok(print(&lines, &[], Format::Csv)?)
        }
        Format::Table => table(&list),
    }
}

fn table(list: &ReclaimReport) -> Result<()> {
    let idle: Vec<Line> = list.idle.iter().map(Line::from).collect();
    if !idle.is_empty() {
        print(&idle, IDLE_COLUMNS, Format::Table)?;
    }
    // The currency is stored text: shown, never sent to the terminal.
    println!("{}", tally_core::escape::controls(&summary(list)));
    if !list.no_usage_data.is_empty() {
        println!();
        println!("No usage data (not counted as unused, no cost claimed):");
        let unknown: Vec<Line> = list.no_usage_data.iter().map(Line::from).collect();
        print(&unknown, UNKNOWN_COLUMNS, Format::Table)?;
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// `2 of 5 installations whose use is known have not run since …, tying up 1,299.00 EUR.`
fn summary(list: &ReclaimReport) -> String {
    let costs: Vec<String> = list.idle_value.iter().map(money_text).collect();
    let tied = match costs.is_empty() {
        true => String::new(),
        false => format!(", tying up {}", costs.join(" and ")),
    };
    format!(
        "{} of {} installations whose use is known have not run since {}{tied}.",
        list.idle.len(),
        list.known_installations,
        time_text(list.unused_since)
    )
}
