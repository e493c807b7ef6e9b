//! The report catalogue: each report's name, what it shows and its typed parameters, with the
//! defaults that let every report run without any.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ReportError;

/// A report the catalogue offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    MonthlyUsage,
    ProgramUsers,
    ProgramComputers,
    Reclaim,
    HeatMap,
    Concurrency,
    Tasks,
    EffectiveLicensePosition,
}

/// What a parameter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// A metering rule's name, any case.
    Program,
    /// A licensed application's name, any case.
    Application,
    /// A site's code (at a parent: that site and the sites below it).
    Site,
    /// `YYYY-MM`.
    Month,
    /// `YYYY-MM-DD`.
    Date,
    /// A whole number in a range.
    Integer { min: i64, max: i64 },
}

/// What a parameter is when it is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// The first day of the month this many months before today's.
    MonthsAgo(u32),
    DaysAgo(u64),
    Integer(i64),
    /// The program with the most usage in the report's period.
    MostUsedProgram,
    /// Every program.
    AllPrograms,
    /// Every application.
    AllApplications,
    /// This site and every site below it.
    WholeSubtree,
}

impl DefaultValue {
    fn describe(self) -> String {
        match self {
            DefaultValue::MonthsAgo(0) => "this month".into(),
            DefaultValue::MonthsAgo(n) => format!("{n} months ago"),
            DefaultValue::DaysAgo(0) => "today".into(),
            DefaultValue::DaysAgo(n) => format!("{n} days ago"),
            DefaultValue::Integer(n) => n.to_string(),
            DefaultValue::MostUsedProgram => "the most used program in the period".into(),
            DefaultValue::AllPrograms => "every program".into(),
            DefaultValue::AllApplications => "every application".into(),
            DefaultValue::WholeSubtree => "this site and every site below it".into(),
        }
    }
}

/// One typed parameter of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamDef {
    pub name: &'static str,
    pub kind: ParamKind,
    pub default: DefaultValue,
    pub help: &'static str,
}

/// A report in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportDef {
    pub kind: ReportKind,
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub params: &'static [ParamDef],
}

const FROM_MONTH: ParamDef = ParamDef {
    name: "from",
    kind: ParamKind::Month,
    default: DefaultValue::MonthsAgo(11),
    help: "first month (YYYY-MM), on the clients' calendars",
};
const TO_MONTH: ParamDef = ParamDef {
    name: "to",
    kind: ParamKind::Month,
    default: DefaultValue::MonthsAgo(0),
    help: "last month included (YYYY-MM)",
};
const FROM_DAY: ParamDef = ParamDef {
    name: "from",
    kind: ParamKind::Date,
    default: DefaultValue::DaysAgo(89),
    help: "first day (YYYY-MM-DD, UTC)",
};
const TO_DAY: ParamDef = ParamDef {
    name: "to",
    kind: ParamKind::Date,
    default: DefaultValue::DaysAgo(0),
    help: "last day included (YYYY-MM-DD, UTC)",
};
const ONE_PROGRAM: ParamDef = ParamDef {
    name: "program",
    kind: ParamKind::Program,
    default: DefaultValue::MostUsedProgram,
    help: "the metering rule's name",
};
const SITE: ParamDef = ParamDef {
    name: "site",
    kind: ParamKind::Site,
    default: DefaultValue::WholeSubtree,
    help: "only devices of this site and the sites below it (a site code; at a parent)",
};
const ANY_PROGRAM: ParamDef = ParamDef {
    name: "program",
    kind: ParamKind::Program,
    default: DefaultValue::AllPrograms,
    help: "only this metering rule",
};

