//! The OpenAPI document, assembled from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::{
    admin_api, agent_api, certificates_api, compliance_api, hierarchy_api, identity_api, metrics,
    ops, org_api, read_api, reclaim_api, reports_api, routes, site_api, tasks_api, users_api,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tally API", description = "Software metering and license compliance."),
    paths(
        ops::healthz, ops::readyz, metrics::metrics, routes::openapi, routes::whoami, routes::sites,
        agent_api::enroll, agent_api::policy, agent_api::upload_usage, agent_api::heartbeat, agent_api::upload_inventory, admin_api::auto_rules,
        admin_api::list_tokens, admin_api::create_token, admin_api::revoke_token,
        admin_api::list_enrollment_tokens, admin_api::create_enrollment_token,
        admin_api::revoke_enrollment_token, admin_api::list_agents, admin_api::revoke_agent,
        admin_api::list_rules, admin_api::get_rule, admin_api::create_rule,
        admin_api::update_rule, admin_api::delete_rule, admin_api::audit_log,
        read_api::devices, read_api::device_inventory,
        tasks_api::list, tasks_api::change, tasks_api::run, tasks_api::file_usage, tasks_api::monthly, read_api::users, users_api::forget, users_api::resolve, read_api::files, read_api::usage, read_api::runs,
        reports_api::catalogue, reports_api::report,
        compliance_api::applications, compliance_api::put_application, compliance_api::delete_application, compliance_api::licenses, compliance_api::expiring, compliance_api::add_license, compliance_api::edit_license, compliance_api::delete_license, compliance_api::compliance, compliance_api::compliance_detail, compliance_api::snapshots, compliance_api::reclaim,
        reclaim_api::campaign, reclaim_api::propose, reclaim_api::step,
        certificates_api::list, certificates_api::import, certificates_api::issuers, certificates_api::trust,
        site_api::show, site_api::set_alias, site_api::relevance, site_api::set_relevance, site_api::run,
        identity_api::set_device_status, identity_api::merge_devices, identity_api::set_service_account,
        hierarchy_api::tree, hierarchy_api::invite, hierarchy_api::revoke, hierarchy_api::join, hierarchy_api::sync,
        org_api::nodes, org_api::rules, org_api::add_rule, org_api::delete_rule, org_api::place_device, org_api::place_user,
    ),
    modifiers(&BearerAuth, &EveryRefusal),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An operator token (tally up prints one)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "site",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("<site_code>.<credential> from joining the parent"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "agent",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("<agent_id>.<agent_secret> from enrolment"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token in the server's metrics_token_file"))
                    .build(),
            ),
        );
    }
}

/// The refusals any operation can meet before its handler runs, stated on every operation so
/// the document describes every answer the server gives: a malformed path, query or body
/// (400), a body over `max_body_bytes` (413), a request over `request_timeout_secs` (408), and,
/// for operations that take credentials, a spent request budget (429).
struct EveryRefusal;

impl Modify for EveryRefusal {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let limited = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut refusals = vec![
                    (
                        "400",
                        "Malformed path, query or body; the message says which part and why",
                    ),
                    ("408", "The request took longer than request_timeout_secs"),
                ];
                if operation.request_body.is_some() {
                    refusals.push(("413", "The body is larger than max_body_bytes"));
                }
                if limited {
                    refusals.push((
                        "429",
                        "Over this credential's request budget; Retry-After says when to retry",
                    ));
                }
                for (status, description) in refusals {
                    let responses = &mut operation.responses.responses;
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
    }
}

/// A response whose body is the [`ErrorBody`](tally_api::ErrorBody).
fn error_response(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .build()
        .into()
}

pub(crate) fn openapi_value() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises")
}

/// The document as pretty JSON, e.g. for writing to `docs/`.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
}
