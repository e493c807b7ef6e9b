//! `tally site`: this site's alias and public key, the device statuses' relevance for the
//! system-metering report; and `tally report system-metering`, which runs that report.

use anyhow::{bail, Result};
use clap::Subcommand;
use tally_core::system_metering::StatusRelevance;
use tally_core::DeviceStatus;

use crate::admin::{typed, ApiArgs, ServerConn};
use crate::output::{print, print_value};

/// The report `tally report` runs through the system-metering endpoint.
pub const SYSTEM_METERING: &str = "system-metering";

#[derive(Subcommand, Debug)]
pub enum SiteCmd {
    /// Show this site: code, name, alias and its source, public key (the default).
    Show,
    /// Print the site's public key (hex): whoever receives a signed report verifies it with
    /// `tally certificates verify-report FILE --key KEY`.
    Key,
    /// Set the alias that heads every report instead of the server's name (empty removes it).
    Set {
        #[arg(long)]
        alias: String,
    },
    /// Show each device status's four criteria, or set one status's.
    Relevance {
        /// The status to set: in_stock, active, in_repair, retired.
        status: Option<String>,
        /// Relevant for license compliance.
        #[arg(long, requires = "status")]
        compliance: Option<bool>,
        /// Relevant for end-of-life monitoring.
        #[arg(long, requires = "status")]
        end_of_life: Option<bool>,
        /// Relevant for principal-user assignment.
        #[arg(long, requires = "status")]
        principal_user: Option<bool>,
        /// Relevant for the help desk.
        #[arg(long, requires = "status")]
        help_desk: Option<bool>,
    },
}

const RELEVANCE: [&str; 5] = [
    "status",
    "compliance",
    "end_of_life",
    "principal_user",
    "help_desk",
];

pub async fn site(api: &ApiArgs, cmd: Option<SiteCmd>) -> Result<()> {
    let client = api.client()?;
    match cmd.unwrap_or(SiteCmd::Show) {
        SiteCmd::Show => {
            let site = client.site().await?;
            let columns = ["code", "name", "alias", "alias_source", "public_key"];
            print(&[site], &columns, api.format)?;
        }
        SiteCmd::Key => match client.site().await?.public_key {
            Some(key) => println!("{key}"),
            None => bail!(
                "this server has no site key (it is made at the first start in the data directory)"
            ),
        },
        SiteCmd::Set { alias } => {
            let site = client.set_alias(&alias).await?;
            print(&[site], &["code", "alias", "alias_source"], api.format)?;
        }
        SiteCmd::Relevance { status: None, .. } => {
            print(&client.relevance().await?, &RELEVANCE, api.format)?
        }
        SiteCmd::Relevance {
            status: Some(status),
            compliance,
            end_of_life,
            principal_user,
            help_desk,
        } => {
            let status: DeviceStatus = typed("status", &status)?;
            let all = client.relevance().await?;
            let Some(mut r) = all.into_iter().find(|r| r.status == status) else {
                bail!("the server has no criteria for {}", status.as_str());
            };
            let set = |v: &mut bool, to: Option<bool>| *v = to.unwrap_or(*v);
            set(&mut r.compliance, compliance);
            set(&mut r.end_of_life, end_of_life);
            set(&mut r.principal_user, principal_user);
            set(&mut r.help_desk, help_desk);
            let all: Vec<StatusRelevance> = client.set_relevance(&r).await?;
            print(&all, &RELEVANCE, api.format)?;
        }
    }
    Ok(())
}

/// `tally report system-metering`: the server writes the three files; this prints where and
/// the figures.
pub async fn system_metering(conn: &ServerConn, format: Option<&str>) -> Result<()> {
    let run = conn.client()?.system_metering().await?;
    if format == Some("json") {
        return Ok(print_value(&run)?);
    }
    println!("wrote {}", run.folder);
    for f in &run.files {
        println!("  {f}");
    }
    println!(
        "devices in relevant statuses: {}; natural persons: {}; operators with write access: {}",
        run.devices, run.users, run.operators
    );
    for v in &run.compare_values {
        println!("compare value of {}: {}", v.application, v.quantity);
    }
    for f in &run.uploaded {
        println!("sent {f}");
    }
    if let Some(e) = &run.upload_error {
        println!(
            "not sent yet ({} waiting in the outbox, retried on the next run): {e}",
            run.pending.len()
        );
    }
    Ok(())
}
