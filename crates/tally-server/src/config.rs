//! Server configuration. Each setting comes from, highest precedence first: a command-line flag,
//! a `TALLY_*` environment variable, the TOML file given with `--config`, and the default.
//! Flags and variables are read by the binary's argument parser into [`ConfigOverrides`]; the
//! file is read into [`ConfigFile`]; [`Config::resolve`] layers them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tally_core::SiteCode;

/// Every setting, each optional: the shape of the TOML file and of the flag/env layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: Option<SocketAddr>,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`.
    pub database_url: Option<String>,
    /// Where the SQLite database, reports and agent state live.
    pub data_dir: Option<PathBuf>,
    /// This site's three-character code.
    pub site_code: Option<String>,
    pub site_name: Option<String>,
    /// `text` (default) or `json`.
    pub log_format: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: Option<usize>,
    /// A request taking longer is answered 408.
    pub request_timeout_secs: Option<u64>,
    /// Requests per minute one agent may make (a burst of as many, refilled evenly); 0 = no limit.
    pub agent_requests_per_minute: Option<u32>,
    /// Requests per minute one operator token may make; 0 = no limit.
    pub operator_requests_per_minute: Option<u32>,
    /// Seconds a kept license position stands for new inventory and usage alone; 0 = follow
    /// every one (changes people make are always followed at once).
    pub position_refresh_secs: Option<u64>,
    /// PEM certificate chain; with `tls_key_file`, the server speaks HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Accept plain HTTP on a non-loopback address (logged as a warning at every start).
    pub insecure_http: Option<bool>,
    /// Reports the `write_reports` task writes to `reports/<date>/` in the data directory,
    /// each named as its file, e.g. `["monthly-usage.pdf", "reclaim.csv"]`.
    pub scheduled_reports: Option<Vec<String>>,
    /// Store account and full names as keyed pseudonyms from ingest on (docs/privacy.md).
    pub pseudonymize_users: Option<bool>,
    /// The site's pseudonym key (32 bytes, or their hex); created when missing. Every replica of
    /// a site must use the same file. Default: `pseudonym.key` in the data directory.
    pub pseudonym_key_file: Option<PathBuf>,
    /// The name every report gives this site instead of its server's name (seed 003's alias),
    /// e.g. `Production`; `tally site set --alias` and `metering/serveralias.txt` take
    /// precedence.
    pub alias: Option<String>,
    /// Where the system-metering report is sent (HTTP POST of the signed DAT); none: kept
    /// locally only.
    pub metering_upload_url: Option<String>,
    /// The parent site's URL (`https://…`): this site joins it once and syncs with it.
    pub parent_url: Option<String>,
    /// The one-time join secret from `tally sites invite` on the parent; unused once joined.
    pub parent_token: Option<String>,
    /// PEM CA trusted for the parent's certificate besides the system roots.
    pub parent_ca_file: Option<PathBuf>,
    /// Seconds between syncs with the parent (default 60).
    pub sync_interval_secs: Option<u64>,
    /// A file holding the bearer token Prometheus sends to `/metrics`; without it `/metrics`
    /// is off (404). Every replica of a site may use the same file.
    pub metrics_token_file: Option<PathBuf>,
    /// Transactions writing agent uploads at once, each holding every upload waiting when it
    /// began (group commit); 0 writes each upload in a transaction of its own. Default: 1 on
    /// SQLite (one writer), 4 on PostgreSQL.
    pub ingest_writers: Option<usize>,
}

/// Settings from flags and environment; same fields as the file.
pub type ConfigOverrides = ConfigFile;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Per-request protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Per agent: enough for an agent emptying a week-old spool in 10,000-record batches, far
    /// below what one agent in a loop would send.
    pub agent_requests_per_minute: u32,
    /// Per operator token: far above a person or the console, a brake on a runaway script.
    pub operator_requests_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            agent_requests_per_minute: 600,
            operator_requests_per_minute: 3000,
        }
    }
}

