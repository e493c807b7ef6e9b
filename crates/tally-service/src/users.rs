//! People's rights over what Tally holds about them: forgetting one person, and (on a site
//! that pseudonymises) resolving one pseudonym for an admin who must know who it is. Both are
//! audit-logged, and neither audit entry holds the plain name.

use tally_api::ServiceAccountChoice;
use tally_core::{limits, User};
use tally_store::Forgotten;

use crate::audit::entry;
use crate::{Result, Service, ServiceError};

/// The names `account` may be stored under, checked: on a pseudonymising site its pseudonym
/// first, and the plain name, under which it was stored if it came before the setting was on.
fn stored_names(service: &Service, account: &str) -> Result<Vec<String>> {
    limits::check_name("account", account, limits::MAX_NAME)?;
    let mut stored = vec![account.to_string()];
    if let Some(p) = service.pseudonyms() {
        stored.insert(0, p.account(account));
        stored.dedup();
    }
    Ok(stored)
}

/// Erases `account` (as the endpoint or an import named it, or its pseudonym): the user
/// becomes `forgotten-ID` without a full name, its local accounts leave every inventory, and
/// its usage stays, attributed to that anonymous user, so licenses per user still count it.
pub async fn forget(service: &Service, actor: &str, account: &str) -> Result<Forgotten> {
    // Both names the person may be stored under are erased.
    let stored = stored_names(service, account)?;
    let audit = |f: &Forgotten| {
        let target = match f.user_id {
            Some(id) => format!("user:{id}"),
            None => "user:none".to_string(),
        };
        entry(actor, "user.forget", target, f)
    };
    let mut forgotten = Forgotten {
        user_id: None,
        local_accounts: 0,
    };
    for name in &stored {
        let found = service.store().forget_user(name, Some(&audit)).await?;
        forgotten.user_id = forgotten.user_id.or(found.user_id);
        forgotten.local_accounts += found.local_accounts;
    }
    if !forgotten.anything() {
        return Err(ServiceError::NotFound(format!(
            "no user or local account {account:?}; see tally users"
        )));
    }
    Ok(forgotten)
}

/// Sets (`yes`/`no`) or clears (`auto`) the administrator's classification of `account` as a
/// service account, as `actor`. It wins over inventory and import, and survives both.
pub async fn set_service_account(
    service: &Service,
    actor: &str,
    account: &str,
    choice: ServiceAccountChoice,
) -> Result<User> {
    // The name as listed is accepted too, when it is the pseudonym.
    let stored = stored_names(service, account)?;
    let audit = |u: &User| {
        let detail = serde_json::json!({ "service_account": choice });
        entry(
            actor,
            "user.service_account",
            format!("user:{}", u.id),
            detail,
        )
    };
    for name in &stored {
        let store = service.store();
        let set = store
            .set_service_account(name, choice.override_value(), Some(&audit))
            .await?;
        if let Some(user) = set {
            return Ok(user);
        }
    }
    Err(ServiceError::NotFound(format!(
        "no user {account:?}; see tally users (users appear with their first usage)"
    )))
}

/// The account behind `pseudonym`, for `actor`; written to the audit log before it is told.
pub async fn resolve(service: &Service, actor: &str, pseudonym: &str) -> Result<String> {
    limits::check_text("pseudonym", pseudonym, limits::MAX_TEXT)?;
    let Some(pseudonyms) = service.pseudonyms() else {
        return Err(ServiceError::Invalid(
            "this site does not pseudonymise names (pseudonymize_users is off); there is nothing to resolve".into(),
        ));
    };
    let account = pseudonyms
        .resolve_account(pseudonym)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let note = entry(
        actor,
        "user.resolve_pseudonym",
        format!("pseudonym:{pseudonym}"),
        (),
    );
    service.store().append_audit(&note).await?;
    Ok(account)
}
