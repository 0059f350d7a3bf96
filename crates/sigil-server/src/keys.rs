//! API keys: `sgl_<id>_<secret>`. The id is public (it names the key in listings and the audit
//! log); only a SHA-256 of the secret part is stored, and it is compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The prefix every key starts with.
pub const PREFIX: &str = "sgl_";
pub(crate) const ID_LEN: usize = 12;

/// A key split into its parts.
pub struct ParsedKey<'a> {
    /// The public id.
    pub id: &'a str,
    /// The secret part.
    pub secret: &'a str,
}

/// Whether `id` has the form of a key's public id: [`ID_LEN`] characters of `a-z 0-9`.
pub(crate) fn is_key_id(id: &str) -> bool {
    id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Splits `sgl_<id>_<secret>`; `None` for anything else.
pub fn parse(key: &str) -> Option<ParsedKey<'_>> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let ok_id = is_key_id(id);
    let ok_secret = (32..=128).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (ok_id && ok_secret).then_some(ParsedKey { id, secret })
}

/// A new random key: `(id, full key)`.
///
/// # Errors
/// The system's random source failed.
pub fn generate() -> Result<(String, Zeroizing<String>), getrandom::Error> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; ID_LEN];
    getrandom::fill(&mut raw)?;
    let id: String = raw
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    let mut secret = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *secret)?;
    let key = Zeroizing::new(format!("{PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(*secret)));
    Ok((id, key))
}

/// The stored form of a key's secret part.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::new()
        .chain_update(b"sigil:api-key:v1")
        .chain_update(secret.as_bytes())
        .finalize()
        .to_vec()
}

/// Compares two byte strings (hashes, tokens) without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash() {
        let (id, key) = generate().unwrap();
        let p = parse(&key).unwrap();
        assert_eq!(p.id, id);
        assert!(constant_time_eq(&hash(p.secret), &hash(p.secret)));
        assert!(!constant_time_eq(&hash(p.secret), &hash("other")));
        assert!(parse("sgl_short_x").is_none());
        assert!(parse("bearer-token").is_none());
        assert!(parse(&key.replace("sgl_", "sgx_")).is_none());
    }
}