/// The settings the server runs with, every one decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub site_code: SiteCode,
    pub site_name: String,
    pub log_format: LogFormat,
    pub limits: Limits,
    pub transport: Transport,
    pub scheduled_reports: Vec<tally_report::ScheduledReport>,
    /// Where the pseudonym key is, when the site pseudonymises names.
    pub pseudonym_key_file: Option<PathBuf>,
    /// How long a kept license position stands for new inventory and usage alone.
    pub position_refresh: Duration,
    /// The configured alias.
    pub alias: Option<String>,
    pub metering_upload_url: Option<String>,
    /// This site's parent, when it has one.
    pub parent: Option<ParentConfig>,
    /// The file holding `/metrics`' bearer token, when metrics are on.
    pub metrics_token_file: Option<PathBuf>,
    /// `ingest_writers` as set (checked to be 0 to [`MAX_INGEST_WRITERS`]); `None`: the
    /// backend's default.
    pub ingest_writers: Option<usize>,
}

/// Most group-commit writers: more only wait on each other's locks.
pub const MAX_INGEST_WRITERS: usize = 64;

/// Where this site's parent is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentConfig {
    pub url: String,
    pub token: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub interval: Duration,
}

/// A minute between syncs: the parent's figures trail the child's by about that, and an idle
/// sync costs one small request.
pub const DEFAULT_SYNC_INTERVAL_SECS: u64 = 60;

/// A kept position stands for new inventory and usage this long by default: agents send
/// inventory daily and their usage becomes sessions on the summaries' schedule, so five
/// minutes hides nothing a license manager acts on, while a busy site's dashboard stays a
/// lookup instead of a recomputation every second.
pub const DEFAULT_POSITION_REFRESH_SECS: u64 = 300;

/// The longest refresh accepted: a day, the snapshots' own rhythm.
const MAX_POSITION_REFRESH_SECS: u64 = 86_400;

/// How the server talks to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS with this certificate chain and key.
    Tls { cert: PathBuf, key: PathBuf },
    /// Plain HTTP: on a loopback address, or anywhere when explicitly allowed.
    Plain { insecure: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("setting {setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "tally-data";
pub const DEFAULT_SITE_CODE: &str = "S01";

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.message().to_string(),
        })
    }

    /// `self` where set, otherwise `lower`.
    fn over(self, lower: ConfigFile) -> ConfigFile {
        ConfigFile {
            listen: self.listen.or(lower.listen),
            database_url: self.database_url.or(lower.database_url),
            data_dir: self.data_dir.or(lower.data_dir),
            site_code: self.site_code.or(lower.site_code),
            site_name: self.site_name.or(lower.site_name),
            log_format: self.log_format.or(lower.log_format),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            request_timeout_secs: self.request_timeout_secs.or(lower.request_timeout_secs),
            agent_requests_per_minute: self
                .agent_requests_per_minute
                .or(lower.agent_requests_per_minute),
            operator_requests_per_minute: self
                .operator_requests_per_minute
                .or(lower.operator_requests_per_minute),
            position_refresh_secs: self.position_refresh_secs.or(lower.position_refresh_secs),
            tls_cert_file: self.tls_cert_file.or(lower.tls_cert_file),
            tls_key_file: self.tls_key_file.or(lower.tls_key_file),
            insecure_http: self.insecure_http.or(lower.insecure_http),
            scheduled_reports: self.scheduled_reports.or(lower.scheduled_reports),
            pseudonymize_users: self.pseudonymize_users.or(lower.pseudonymize_users),
            pseudonym_key_file: self.pseudonym_key_file.or(lower.pseudonym_key_file),
            alias: self.alias.or(lower.alias),
            metering_upload_url: self.metering_upload_url.or(lower.metering_upload_url),
            parent_url: self.parent_url.or(lower.parent_url),
            parent_token: self.parent_token.or(lower.parent_token),
            parent_ca_file: self.parent_ca_file.or(lower.parent_ca_file),
            sync_interval_secs: self.sync_interval_secs.or(lower.sync_interval_secs),
            metrics_token_file: self.metrics_token_file.or(lower.metrics_token_file),
            ingest_writers: self.ingest_writers.or(lower.ingest_writers),
        }
    }
}

/// The parent's settings, checked: an http(s) URL, an interval of 1 s to a day.
fn parent(
    url: Option<String>,
    token: Option<String>,
    ca_file: Option<PathBuf>,
    interval: Option<u64>,
) -> Result<Option<ParentConfig>, ConfigError> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
        return Err(ConfigError::Invalid {
            setting: "parent_url",
            message: format!("{url:?} is not an http:// or https:// URL"),
        });
    }
    let secs = interval.unwrap_or(DEFAULT_SYNC_INTERVAL_SECS);
    if !(1..=86_400).contains(&secs) {
        return Err(ConfigError::Invalid {
            setting: "sync_interval_secs",
            message: format!("{secs} is not 1 to 86400 seconds"),
        });
    }
    Ok(Some(ParentConfig {
        url,
        token: token.filter(|t| !t.is_empty()),
        ca_file,
        interval: Duration::from_secs(secs),
    }))
}

