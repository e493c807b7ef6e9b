//! `tally sites`: the hierarchy below this site, inviting a child site, revoking one.

use anyhow::Result;
use clap::Subcommand;
use tally_api::InviteSite;
use tally_core::SiteCode;

use crate::admin::ApiArgs;
use crate::output::print;

#[derive(Subcommand, Debug)]
pub enum SitesCmd {
    /// The tree below this site: each site's link, last sync, lag, backlog, devices and
    /// records (the default).
    List,
    /// Invite a child site: prints the one-time join secret its server starts with
    /// (`tally server --site-code CODE --parent-url URL --parent-token SECRET`).
    Invite {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// Hours the secret stays valid (1 to 720).
        #[arg(long)]
        expires_hours: Option<u32>,
    },
    /// Revoke a child site's link: its syncs are refused until it is invited and joins again.
    Revoke { code: String },
}

const TREE: [&str; 10] = [
    "code",
    "name",
    "parent",
    "depth",
    "link",
    "last_sync_at",
    "lag_secs",
    "backlog",
    "devices",
    "records",
];

pub async fn sites(api: &ApiArgs, cmd: Option<SitesCmd>) -> Result<()> {
    let client = api.client()?;
    match cmd.unwrap_or(SitesCmd::List) {
        SitesCmd::List => print(&client.site_tree().await?, &TREE, api.format)?,
        SitesCmd::Invite {
            code,
            name,
            expires_hours,
        } => {
            let req = InviteSite {
                code: SiteCode::parse(&code)?,
                name,
                expires_hours,
            };
            let invited = client.invite_site(&req).await?;
            print(
                &[invited],
                &["code", "name", "secret", "expires_at"],
                api.format,
            )?;
        }
        SitesCmd::Revoke { code } => {
            client.revoke_site(&code).await?;
            eprintln!("Site {code}'s link is revoked.");
        }
    }
    Ok(())
}