/// Every report Tally offers, in the order `tally report list` shows them.
pub const CATALOGUE: &[ReportDef] = &[
    ReportDef {
        kind: ReportKind::MonthlyUsage,
        name: "monthly-usage",
        title: "Usage of metered programs per month",
        description: "Runs, distinct users, distinct computers and hours of each metered program, per month.",
        params: &[FROM_MONTH, TO_MONTH, SITE],
    },
    ReportDef {
        kind: ReportKind::ProgramUsers,
        name: "program-users",
        title: "Users of a program",
        description: "Users who ran a program: runs, hours, computers used and last use.",
        params: &[ONE_PROGRAM, FROM_MONTH, TO_MONTH, SITE],
    },
    ReportDef {
        kind: ReportKind::ProgramComputers,
        name: "program-computers",
        title: "Computers that ran a program",
        description: "Computers on which a program ran: runs, hours, distinct users and last use.",
        params: &[ONE_PROGRAM, FROM_MONTH, TO_MONTH, SITE],
    },
    ReportDef {
        kind: ReportKind::Reclaim,
        name: "reclaim",
        title: "Installed but unused (reclaim list)",
        description: "Installations whose use is known (metered or imported) and that were not used for a number of days, with their last use, the license each would free and the cost it ties up; then the applications whose use is unknown (no usage data), counted, never as unused. The same list as tally reclaim.",
        params: &[
            ParamDef {
                name: "application",
                kind: ParamKind::Application,
                default: DefaultValue::AllApplications,
                help: "only this application",
            },
            ParamDef {
                name: "days",
                kind: ParamKind::Integer { min: 1, max: 3650 },
                default: DefaultValue::Integer(90),
                help: "unused for at least this many days before the end of as-of",
            },
            ParamDef {
                name: "as-of",
                kind: ParamKind::Date,
                default: DefaultValue::DaysAgo(0),
                help: "installations and device statuses as they stood at the end of this day (YYYY-MM-DD)",
            },
            SITE,
        ],
    },
    ReportDef {
        kind: ReportKind::HeatMap,
        name: "heat-map",
        title: "Usage by day of week and hour",
        description: "Hours of use of a program in each hour of each day of the week.",
        params: &[
            ONE_PROGRAM,
            ParamDef {
                default: DefaultValue::DaysAgo(27),
                ..FROM_DAY
            },
            TO_DAY,
            ParamDef {
                name: "utc-offset",
                kind: ParamKind::Integer { min: -12, max: 14 },
                default: DefaultValue::Integer(0),
                help: "hours added to UTC to place usage on a local clock",
            },
            SITE,
        ],
    },
    ReportDef {
        kind: ReportKind::Concurrency,
        name: "concurrency",
        title: "Concurrent usage",
        description: "The peak of concurrent runs and of concurrent users of each program, per day and per month.",
        params: &[ANY_PROGRAM, FROM_DAY, TO_DAY, SITE],
    },
    ReportDef {
        kind: ReportKind::EffectiveLicensePosition,
        name: "elp",
        title: "Effective License Position",
        description: "Per application: metric, required, owned, covered, shortfall with its cost, surplus with its value and the reasons; totals per currency; licenses and maintenance ending soon.",
        params: &[
            ParamDef {
                name: "as-of",
                kind: ParamKind::Date,
                default: DefaultValue::DaysAgo(0),
                help: "the position as it stood at the end of this day (YYYY-MM-DD)",
            },
            ParamDef {
                name: "days",
                kind: ParamKind::Integer { min: 1, max: 3650 },
                default: DefaultValue::Integer(90),
                help: "list licenses and maintenance ending within this many days of as-of",
            },
            SITE,
        ],
    },
    ReportDef {
        kind: ReportKind::Tasks,
        name: "tasks",
        title: "Summarisation and maintenance tasks",
        description: "Each maintenance task's schedule, last run, rows, watermark and backlog.",
        params: &[],
    },
];

/// The report named `name`.
pub fn find(name: &str) -> Result<&'static ReportDef, ReportError> {
    CATALOGUE
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ReportError::UnknownReport {
            name: name.into(),
            known: names(),
        })
}

fn names() -> String {
    CATALOGUE
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A parameter's value, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// A program's name, or `None` for the report's default choice.
    Program(Option<String>),
    /// An application's name, or `None` for every application.
    Application(Option<String>),
    /// A site's code as given, or `None` for this site's whole subtree.
    Site(Option<String>),
    /// `yyyymm`.
    Month(i32),
    Date(NaiveDate),
    Integer(i64),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Program(Some(p))
            | ParamValue::Application(Some(p))
            | ParamValue::Site(Some(p)) => f.write_str(p),
            ParamValue::Program(None) | ParamValue::Application(None) | ParamValue::Site(None) => {
                f.write_str("(default)")
            }
            ParamValue::Month(m) => write!(f, "{}-{:02}", m / 100, m % 100),
            ParamValue::Date(d) => write!(f, "{d}"),
            ParamValue::Integer(n) => write!(f, "{n}"),
        }
    }
}

/// A report's parameters, every one decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(BTreeMap<&'static str, ParamValue>);

impl Params {
    pub fn month(&self, name: &str) -> i32 {
        match self.0.get(name) {
            Some(ParamValue::Month(m)) => *m,
            other => panic!("parameter {name} is not a month: {other:?}"),
        }
    }

    pub fn date(&self, name: &str) -> NaiveDate {
        match self.0.get(name) {
            Some(ParamValue::Date(d)) => *d,
            other => panic!("parameter {name} is not a date: {other:?}"),
        }
    }

    pub fn integer(&self, name: &str) -> i64 {
        match self.0.get(name) {
            Some(ParamValue::Integer(n)) => *n,
            other => panic!("parameter {name} is not an integer: {other:?}"),
        }
    }

    pub fn program(&self) -> Option<&str> {
        match self.0.get("program") {
            Some(ParamValue::Program(p)) => p.as_deref(),
            _ => None,
        }
    }

    pub fn application(&self) -> Option<&str> {
        match self.0.get("application") {
            Some(ParamValue::Application(a)) => a.as_deref(),
            _ => None,
        }
    }

    /// The site code given, upper-cased; `None` for the whole subtree.
    pub fn site(&self) -> Option<String> {
        match self.0.get("site") {
            Some(ParamValue::Site(s)) => s.as_deref().map(str::to_ascii_uppercase),
            _ => None,
        }
    }

