//! The OpenAPI schemas of the wire's strings that have a grammar, so that the document says
//! exactly what the server accepts (a fuzzer such as Schemathesis takes it at its word). Each
//! pattern is held to its parser by a test.

use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Array, Object};

use crate::name::{MAX_NAME_BYTES, NAME_PATTERN, TEAM_PATTERN};
use crate::wire::{MAX_BATCH_NAMES, MAX_VERSIONS_PER_CHANGE};

/// The start of names: name characters and `/`, in any order.
pub const NAME_PREFIX_PATTERN: &str = r"^[A-Za-z0-9_./-]*$";

/// A task's name in the audit log: printable ASCII, at most 128 characters; empty is none.
pub const TASK_PATTERN: &str = r"^[\x20-\x7E]{0,128}$";

/// A key's label: at most 128 characters, none of them a control character.
pub const KEY_LABEL_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]{0,128}$";

fn string(pattern: &str, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
}

/// A secret's name.
pub fn secret_name() -> Object {
    string(
        NAME_PATTERN,
        "Segments of A-Z a-z 0-9 _ . - (not `.` or `..`) joined by `/`, at most 256 bytes",
    )
    .min_length(Some(1))
    .max_length(Some(MAX_NAME_BYTES))
    .build()
}

/// The start of secrets' names (a listing's prefix): name characters and `/`, at most 256.
pub fn name_prefix() -> Object {
    string(NAME_PREFIX_PATTERN, "Only names starting with this")
        .max_length(Some(MAX_NAME_BYTES))
        .build()
}

/// A team's name.
pub fn team_name() -> Object {
    string(TEAM_PATTERN, "1 to 64 of A-Z a-z 0-9 _ . -")
        .min_length(Some(1))
        .max_length(Some(64))
        .build()
}

/// The names of a batch read.
pub fn secret_names() -> Array {
    ArrayBuilder::new()
        .items(secret_name())
        .min_items(Some(1))
        .max_items(Some(MAX_BATCH_NAMES))
        .description(Some("1 to 1000 names; a name asked twice is read once"))
        .build()
}

/// The tasks of a batch read.
pub fn task_names() -> Array {
    ArrayBuilder::new()
        .items(string(TASK_PATTERN, "A task's name, or empty for none").max_length(Some(128)))
        .max_items(Some(MAX_BATCH_NAMES))
        .description(Some(
            "None, or one task per name (as many as `names`), for the audit log",
        ))
        .build()
}

/// The versions of a change of their state.
pub fn version_numbers() -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1)),
        )
        .min_items(Some(1))
        .max_items(Some(MAX_VERSIONS_PER_CHANGE))
        .build()
}

/// A key's label.
pub fn key_label() -> Object {
    string(
        KEY_LABEL_PATTERN,
        "A label (\"etl runner\"): at most 128 characters, no control characters",
    )
    .max_length(Some(128))
    .build()
}
