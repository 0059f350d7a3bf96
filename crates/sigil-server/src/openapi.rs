//! The OpenAPI document, generated from the handlers' annotations (`/api/v1/openapi.json`).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("An API key: `Authorization: Bearer sgl_<id>_<secret>`".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sigil",
        description = "Team-scoped secrets, encrypted at rest, with versions, roles and an audit log. \
                       Every error is `{\"error\": {\"code\", \"message\"}}`.",
    ),
    paths(
        api::whoami,
        api::list_teams,
        api::create_team,
        api::list_secrets,
        api::get_secret,
        api::put_secret,
        api::delete_secret,
        api::history,
        api::restore_secret,
        api::batch_read,
        api::list_keys,
        api::create_key,
        api::revoke_key,
        api::audit_log,
    ),
    modifiers(&BearerKey),
    tags(
        (name = "secrets", description = "Secrets: values, versions, history, deletion and restore"),
        (name = "keys", description = "API keys and roles"),
        (name = "teams", description = "Teams (bootstrap administrator)"),
        (name = "audit", description = "The audit log"),
    )
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