    /// `name = value` pairs in the catalogue's order, for report headers.
    pub fn describe(&self, def: &ReportDef) -> Vec<(String, String)> {
        def.params
            .iter()
            .filter_map(|p| {
                let value = match self.0.get(p.name)? {
                    ParamValue::Program(None)
                    | ParamValue::Application(None)
                    | ParamValue::Site(None) => p.default.describe(),
                    ParamValue::Site(Some(code)) => code.to_ascii_uppercase(),
                    v => v.to_string(),
                };
                Some((p.name.to_string(), value))
            })
            .collect()
    }
}

impl ReportDef {
    /// Parses `name=value` parameters, filling in defaults relative to `today`. Unknown names
    /// and malformed values are refused with the accepted names or the expected form.
    pub fn params(
        &self,
        given: &[(String, String)],
        today: NaiveDate,
    ) -> Result<Params, ReportError> {
        let mut values = BTreeMap::new();
        for (name, raw) in given {
            let def = self.params.iter().find(|p| p.name == name).ok_or_else(|| {
                ReportError::UnknownParam {
                    report: self.name.into(),
                    param: name.clone(),
                    allowed: self.param_names(),
                }
            })?;
            values.insert(def.name, parse_value(def, raw.trim())?);
        }
        for def in self.params {
            values
                .entry(def.name)
                .or_insert_with(|| default_value(def, today));
        }
        let params = Params(values);
        self.check_range(&params)?;
        Ok(params)
    }

    fn param_names(&self) -> String {
        match self.params.is_empty() {
            true => "none".into(),
            false => self
                .params
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn check_range(&self, params: &Params) -> Result<(), ReportError> {
        let (Some(from), Some(to)) = (params.0.get("from"), params.0.get("to")) else {
            return Ok(());
        };
        let backwards = match (from, to) {
            (ParamValue::Month(a), ParamValue::Month(b)) => a > b,
            (ParamValue::Date(a), ParamValue::Date(b)) => a > b,
            _ => false,
        };
        match backwards {
            true => Err(ReportError::BadParam {
                param: "from".into(),
                message: format!("{from} is after to ({to}); give a from no later than to"),
            }),
            false => Ok(()),
        }
    }
}

fn parse_value(def: &ParamDef, raw: &str) -> Result<ParamValue, ReportError> {
    let bad = |expected: String| ReportError::BadParam {
        param: def.name.into(),
        message: format!("{raw:?} is not {expected}"),
    };
    match def.kind {
        ParamKind::Program if raw.is_empty() => Err(bad("a program's rule name".into())),
        ParamKind::Program => Ok(ParamValue::Program(Some(raw.into()))),
        ParamKind::Application if raw.is_empty() => Err(bad("an application's name".into())),
        ParamKind::Application => Ok(ParamValue::Application(Some(raw.into()))),
        ParamKind::Site => tally_core::SiteCode::parse(raw)
            .map(|_| ParamValue::Site(Some(raw.into())))
            .map_err(|_| bad("a site code; three letters or digits, e.g. P01".into())),
        ParamKind::Month => NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d")
            .map(|d| ParamValue::Month(tally_core::summary::month_of(d)))
            .map_err(|_| bad("a month; write YYYY-MM, e.g. 2026-03".into())),
        ParamKind::Date => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map(ParamValue::Date)
            .map_err(|_| bad("a date; write YYYY-MM-DD, e.g. 2026-03-31".into())),
        ParamKind::Integer { min, max } => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .map(ParamValue::Integer)
            .ok_or_else(|| bad(format!("a whole number from {min} to {max}"))),
    }
}

fn default_value(def: &ParamDef, today: NaiveDate) -> ParamValue {
    match def.default {
        DefaultValue::MonthsAgo(n) => {
            let first = today.with_day(1).expect("day 1 exists");
            let month = first.checked_sub_months(Months::new(n)).unwrap_or(first);
            ParamValue::Month(tally_core::summary::month_of(month))
        }
        DefaultValue::DaysAgo(n) => ParamValue::Date(
            today
                .checked_sub_days(chrono::Days::new(n))
                .unwrap_or(today),
        ),
        DefaultValue::Integer(n) => ParamValue::Integer(n),
        DefaultValue::MostUsedProgram | DefaultValue::AllPrograms => ParamValue::Program(None),
        DefaultValue::AllApplications => ParamValue::Application(None),
        DefaultValue::WholeSubtree => ParamValue::Site(None),
    }
}

/// A catalogue entry as `tally report list --format json` and the API show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportInfo {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub params: Vec<ParamInfo>,
}

/// A parameter as the catalogue listing shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParamInfo {
    pub name: &'static str,
    pub kind: ParamKind,
    /// What the report uses when the parameter is not given.
    pub default: String,
    pub help: &'static str,
}

impl From<&ReportDef> for ReportInfo {
    fn from(def: &ReportDef) -> Self {
        Self {
            name: def.name,
            title: def.title,
            description: def.description,
            params: def
                .params
                .iter()
                .map(|p| ParamInfo {
                    name: p.name,
                    kind: p.kind,
                    default: p.default.describe(),
                    help: p.help,
                })
                .collect(),
        }
    }
}
