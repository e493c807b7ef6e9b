//! The site hierarchy as the admin API shows it: invitations for child sites and the tree
//! with each site's sync status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_core::hierarchy::SiteLink;
use tally_core::SiteCode;
use utoipa::ToSchema;

use crate::{Client, ClientError};

/// `POST /api/v1/sites/invites`: a child site to invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteSite {
    pub code: SiteCode,
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// How long the join secret stays valid, 1 to 720 hours (default 72).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 720)]
    pub expires_hours: Option<u32>,
}

/// The invitation: the one-time join secret is shown here once and only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteInvited {
    pub code: SiteCode,
    pub name: String,
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// One site of the tree below (and including) this one, with what its parent last heard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteRow {
    pub code: SiteCode,
    pub name: String,
    pub parent: Option<SiteCode>,
    /// 0 for this site, 1 for its children, and so on.
    pub depth: u32,
    /// This site, or a direct child's link: `invited`, `joined`, `revoked`; `below` for a
    /// grandchild (its link is its own parent's).
    pub link: String,
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Seconds since the site last had nothing left to send (its data here is at most this
    /// old); none before its first complete sync.
    pub lag_secs: Option<i64>,
    /// Records the site still held unsent at its last sync.
    pub backlog: i64,
    /// Devices whose agents report at this site.
    pub devices: i64,
    /// Raw usage records of those devices held here.
    pub records: i64,
}

impl From<&SiteLink> for SiteInvited {
    fn from(link: &SiteLink) -> Self {
        Self {
            code: link.code.clone(),
            name: link.name.clone(),
            secret: String::new(),
            expires_at: link.expires_at,
        }
    }
}

impl Client {
    pub async fn site_tree(&self) -> Result<Vec<SiteRow>, ClientError> {
        self.get("/api/v1/sites/tree").await
    }

    pub async fn invite_site(&self, req: &InviteSite) -> Result<SiteInvited, ClientError> {
        self.post("/api/v1/sites/invites", req).await
    }

    pub async fn revoke_site(&self, code: &str) -> Result<(), ClientError> {
        self.delete(&format!("/api/v1/sites/{}/link", crate::urlencode(code)))
            .await
    }
}