impl Config {
    /// Layers flags/env over the file over the defaults, and validates the result.
    pub fn resolve(overrides: ConfigOverrides, file: ConfigFile) -> Result<Self, ConfigError> {
        let c = overrides.over(file);
        let data_dir = c
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = c
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tally.db").display()));
        let site_code = SiteCode::parse(c.site_code.as_deref().unwrap_or(DEFAULT_SITE_CODE))
            .map_err(|e| ConfigError::Invalid {
                setting: "site_code",
                message: e.message,
            })?;
        let log_format = match c.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid {
                    setting: "log_format",
                    message: format!("{other:?} is not a log format; use text or json"),
                })
            }
        };
        let defaults = Limits::default();
        let listen = c
            .listen
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
        let transport = match (c.tls_cert_file, c.tls_key_file) {
            (Some(cert), Some(key)) => Transport::Tls { cert, key },
            (None, None) if listen.ip().is_loopback() => Transport::Plain { insecure: false },
            (None, None) if c.insecure_http == Some(true) => Transport::Plain { insecure: true },
            (None, None) => {
                return Err(ConfigError::Invalid {
                    setting: "listen",
                    message: format!(
                        "{listen} is not a loopback address and no TLS certificate is set; give tls_cert_file and tls_key_file (--tls-cert, --tls-key), or insecure_http (--insecure-http) to accept plain HTTP"
                    ),
                })
            }
            _ => {
                return Err(ConfigError::Invalid {
                    setting: "tls_cert_file",
                    message: "give both tls_cert_file and tls_key_file, or neither".into(),
                })
            }
        };
        let scheduled_reports = scheduled_reports(c.scheduled_reports)?;
        let position_refresh = position_refresh(c.position_refresh_secs)?;
        let pseudonym_key_file = match c.pseudonymize_users {
            Some(true) => Some(
                c.pseudonym_key_file
                    .unwrap_or_else(|| data_dir.join("pseudonym.key")),
            ),
            _ => None,
        };
        let alias = c.alias.filter(|a| !a.trim().is_empty());
        if alias
            .as_ref()
            .is_some_and(|a| a.chars().count() > 255 || a.chars().any(char::is_control))
        {
            return Err(ConfigError::Invalid {
                setting: "alias",
                message: "at most 255 characters, no control characters".into(),
            });
        }
        let metering_upload_url = c.metering_upload_url.filter(|u| !u.is_empty());
        if let Some(url) = &metering_upload_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
                return Err(ConfigError::Invalid {
                    setting: "metering_upload_url",
                    message: format!("{url:?} is not an http:// or https:// URL"),
                });
            }
        }
        let parent = parent(
            c.parent_url,
            c.parent_token,
            c.parent_ca_file,
            c.sync_interval_secs,
        )?;
        if c.ingest_writers.is_some_and(|w| w > MAX_INGEST_WRITERS) {
            return Err(ConfigError::Invalid {
                setting: "ingest_writers",
                message: format!("0 (no group commit) to {MAX_INGEST_WRITERS}"),
            });
        }
        Ok(Config {
            ingest_writers: c.ingest_writers,
            parent,
            metrics_token_file: c.metrics_token_file,
            alias,
            metering_upload_url,
            pseudonym_key_file,
            position_refresh,
            scheduled_reports,
            listen,
            transport,
            database_url,
            data_dir,
            site_name: c
                .site_name
                .unwrap_or_else(|| format!("Tally site {site_code}")),
            site_code,
            log_format,
            limits: Limits {
                max_body_bytes: c.max_body_bytes.unwrap_or(defaults.max_body_bytes),
                request_timeout: c
                    .request_timeout_secs
                    .map(Duration::from_secs)
                    .unwrap_or(defaults.request_timeout),
                agent_requests_per_minute: c
                    .agent_requests_per_minute
                    .unwrap_or(defaults.agent_requests_per_minute),
                operator_requests_per_minute: c
                    .operator_requests_per_minute
                    .unwrap_or(defaults.operator_requests_per_minute),
            },
        })
    }
}

