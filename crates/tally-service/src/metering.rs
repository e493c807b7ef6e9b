//! The system-metering report (seed 003, docs/system-metering.md): the installation measures
//! itself, writes `System_Metering_Report.{dat,html,pdf}` into
//! `<data dir>/metering/reports/<day>/` (the DAT signed with the site key), keeps every payload
//! it sends readable in `<data dir>/metering/outbox/` until it is sent (then `sent/`), sends it
//! to the upload URL when one is set (retrying what is left on the next run), records each
//! certificate's fingerprint as an installation on the server's own device, and sets the
//! compare values of the license models that measure devices, users or operators.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tally_api::MeteringRun;
use tally_core::certificates::{signed_payload, Measure, SigningKey};
use tally_core::system_metering::{measure, MeteringFacts, MeteringResult, OperatorFact};
use tally_core::Role;

use crate::audit::entry;
use crate::{Result, Service, ServiceError};

/// The report's files' name, without the extension.
pub const REPORT_NAME: &str = "System_Metering_Report";
/// Who the metering's own changes are audited as.
pub const ACTOR: &str = "system-metering";

/// Where the metering writes and sends, and the key it signs with.
#[derive(Clone, Default)]
pub struct MeteringSetup {
    /// `<data dir>/metering`; `None` writes nothing.
    pub dir: Option<PathBuf>,
    /// The site's Ed25519 key, created at first start.
    pub key: Option<SigningKey>,
    /// The `alias` setting of the configuration.
    pub config_alias: Option<String>,
    /// Where reports are sent, when set.
    pub upload_url: Option<String>,
    /// The host name of the server's own device record (its fingerprints go there).
    pub server_host: Option<String>,
}

impl MeteringSetup {
    /// The site's public key in hex, as `tally site key` prints it.
    pub fn public_key(&self) -> Option<String> {
        let key = self.key.as_ref()?;
        Some(hex::encode(key.verifying_key().to_bytes()))
    }
}

fn io_error(path: &Path, e: std::io::Error) -> ServiceError {
    ServiceError::Internal(format!(
        "cannot write the system-metering report at {}: {e}; check the data directory's \
         permissions and free space",
        path.display()
    ))
}

fn make_dir(dir: &Path) -> Result<()> {
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(|e| io_error(dir, e))
}

/// Written aside, then renamed: a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(|e| io_error(&partial, e))?;
    std::fs::rename(&partial, path).map_err(|e| io_error(path, e))
}

/// The figures as the store holds them at `now`; no names are read.
pub async fn result(service: &Service, now: DateTime<Utc>) -> Result<MeteringResult> {
    let store = service.store();
    let relevance = store.status_relevance().await?;
    let devices = store.device_facts().await?;
    let users = store.user_facts().await?;
    let operators: Vec<OperatorFact> = store
        .operator_tokens()
        .await?
        .into_iter()
        .map(|t| OperatorFact {
            write_access: t.role == Role::Admin,
            active: t.revoked_at.is_none(),
        })
        .collect();
    let certificates = store
        .certificates()
        .await?
        .into_iter()
        .map(|c| c.signed.certificate)
        .collect();
    let site = match crate::site::alias(service).await? {
        Some((alias, _)) => alias,
        None => service.site().to_string(),
    };
    let facts = MeteringFacts {
        site,
        certificates,
        relevance: &relevance,
        devices: &devices,
        users: &users,
        operators: &operators,
    };
    Ok(measure(facts, now))
}

/// The report's sections as the files would hold them at `now`, for the console.
pub async fn sections_now(
    service: &Service,
    now: DateTime<Utc>,
) -> Result<Vec<tally_report::Report>> {
    Ok(crate::metering_report::sections(
        &result(service, now).await?,
    ))
}

/// Measures, writes the three files, sends, and feeds the result back into the license
/// models; what it did.
pub async fn run(service: &Service, now: DateTime<Utc>) -> Result<MeteringRun> {
    let setup = service.metering();
    let (Some(dir), Some(key)) = (&setup.dir, &setup.key) else {
        return Err(ServiceError::Invalid(
            "this server has no data directory or site key to write the system-metering \
             report with"
                .into(),
        ));
    };
    let result = result(service, now).await?;
    let folder = dir.join("reports").join(now.date_naive().to_string());
    make_dir(&folder)?;
    let payload = serde_json::to_string(&result)
        .map_err(|e| ServiceError::Internal(format!("the metering result: {e}")))?;
    let dat = signed_payload(&payload, key);
    let sections = crate::metering_report::sections(&result);
    let mut files = Vec::new();
    for (ext, bytes) in [
        ("dat", dat.clone().into_bytes()),
        (
            "html",
            tally_report::render_sections(&sections, tally_report::Format::Html)?,
        ),
        (
            "pdf",
            tally_report::render_sections(&sections, tally_report::Format::Pdf)?,
        ),
    ] {
        let path = folder.join(format!("{REPORT_NAME}.{ext}"));
        write_atomically(&path, &bytes)?;
        files.push(path.display().to_string());
    }
    let sent = match &setup.upload_url {
        Some(url) => transmit(dir, url, &dat, now).await?,
        None => Sent::default(),
    };
    record_fingerprints(service, now).await?;
    let compare_values = update_compare_values(service, &result).await?;
    Ok(MeteringRun {
        folder: folder.display().to_string(),
        files,
        devices: result.relevant_devices,
        users: result.natural_persons,
        operators: result.write_operators,
        uploaded: sent.uploaded,
        pending: sent.pending,
        upload_error: sent.error,
        compare_values: (compare_values.into_iter())
            .map(|(application, quantity)| tally_api::CompareValue {
                application,
                quantity,
            })
            .collect(),
    })
}

