//! The report datasets: each report of `tally_report`'s catalogue built from the store into
//! the [`Report`] its renderers draw (the summaries for usage, [`crate::reclaim`] for the
//! reclaim list, the task table for the maintenance report).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use tally_core::compliance::Money;
use tally_core::rules::MeteringRule;
use tally_core::summary::FileUsageHour;
use tally_core::tasks::Task;
use tally_core::SiteCode;
use tally_report::catalogue::{DefaultValue, Params, ReportDef, ReportKind};
use tally_report::{Cell, Chart, Column, Report, ReportError};
use tally_store::prelude::*;
use tally_store::UsageByKind;

use crate::reclaim::{reclaim, ReclaimQuery};
use crate::{Result, Service};

/// Bars drawn at most; the table holds every row.
const MAX_BARS: usize = 20;

/// Finds report `name`, checks `params` (`name=value` pairs; defaults for the rest) and builds
/// it from the service's store as it stands at `now`.
pub async fn make(
    service: &Service,
    name: &str,
    params: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Report> {
    let def = tally_report::find(name)?;
    let params = def.params(params, now.date_naive())?;
    let mut report = build(service, def, &params, now).await?;
    // The alias from any of its sources (serveralias.txt, tally site set, the configuration).
    report.site = crate::site::label(service).await?;
    Ok(report)
}

/// Builds report `def` with `params` as the service's store holds it at `now`.
pub async fn build(
    service: &Service,
    def: &ReportDef,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Report> {
    let store = service.store();
    let mut report = Report {
        name: def.name.into(),
        title: def.title.into(),
        site: site_label(store, service.site()).await?,
        generated_at: now,
        params: params.describe(def),
        notes: Vec::new(),
        columns: Vec::new(),
        rows: Vec::new(),
        chart: None,
    };
    let ctx = Ctx {
        service,
        store,
        def,
        params,
        rules: store.rules().await?,
        sites: crate::scope::subtree_of(service, params.site().as_deref()).await?,
    };
    match def.kind {
        ReportKind::MonthlyUsage => ctx.monthly_usage(&mut report).await?,
        ReportKind::ProgramUsers => ctx.usage_by(UsageByKind::User, &mut report).await?,
        ReportKind::ProgramComputers => ctx.usage_by(UsageByKind::Device, &mut report).await?,
        ReportKind::Reclaim => ctx.reclaim(&mut report).await?,
        ReportKind::HeatMap => ctx.heat_map(&mut report).await?,
        ReportKind::Concurrency => ctx.concurrency(&mut report).await?,
        ReportKind::Tasks => ctx.tasks(&mut report).await?,
        ReportKind::EffectiveLicensePosition => {
            let keep = ctx.devices().await?;
            crate::report_elp::build(store, params, keep.as_ref(), &mut report).await?;
            if let Some(code) = params.site() {
                report.notes.push(format!(
                    "Demand of site {code} and the sites below it only, against every license \
                     this site holds: owned, covered's limit and surplus are this site's whole \
                     stock, not a share of it."
                ));
            }
        }
    }
    Ok(report)
}

async fn site_label(store: &dyn Store, code: &SiteCode) -> Result<String> {
    Ok(match store.site(code).await? {
        Some(site) => site.alias.filter(|a| !a.is_empty()).unwrap_or(site.name),
        None => code.to_string(),
    })
}

struct Ctx<'a> {
    service: &'a Service,
    store: &'a dyn Store,
    def: &'a ReportDef,
    params: &'a Params,
    rules: Vec<MeteringRule>,
    /// The sites the report covers (`site=`): `None` for this site's whole subtree.
    sites: Option<Vec<SiteCode>>,
}

/// A task's watermark as people read it: the summarising tasks' `TimeSerial`, the ageing
/// task's cut-off as a time, nothing for the others (theirs is unused).
fn watermark_cell(t: &tally_core::tasks::TaskState) -> Cell {
    match Task::parse(&t.name) {
        Some(task) if task.reads_raw_usage() => Cell::Int(t.watermark),
        _ => t.ageing_cutoff().map_or(Cell::Empty, Cell::time),
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

/// `1234590` EUR → `12,345.90 EUR`, as `tally reclaim` prints it.
pub fn money_text(m: &Money) -> String {
    let whole = tally_report::model::thousands(m.minor.abs() / 100);
    let sign = if m.minor < 0 { "-" } else { "" };
    format!("{sign}{whole}.{:02} {}", m.minor.abs() % 100, m.currency)
}

/// One idle installation as the reclaim report's row.
fn idle_row(r: &crate::Reclaimable) -> Vec<Cell> {
    vec![
        Cell::text(&r.application),
        Cell::text(&r.host_name),
        Cell::text(&r.package),
        Cell::text(&r.version),
        r.last_used
            .map(Cell::time)
            .unwrap_or_else(|| Cell::text("never")),
        r.days_unused.map(Cell::Int).unwrap_or(Cell::Empty),
        Cell::Int(r.units),
        r.cost
            .as_ref()
            .map(|c| Cell::text(money_text(c)))
            .unwrap_or(Cell::Empty),
        r.license.clone().map(Cell::Text).unwrap_or(Cell::Empty),
    ]
}

fn month_label(month: i32) -> String {
    format!("{}-{:02}", month / 100, month % 100)
}

fn bars(title: &str, unit: &str, mut bars: Vec<(String, f64)>) -> Option<Chart> {
    bars.retain(|(_, v)| *v > 0.0);
    bars.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    bars.truncate(MAX_BARS);
    (!bars.is_empty()).then(|| Chart::Bars {
        title: title.into(),
        unit: unit.into(),
        bars,
    })
}

impl Ctx<'_> {
    fn rule_name(&self, id: i64) -> String {
        self.rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.spec.name.clone())
            .unwrap_or_else(|| format!("rule {id}"))
    }

    fn named_rule(&self, name: &str) -> Result<&MeteringRule, ReportError> {
        self.rules
            .iter()
            .find(|r| r.spec.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| ReportError::UnknownProgram {
                name: name.into(),
                known: match self.rules.is_empty() {
                    true => "none yet (add one with tally rules add)".into(),
                    false => self
                        .rules
                        .iter()
                        .map(|r| r.spec.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            })
    }

    /// The rules a report covers: the one named, or every rule.
    fn chosen_rules(&self) -> Result<Vec<&MeteringRule>, ReportError> {
        match self.params.program() {
            Some(name) => Ok(vec![self.named_rule(name)?]),
            None => Ok(self.rules.iter().collect()),
        }
    }

    /// The program a one-program report is about: the one named, or the most used in
    /// `months`. `None`, with a note, when nothing has been used.
    async fn one_program(
        &self,
        months: (i32, i32),
        report: &mut Report,
    ) -> Result<Option<MeteringRule>> {
        if let Some(name) = self.params.program() {
            return Ok(Some(self.named_rule(name)?.clone()));
        }
        debug_assert!(self
            .def
            .params
            .iter()
            .any(|p| p.default == DefaultValue::MostUsedProgram));
        let mut usage: HashMap<i64, i64> = HashMap::new();
        for t in (self.store)
            .monthly_totals(months, self.sites.as_deref())
            .await?
        {
            *usage.entry(t.rule_id).or_default() += t.usage_ms;
        }
        let most = usage
            .into_iter()
            .max_by_key(|&(id, ms)| (ms, std::cmp::Reverse(id)))
            .and_then(|(id, _)| self.rules.iter().find(|r| r.id == id));
        let chosen = match most {
            Some(rule) => format!("{} (the most used in the period)", rule.spec.name),
            None => "none (no metered program was used in the period)".into(),
        };
        if let Some(param) = report.params.iter_mut().find(|(n, _)| n == "program") {
            param.1 = chosen;
        }
        match most {
            Some(rule) => {
                report.notes.push(format!(
                    "Program: {} (the most used in the period; choose another with program=NAME).",
                    rule.spec.name
                ));
                Ok(Some(rule.clone()))
            }
            None => {
                report
                    .notes
                    .push("No metered program was used in the period.".into());
                Ok(None)
            }
        }
    }

    /// The devices of the sites asked for (`None`: every device).
    async fn devices(&self) -> Result<Option<HashSet<i64>>> {
        match &self.sites {
            Some(sites) => Ok(Some(crate::scope::devices_of(self.store, sites).await?)),
            None => Ok(None),
        }
    }

    fn months(&self) -> (i32, i32) {
        (self.params.month("from"), self.params.month("to"))
    }

    /// `[from midnight, midnight after to)` in UTC.
    fn days(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            midnight(self.params.date("from")),
            midnight(self.params.date("to")) + Duration::days(1),
        )
    }

    async fn monthly_usage(&self, report: &mut Report) -> Result<()> {
        report.columns = vec![
            Column::text("program", "Program"),
            Column::text("month", "Month"),
            Column::number("runs", "Runs"),
            Column::number("users", "Users"),
            Column::number("computers", "Computers"),
            Column::number("time_used", "Time used"),
        ];
        let mut totals: Vec<_> = self
            .store
            .monthly_totals(self.months(), self.sites.as_deref())
            .await?
            .into_iter()
            .map(|t| (self.rule_name(t.rule_id), t))
            .collect();
        totals.sort_by(|a, b| (a.1.month, &a.0).cmp(&(b.1.month, &b.0)));
        let mut per_program: BTreeMap<String, i64> = BTreeMap::new();
        for (name, t) in &totals {
            *per_program.entry(name.clone()).or_default() += t.usage_ms;
            report.rows.push(vec![
                Cell::text(name),
                Cell::text(month_label(t.month)),
                Cell::Int(t.runs),
                Cell::Int(t.users),
                Cell::Int(t.devices),
                Cell::hours(t.usage_ms),
            ]);
        }
        let hours = per_program
            .into_iter()
            .map(|(name, ms)| (name, ms as f64 / 3_600_000.0))
            .collect();
        report.chart = bars("Hours of use in the period", "hours", hours);
        Ok(())
    }

    async fn usage_by(&self, by: UsageByKind, report: &mut Report) -> Result<()> {
        report.columns = match by {
            UsageByKind::User => vec![
                Column::text("user", "User"),
                Column::text("full_name", "Full name"),
                Column::number("runs", "Runs"),
                Column::number("time_used", "Time used"),
                Column::number("computers", "Computers"),
                Column::text("last_used", "Last used (UTC)"),
            ],
            UsageByKind::Device => vec![
                Column::text("computer", "Computer"),
                Column::text("fqdn", "FQDN"),
                Column::number("runs", "Runs"),
                Column::number("time_used", "Time used"),
                Column::number("users", "Users"),
                Column::text("last_used", "Last used (UTC)"),
            ],
        };
        let months = self.months();
        let Some(rule) = self.one_program(months, report).await? else {
            return Ok(());
        };
        let rows = (self.store)
            .monthly_usage_by(by, rule.id, months, self.sites.as_deref())
            .await?;
        let mut hours = Vec::new();
        for r in rows {
            hours.push((r.name.clone(), r.usage_ms as f64 / 3_600_000.0));
            report.rows.push(vec![
                Cell::text(r.name),
                r.detail.map(Cell::Text).unwrap_or(Cell::Empty),
                Cell::Int(r.runs),
                Cell::hours(r.usage_ms),
                Cell::Int(r.others),
                Cell::time(r.last_used),
            ]);
        }
        let title = format!("Hours of {} in the period", rule.spec.name);
        report.chart = bars(&title, "hours", hours);
        Ok(())
    }

    /// The one reclaim list (see [`crate::reclaim`]), as `tally reclaim --days D --as-of A`
    /// gives it: the idle installations whose use is known, then one row per application whose
    /// use is unknown ("no usage data": counted, no cost claimed).
    async fn reclaim(&self, report: &mut Report) -> Result<()> {
        report.columns = vec![
            Column::text("program", "Application"),
            Column::text("computer", "Computer"),
            Column::text("package", "Package"),
            Column::text("version", "Version"),
            Column::text("last_used", "Last used (UTC)"),
            Column::number("days_unused", "Days unused"),
            Column::number("units", "Units"),
            Column::text("cost", "Cost tied up"),
            Column::text("license", "License it frees"),
        ];
        let query = ReclaimQuery {
            application: self.params.application().map(String::from),
            devices: self.devices().await?,
            ..ReclaimQuery::days(self.params.date("as-of"), self.params.integer("days"))
        };
        let list = reclaim(self.store, &query).await?;
        let mut unused_per_application: BTreeMap<String, f64> = BTreeMap::new();
        let mut costs: BTreeMap<String, i64> = BTreeMap::new();
        for r in &list.idle {
            *unused_per_application
                .entry(r.application.clone())
                .or_default() += 1.0;
            if let Some(c) = &r.cost {
                *costs.entry(c.currency.clone()).or_default() += c.minor;
            }
            report.rows.push(idle_row(r));
        }
        let cost_text: Vec<String> = costs
            .into_iter()
            .map(|(currency, minor)| money_text(&Money { minor, currency }))
            .collect();
        report.notes.push(format!(
            "{} of {} installations whose use is known have not run since {}{}.",
            list.idle.len(),
            list.known_installations,
            list.unused_since.format("%Y-%m-%d %H:%M UTC"),
            match cost_text.is_empty() {
                true => String::new(),
                false => format!(", tying up {}", cost_text.join(" and ")),
            }
        ));
        if !list.no_usage_data.is_empty() {
            let count: i64 = list.no_usage_data.iter().map(|n| n.installations).sum();
            report.notes.push(format!(
                "No usage data: {count} installations of {} applications whose use Tally cannot \
                 know are listed last, counted, never as unused and with no cost claimed.",
                list.no_usage_data.len()
            ));
        }
        for n in &list.no_usage_data {
            report.rows.push(vec![
                Cell::text(&n.application),
                Cell::text(format!("{} installations", n.installations)),
                Cell::Empty,
                Cell::Empty,
                Cell::text("no usage data"),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::text(&n.reason),
            ]);
        }
        let bars_of = unused_per_application.into_iter().collect();
        report.chart = bars("Unused installations", "installations", bars_of);
        Ok(())
    }

    /// The hourly rows of the report's days; over the sites asked for, recomputed from raw
    /// records, from the first day whose raw records are all kept (a note says so).
    async fn hours_of(&self, rule: Option<i64>, report: &mut Report) -> Result<Vec<FileUsageHour>> {
        let (from, to) = self.days();
        let Some(sites) = &self.sites else {
            return Ok(self.store.file_usage_hours(rule, from, to).await?);
        };
        let first = crate::scope::first_whole_day(self.store).await?;
        if from < first {
            report.notes.push(format!(
                "Hours before {} are left out: a site's hours are recomputed from raw records, \
                 and those before then may have been aged out (keep them longer with tally tasks \
                 set delete_aged_usage --age-days N).",
                first.date_naive()
            ));
        }
        let from = from.max(first).min(to);
        crate::scope::hours(self.service, rule, (from, to), sites).await
    }

    async fn heat_map(&self, report: &mut Report) -> Result<()> {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
        report.columns = std::iter::once(Column::text("day", "Day"))
            .chain(hours.iter().map(|h| Column::number(&format!("h{h}"), h)))
            .collect();
        let months = (
            tally_core::summary::month_of(self.params.date("from")),
            tally_core::summary::month_of(self.params.date("to")),
        );
        let offset = Duration::hours(self.params.integer("utc-offset"));
        let mut grid = [[0i64; 24]; 7];
        if let Some(rule) = self.one_program(months, report).await? {
            for h in self.hours_of(Some(rule.id), report).await? {
                let local = h.hour + offset;
                let day = local.weekday().num_days_from_monday() as usize;
                grid[day][local.hour() as usize] += h.usage_ms;
            }
        }
        // Whole minutes: an hour's cell is rarely more than a few hours, and 24 of them fit a
        // page only as short numbers.
        for (day, cells) in DAYS.iter().zip(&grid) {
            let mut row = vec![Cell::text(*day)];
            row.extend(cells.iter().map(|&ms| Cell::Int((ms + 30_000) / 60_000)));
            report.rows.push(row);
        }
        report.notes.push("Minutes of use in each hour.".into());
        report.chart = Some(Chart::HeatMap {
            title: "Minutes of use by day of week and hour".into(),
            rows: DAYS.iter().map(|d| d.to_string()).collect(),
            columns: hours,
            values: report
                .rows
                .iter()
                .map(|r| r[1..].iter().filter_map(Cell::as_f64).collect())
                .collect(),
        });
        Ok(())
    }

    async fn concurrency(&self, report: &mut Report) -> Result<()> {
        report.columns = vec![
            Column::text("program", "Program"),
            Column::text("period", "Period"),
            Column::text("date", "Day or month (UTC)"),
            Column::number("peak_runs", "Peak runs"),
            Column::number("peak_users", "Peak users"),
        ];
        let rules = self.chosen_rules()?;
        let only = (rules.len() == 1).then(|| rules[0].id);
        let chosen: HashSet<i64> = rules.iter().map(|r| r.id).collect();
        // (program, period, date) -> (peak runs, peak users); months sort after their days.
        let mut peaks: BTreeMap<(String, u8, String), (i64, i64)> = BTreeMap::new();
        for h in self.hours_of(only, report).await? {
            if !chosen.contains(&h.rule_id) {
                continue;
            }
            let name = self.rule_name(h.rule_id);
            let day = h.hour.format("%Y-%m-%d").to_string();
            let month = h.hour.format("%Y-%m").to_string();
            for key in [(name.clone(), 0, day), (name, 1, month)] {
                let peak = peaks.entry(key).or_default();
                peak.0 = peak.0.max(h.peak_concurrent_runs);
                peak.1 = peak.1.max(h.peak_concurrent_users);
            }
        }
        let mut top_users: BTreeMap<String, i64> = BTreeMap::new();
        for ((name, period, date), (runs, users)) in peaks {
            let top = top_users.entry(name.clone()).or_default();
            *top = (*top).max(users);
            report.rows.push(vec![
                Cell::text(name),
                Cell::text(if period == 0 { "day" } else { "month" }),
                Cell::text(date),
                Cell::Int(runs),
                Cell::Int(users),
            ]);
        }
        let peaks = top_users.into_iter().map(|(n, u)| (n, u as f64)).collect();
        report.chart = bars("Peak concurrent users in the period", "users", peaks);
        Ok(())
    }

    async fn tasks(&self, report: &mut Report) -> Result<()> {
        report.columns = vec![
            Column::text("task", "Task"),
            Column::text("enabled", "Enabled"),
            Column::number("every_hours", "Every"),
            Column::number("age_days", "Age (days)"),
            Column::text("last_run", "Last run (UTC)"),
            Column::number("duration_hours", "Duration"),
            Column::number("rows", "Rows"),
            Column::number("watermark", "Watermark"),
            Column::number("pending", "Pending records"),
            Column::text("last_error", "Last error"),
        ];
        let newest = self.store.newest_time_serial().await?;
        report.notes.push(format!(
            "Newest TimeSerial handed out: {newest}. The summarising tasks' watermark is the \
             TimeSerial they have taken in; delete_aged_usage's is the newest cut-off it used \
             (raw records that ended before it may have been deleted)."
        ));
        for t in self.store.tasks().await? {
            let summarises = Task::parse(&t.name).is_some_and(Task::reads_raw_usage);
            let pending = match summarises {
                true => Cell::Int(self.store.usage_pending(t.watermark).await?),
                false => Cell::Empty,
            };
            let int = |v: Option<i64>| v.map(Cell::Int).unwrap_or(Cell::Empty);
            report.rows.push(vec![
                Cell::text(&t.name),
                Cell::text(if t.enabled { "yes" } else { "no" }),
                Cell::Duration(t.every_secs.saturating_mul(1000)),
                int(t.age_days.map(i64::from)),
                t.last_run_at
                    .map(Cell::time)
                    .unwrap_or_else(|| Cell::text("never")),
                t.last_duration_ms
                    .map(Cell::Duration)
                    .unwrap_or(Cell::Empty),
                int(t.last_rows),
                watermark_cell(&t),
                pending,
                t.last_error.map(Cell::Text).unwrap_or(Cell::Empty),
            ]);
        }
        Ok(())
    }
}
