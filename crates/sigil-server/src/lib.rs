//! The Sigil server's building blocks. So far: encryption at rest ([`crypto`]). The HTTP API,
//! the store, keys and roles and the audit log arrive with the rest of the server issue.

pub mod crypto;