/// What an upload run did.
#[derive(Default)]
struct Sent {
    uploaded: Vec<String>,
    pending: Vec<String>,
    error: Option<String>,
}

/// Keeps `dat` in `outbox/` (readable before it is sent), then sends every file waiting there,
/// oldest first, moving each to `sent/` once the endpoint took it; the first failure leaves it
/// and the rest for the next run.
async fn transmit(dir: &Path, url: &str, dat: &str, now: DateTime<Utc>) -> Result<Sent> {
    let (outbox, sent_dir) = (dir.join("outbox"), dir.join("sent"));
    make_dir(&outbox)?;
    make_dir(&sent_dir)?;
    let name = format!("{}-{REPORT_NAME}.dat", now.format("%Y%m%dT%H%M%S%.6fZ"));
    write_atomically(&outbox.join(&name), dat.as_bytes())?;
    let mut waiting: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .map_err(|e| io_error(&outbox, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .collect();
    waiting.sort();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| ServiceError::Internal(format!("the upload client: {e}")))?;
    let mut sent = Sent::default();
    for path in waiting {
        let file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if sent.error.is_some() {
            sent.pending.push(file);
            continue;
        }
        let body = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        match upload(&client, url, &file, body).await {
            Ok(()) => {
                let to = sent_dir.join(&file);
                std::fs::rename(&path, &to).map_err(|e| io_error(&to, e))?;
                sent.uploaded.push(file);
            }
            Err(e) => {
                tracing::warn!(%url, file, error = %e, "system-metering upload failed; kept in the outbox for the next run");
                sent.error = Some(e);
                sent.pending.push(file);
            }
        }
    }
    Ok(sent)
}

async fn upload(
    client: &reqwest::Client,
    url: &str,
    file: &str,
    body: Vec<u8>,
) -> std::result::Result<(), String> {
    let resp = client
        .post(url)
        .header("content-type", "text/plain; charset=utf-8")
        .header("x-tally-file", file)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{url} cannot be reached: {e}"))?;
    match resp.status().is_success() {
        true => Ok(()),
        false => Err(format!("{url} answered {}", resp.status())),
    }
}

/// Each stored certificate's fingerprint, recorded as an installation on the server's own
/// device record when there is one (named as the server's host).
pub async fn record_fingerprints(service: &Service, now: DateTime<Utc>) -> Result<u64> {
    let Some(host) = &service.metering().server_host else {
        return Ok(0);
    };
    let store = service.store();
    let devices = store.compliance_devices().await?;
    let Some(device) = devices
        .iter()
        .find(|d| d.host_name.eq_ignore_ascii_case(host))
    else {
        return Ok(0);
    };
    let fingerprints: Vec<(String, String)> = store
        .certificates()
        .await?
        .iter()
        .map(|c| {
            (
                c.certificate().fingerprint(),
                c.certificate().issuer.clone(),
            )
        })
        .collect();
    Ok(store
        .put_fingerprints(device.id, &fingerprints, now)
        .await?)
}

/// Sets the compare value of every application a metering measure keeps to the result's
/// figure; the applications and values set, by name.
async fn update_compare_values(
    service: &Service,
    result: &MeteringResult,
) -> Result<Vec<(String, i64)>> {
    let store = service.store();
    let measures = store.metering_measures().await?;
    if measures.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<(i64, i64)> = measures
        .iter()
        .map(|(app, m)| {
            let n = match m {
                Measure::MeteredDevices => result.relevant_devices,
                Measure::MeteredUsers => result.natural_persons,
                Measure::MeteredOperators => result.write_operators,
            };
            (*app, n)
        })
        .collect();
    let names: std::collections::HashMap<i64, String> = store
        .applications()
        .await?
        .into_iter()
        .map(|a| (a.application.id, a.application.name))
        .collect();
    let named: Vec<(String, i64)> = values
        .iter()
        .map(|(id, n)| (names.get(id).cloned().unwrap_or_default(), *n))
        .collect();
    let audit = entry(
        ACTOR,
        "metering.compare_values",
        "custom_values".into(),
        &named,
    );
    store.set_compare_values(&values, Some(&audit)).await?;
    Ok(named)
}

/// Sets one device status's four criteria, as `actor`; every status's criteria after.
pub async fn set_relevance(
    service: &Service,
    actor: &str,
    relevance: &tally_core::system_metering::StatusRelevance,
) -> Result<Vec<tally_core::system_metering::StatusRelevance>> {
    let target = format!("device_status:{}", relevance.status.as_str());
    let audit = entry(actor, "metering.relevance", target, relevance);
    let store = service.store();
    store.set_status_relevance(relevance, Some(&audit)).await?;
    Ok(store.status_relevance().await?)
}

/// [`run`] on an operator's request, under the `system_metering` task's lock so it never runs
/// beside the scheduled run (here or on another replica).
pub async fn run_now(service: &Service, now: DateTime<Utc>) -> Result<MeteringRun> {
    let name = tally_core::tasks::Task::SystemMetering.name();
    let Some(lock) = service.store().lock_task(name).await? else {
        return Err(ServiceError::Conflict(
            "the system-metering report is being written already (the system_metering task); \
             run it again after"
                .into(),
        ));
    };
    let done = run(service, now).await;
    lock.release().await?;
    done
}
