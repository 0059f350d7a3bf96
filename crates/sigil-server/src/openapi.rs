//! The OpenAPI document, generated from the handlers' annotations (`/api/v1/openapi.json`).

use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, Type};
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

/// A key's public id: [`crate::keys::ID_LEN`] characters of `a-z 0-9`.
pub(crate) const KEY_ID_PATTERN: &str = r"^[a-z0-9]{12}$";

/// The schema of a key's id.
pub(crate) fn key_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(KEY_ID_PATTERN))
        .build()
}

/// The schema of the audit log's `order`.
pub(crate) fn order() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["oldest", "newest"]))
        .build()
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
        api::delete_versions,
        api::undelete_versions,
        api::destroy_versions,
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
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    name_link_fields(&mut doc);
    doc
}

/// The document as served: built and written once per process.
pub(crate) fn document_json() -> &'static [u8] {
    static DOC: std::sync::LazyLock<Vec<u8>> =
        std::sync::LazyLock::new(|| serde_json::to_vec(&document()).unwrap_or_default());
    &DOC
}

/// utoipa 5.5 writes a link's fields in snake case (`operation_id`); OpenAPI's are camel case
/// (`operationId`), and clients that follow links (Schemathesis) look for those.
fn name_link_fields(doc: &mut serde_json::Value) {
    let links = doc
        .get_mut("paths")
        .and_then(|paths| paths.as_object_mut())
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.to_owned(), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sigil_core::name::TEAM_PATTERN;
    use sigil_core::openapi::{KEY_LABEL_PATTERN, NAME_PREFIX_PATTERN, TASK_PATTERN};

    use super::KEY_ID_PATTERN;
    use crate::service::{KeyId, TeamName};

    fn matches(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(s)
    }

    proptest! {
        // the document's patterns are what the parsers accept, so that a fuzzer taking the
        // document at its word finds neither a valid request refused nor an invalid one served
        #[test]
        fn the_documents_patterns_are_the_parsers(s in prop_oneof![
            "[A-Za-z0-9_.-]{0,70}",
            "[A-Za-z0-9_./-]{250,260}",
            "[a-z0-9]{11,13}",
            "[ -~\\x00-\\x1f\\x{7f}-\\x{a0}é]{0,135}",
            "[ -~é]{110,135}",
            "\\PC{0,12}",
            any::<String>(),
        ]) {
            prop_assert_eq!(matches(TEAM_PATTERN, &s), TeamName::parse(&s).is_ok());
            prop_assert_eq!(matches(KEY_ID_PATTERN, &s), KeyId::parse(&s).is_ok());
            let label_ok = crate::service::keys::check_label(&s).is_ok();
            prop_assert_eq!(matches(KEY_LABEL_PATTERN, &s), label_ok);
            let task_ok = crate::service::secrets::task_name(&s).is_ok();
            prop_assert_eq!(matches(TASK_PATTERN, &s), task_ok);
            // a prefix's length is a limit of its own (maxLength 256)
            let prefix = matches(NAME_PREFIX_PATTERN, &s) && s.chars().count() <= 256;
            let prefix_ok = crate::service::secrets::name_part("prefix", &s).is_ok();
            prop_assert_eq!(prefix, prefix_ok);
        }
    }
}