fn position_refresh(secs: Option<u64>) -> Result<Duration, ConfigError> {
    match secs.unwrap_or(DEFAULT_POSITION_REFRESH_SECS) {
        secs @ 0..=MAX_POSITION_REFRESH_SECS => Ok(Duration::from_secs(secs)),
        secs => Err(ConfigError::Invalid {
            setting: "position_refresh_secs",
            message: format!(
                "{secs} is more than a day; give 0 to {MAX_POSITION_REFRESH_SECS} seconds"
            ),
        }),
    }
}

fn scheduled_reports(
    names: Option<Vec<String>>,
) -> Result<Vec<tally_report::ScheduledReport>, ConfigError> {
    let names = names.unwrap_or_else(|| {
        tally_report::ScheduledReport::DEFAULTS
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    names
        .iter()
        .map(|n| tally_report::ScheduledReport::parse(n))
        .collect::<Result<_, _>>()
        .map_err(|e| ConfigError::Invalid {
            setting: "scheduled_reports",
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_env_beat_the_file_which_beats_defaults() {
        let file: ConfigFile = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            site_code = "f01"
            data_dir = "/var/lib/tally"
            log_format = "json"
            "#,
        )
        .unwrap();
        let overrides = ConfigOverrides {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::resolve(overrides, file).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(c.site_code.as_str(), "F01");
        assert_eq!(c.database_url, "sqlite:///var/lib/tally/tally.db");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn the_parent_is_read_from_the_file_and_checked() {
        let file: ConfigFile = toml::from_str(
            r#"
            site_code = "P01"
            parent_url = "https://central.example:8080"
            parent_token = "tally_secret"
            parent_ca_file = "/etc/tally/ca.pem"
            sync_interval_secs = 30
            "#,
        )
        .unwrap();
        let parent = Config::resolve(Default::default(), file)
            .unwrap()
            .parent
            .unwrap();
        assert_eq!(parent.url, "https://central.example:8080");
        assert_eq!(parent.token.as_deref(), Some("tally_secret"));
        assert_eq!(parent.ca_file, Some(PathBuf::from("/etc/tally/ca.pem")));
        assert_eq!(parent.interval, Duration::from_secs(30));
        let none = Config::resolve(Default::default(), Default::default()).unwrap();
        assert_eq!(none.parent, None);
        for (url, secs, setting) in [
            ("ftp://central", 60, "parent_url"),
            ("https://central", 0, "sync_interval_secs"),
        ] {
            let bad = ConfigOverrides {
                parent_url: Some(url.into()),
                sync_interval_secs: Some(secs),
                ..Default::default()
            };
            let e = Config::resolve(bad, Default::default()).unwrap_err();
            assert!(e.to_string().contains(setting), "{e}");
        }
    }

    #[test]
    fn defaults_alone_make_a_local_sqlite_server() {
        let c = Config::resolve(Default::default(), Default::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.database_url, "sqlite://tally-data/tally.db");
        assert_eq!(c.site_code.as_str(), DEFAULT_SITE_CODE);
    }

    #[test]
    fn bad_values_are_named() {
        let bad = ConfigOverrides {
            log_format: Some("xml".into()),
            ..Default::default()
        };
        let e = Config::resolve(bad, Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("log_format") && e.contains("text or json"),
            "{e}"
        );
        let e = toml::from_str::<ConfigFile>("lissen = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lissen"), "{e}");
        let bad = ConfigOverrides {
            site_code: Some("TOOLONG".into()),
            ..Default::default()
        };
        assert!(Config::resolve(bad, Default::default()).is_err());
        let bad = ConfigOverrides {
            scheduled_reports: Some(vec!["reclaim.docx".into()]),
            ..Default::default()
        };
        let e = Config::resolve(bad, Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("scheduled_reports") && e.contains("pdf, html, csv or json"),
            "{e}"
        );
    }

    #[test]
    fn scheduled_reports_default_to_a_useful_few() {
        let c = Config::resolve(Default::default(), Default::default()).unwrap();
        let files: Vec<_> = c.scheduled_reports.iter().map(|r| r.file_name()).collect();
        assert_eq!(files, tally_report::ScheduledReport::DEFAULTS);
        let file: ConfigFile = toml::from_str(r#"scheduled_reports = ["heat-map.html"]"#).unwrap();
        let c = Config::resolve(Default::default(), file).unwrap();
        assert_eq!(c.scheduled_reports[0].name, "heat-map");
    }
}
