//! Encryption at rest: envelope encryption with XChaCha20-Poly1305.
//!
//! A **master key** (32 bytes, kept outside the database: `SIGIL_MASTER_KEY` or a key file) wraps
//! one **data key** per team and key version; each secret value is sealed with its team's data
//! key. The associated data binds every ciphertext to where it belongs — a wrapped data key to
//! its team and version, a sealed value to its team, name and version — so a ciphertext copied
//! to another row does not open. Rotating the master key re-wraps the data keys only; values are
//! not touched.
//!
//! Formats (all versioned by their first byte):
//! - wrapped data key: `0x01 ‖ nonce (24) ‖ ciphertext+tag (48)`, associated data
//!   `"sigil:data-key:v1" ‖ team ‖ key version`;
//! - sealed value: `0x01 ‖ nonce (24) ‖ ciphertext+tag`, associated data
//!   `"sigil:secret:v1" ‖ team ‖ name ‖ version`;
//!
//! with each field length-prefixed, so that no two (team, name) pairs share associated data.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20::cipher::consts::U10;
use chacha20::cipher::generic_array::GenericArray;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// A failure of key handling or decryption. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// A master key that is not base64 of exactly 32 bytes.
    #[error("invalid master key from {origin}: {reason}")]
    InvalidMasterKey {
        /// Where it came from (`SIGIL_MASTER_KEY`, a file path).
        origin: String,
        /// What is wrong with it (never the key).
        reason: String,
    },
    /// A ciphertext did not open: the wrong key, the wrong place, or tampering.
    #[error("cannot decrypt {what}: wrong key, or the data was altered or moved")]
    Decrypt {
        /// What was being opened ("data key of team t", "secret t/name version 3").
        what: String,
    },
    /// A ciphertext in a format this version does not know.
    #[error("cannot decrypt {what}: unknown format")]
    Format {
        /// What was being opened.
        what: String,
    },
    /// The system's random source failed.
    #[error("the system's random number generator failed")]
    Random,
    /// The cipher refused a key or an input. Not expected with what Sigil gives it (32-byte keys,
    /// values far under ChaCha20-Poly1305's 256 GiB limit), so reported, not unwrapped.
    #[error("the cipher refused {0}")]
    Cipher(&'static str),
}

fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| CryptoError::Random)?;
    Ok(b)
}

/// Length-prefixed fields, so that ("ab", "c") and ("a", "bc") differ.
fn associated_data(label: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(label.len() + fields.iter().map(|f| f.len() + 4).sum::<usize>());
    out.extend_from_slice(label.as_bytes());
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// XChaCha20-Poly1305 as draft-irtf-cfrg-xchacha defines it: HChaCha20 derives a subkey from
/// the key and the nonce's first 16 bytes, then ChaCha20-Poly1305 (RFC 8439, ring's
/// implementation) runs under the subkey with the nonce's last 8 bytes. The ciphertexts are
/// those of the `chacha20poly1305` crate's `XChaCha20Poly1305` (a test checks it); on a small
/// value this is about five times faster (0.3 µs against 1.6 µs to open one here).
fn xchacha(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
) -> Result<(LessSafeKey, Nonce), CryptoError> {
    let mut subkey = chacha20::hchacha::<U10>(
        chacha20::Key::from_slice(key),
        GenericArray::from_slice(&nonce[..16]),
    );
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &subkey);
    subkey.as_mut_slice().zeroize();
    let key = LessSafeKey::new(unbound.map_err(|_| CryptoError::Cipher("its key"))?);
    let mut short = [0u8; 12];
    short[4..].copy_from_slice(&nonce[16..]);
    Ok((key, Nonce::assume_unique_for_key(short)))
}

fn seal_with(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce = random::<NONCE_LEN>()?;
    let (cipher, short) = xchacha(key, &nonce)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .seal_in_place_separate_tag(short, Aad::from(aad), &mut out[1 + NONCE_LEN..])
        .map_err(|_| CryptoError::Cipher("a value to seal"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

fn open_with(
    key: &[u8; KEY_LEN],
    blob: &[u8],
    aad: &[u8],
    what: impl Fn() -> String,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.first() != Some(&FORMAT_V1) {
        return Err(CryptoError::Format { what: what() });
    }
    if blob.len() < 1 + NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Decrypt { what: what() });
    }
    let (nonce, ct) = blob[1..].split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| CryptoError::Decrypt { what: what() })?;
    let (cipher, short) = xchacha(key, nonce)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let n = cipher
        .open_in_place(short, Aad::from(aad), &mut buf)
        .map_err(|_| CryptoError::Decrypt { what: what() })?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// The master key. `Debug` shows only its id.
pub struct MasterKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        // the id names the key in the database (which key wrapped what) without revealing it
        let digest = Sha256::new()
            .chain_update(b"sigil:master-key-id:v1")
            .chain_update(key)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        MasterKey {
            key: Zeroizing::new(key),
            id,
        }
    }

    /// A new random key.
    ///
    /// # Errors
    /// [`CryptoError::Random`].
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self::from_bytes(random()?))
    }

    /// Parses base64 of 32 bytes; `origin` names where the text came from, for errors.
    ///
    /// # Errors
    /// [`CryptoError::InvalidMasterKey`] naming the origin, never the text.
    pub fn from_base64(text: &str, origin: &str) -> Result<Self, CryptoError> {
        let invalid = |reason: &str| CryptoError::InvalidMasterKey {
            origin: origin.to_owned(),
            reason: reason.to_owned(),
        };
        let mut bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| invalid("not valid base64"))?;
        if bytes.len() != KEY_LEN {
            let reason = format!(
                "decodes to {} bytes, a master key is {KEY_LEN} bytes",
                bytes.len()
            );
            bytes.zeroize();
            return Err(invalid(&reason));
        }
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(Self::from_bytes(key))
    }

    /// The key as base64 (for writing a key file).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(*self.key))
    }

    /// A short public fingerprint of the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Reads a key file, or creates one (mode 0600, written atomically) when it does not exist.
    /// Returns the key and whether it was created.
    ///
    /// # Errors
    /// The file cannot be read or written, or does not hold a valid key.
    pub fn load_or_create(
        path: &Path,
    ) -> Result<(Self, bool), Box<dyn std::error::Error + Send + Sync>> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                Ok((
                    Self::from_base64(&text, &path.display().to_string())?,
                    false,
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    Some(d) => d,
                    None => Path::new("."),
                };
                sigil_core::edit::create_private_dir(dir)?;
                // write a complete file beside it, then link it into place only if no other
                // process created the key meanwhile: two servers starting together on one
                // home must not each keep a different key
                let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
                let text = Zeroizing::new(format!("{}\n", &*key.to_base64()));
                std::io::Write::write_all(&mut tmp, text.as_bytes())?;
                tmp.as_file().sync_all()?;
                match tmp.persist_noclobber(path) {
                    Ok(_) => {
                        std::fs::File::open(dir)?.sync_all()?;
                        Ok((key, true))
                    }
                    Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(e.error.into()),
                }
            }
            Err(e) => Err(format!("cannot read master key file {}: {e}", path.display()).into()),
        }
    }

    /// Wraps a team's data key.
    ///
    /// # Errors
    /// [`CryptoError::Random`], [`CryptoError::Cipher`].
    pub fn wrap(&self, data_key: &DataKey, team: &str) -> Result<Vec<u8>, CryptoError> {
        let aad = associated_data(
            "sigil:data-key:v1",
            &[team.as_bytes(), &data_key.version.to_be_bytes()],
        );
        seal_with(&self.key, &*data_key.key, &aad)
    }

    /// Unwraps a team's data key of the given version.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] when this is not the key that wrapped it, or the blob belongs to
    /// another team or version.
    pub fn unwrap(&self, blob: &[u8], team: &str, version: u32) -> Result<DataKey, CryptoError> {
        let aad = associated_data(
            "sigil:data-key:v1",
            &[team.as_bytes(), &version.to_be_bytes()],
        );
        let what = || {
            format!(
                "data key {version} of team {team:?} (master key {})",
                self.id
            )
        };
        let plain = open_with(&self.key, blob, &aad, what)?;
        if plain.len() != KEY_LEN {
            return Err(CryptoError::Format { what: what() });
        }
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&plain);
        Ok(DataKey {
            key: Zeroizing::new(key),
            version,
        })
    }
}

/// A team's data key. `Debug` shows only its version.
#[derive(Clone)]
pub struct DataKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    version: u32,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey(v{})", self.version)
    }
}

/// Where a sealed value belongs.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The team.
    pub team: &'a str,
    /// The secret's name.
    pub name: &'a str,
    /// The secret's version.
    pub version: i64,
}

impl Place<'_> {
    fn aad(&self) -> Vec<u8> {
        associated_data(
            "sigil:secret:v1",
            &[
                self.team.as_bytes(),
                self.name.as_bytes(),
                &self.version.to_be_bytes(),
            ],
        )
    }

    fn describe(&self) -> String {
        format!(
            "secret {:?} version {} of team {:?}",
            self.name, self.version, self.team
        )
    }
}

impl DataKey {
    /// A new random data key.
    ///
    /// # Errors
    /// [`CryptoError::Random`].
    pub fn generate(version: u32) -> Result<Self, CryptoError> {
        Ok(DataKey {
            key: Zeroizing::new(random()?),
            version,
        })
    }

    /// The key's version within its team.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Seals a value for its place.
    ///
    /// # Errors
    /// [`CryptoError::Random`], [`CryptoError::Cipher`].
    pub fn seal(&self, plaintext: &[u8], place: Place<'_>) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.key, plaintext, &place.aad())
    }

    /// Opens a value sealed for `place`.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] for the wrong key, the wrong place, or altered bytes.
    pub fn open(&self, blob: &[u8], place: Place<'_>) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.key, blob, &place.aad(), || place.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn place<'a>(team: &'a str, name: &'a str, version: i64) -> Place<'a> {
        Place {
            team,
            name,
            version,
        }
    }

    #[test]
    fn master_key_parsing_names_the_origin_not_the_key() {
        let k = MasterKey::generate().unwrap();
        let again = MasterKey::from_base64(&k.to_base64(), "SIGIL_MASTER_KEY").unwrap();
        assert_eq!(k.id(), again.id());
        assert_eq!(k.id().len(), 16);
        let e = MasterKey::from_base64("c2hvcnQ=", "SIGIL_MASTER_KEY")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid master key from SIGIL_MASTER_KEY: decodes to 5 bytes, a master key is 32 bytes"
        );
        let e = MasterKey::from_base64("not base64!", "/etc/key")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/key: not valid base64") && !e.contains("not base64!"),
            "{e}"
        );
        assert!(!format!("{k:?}").contains(&*k.to_base64()));
    }

    #[test]
    fn key_file_is_created_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server/master.key");
        let (k1, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (k2, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.id(), k2.id());
    }

    /// Regression: two servers creating the key file at once could each keep a different key
    /// (the later rename won), leaving data keys wrapped by a key no file holds.
    #[test]
    fn concurrent_creators_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server/master.key");
        let ids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| MasterKey::load_or_create(&path).unwrap().0.id().to_owned()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let on_disk = MasterKey::load_or_create(&path).unwrap().0;
        assert!(ids.iter().all(|id| id == on_disk.id()), "{ids:?}");
        let leftovers = std::fs::read_dir(dir.path().join("server"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn ciphertexts_are_bound_to_their_place() {
        let dk = DataKey::generate(1).unwrap();
        let sealed = dk
            .seal(b"\"hunter22\"", place("etl", "db/password", 3))
            .unwrap();
        assert_eq!(
            &*dk.open(&sealed, place("etl", "db/password", 3)).unwrap(),
            b"\"hunter22\""
        );
        for wrong in [
            place("ops", "db/password", 3),
            place("etl", "db/passwore", 3),
            place("etl", "db/password", 4),
        ] {
            let e = dk.open(&sealed, wrong).unwrap_err();
            assert!(matches!(e, CryptoError::Decrypt { .. }), "{e}");
        }
        // length prefixes: ("ab","c") is not ("a","bc")
        let s = dk.seal(b"x", place("ab", "c", 1)).unwrap();
        assert!(dk.open(&s, place("a", "bc", 1)).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(dk.open(&tampered, place("etl", "db/password", 3)).is_err());
        assert!(matches!(
            dk.open(&[9, 9, 9], place("etl", "db/password", 3)),
            Err(CryptoError::Format { .. })
        ));
        assert!(
            !sealed.windows(8).any(|w| w == b"hunter22"),
            "no plaintext in the ciphertext"
        );
    }

    #[test]
    fn data_keys_wrap_and_rotate_to_a_new_master_key() {
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        let dk = DataKey::generate(2).unwrap();
        let sealed = dk.seal(b"v", place("t", "n", 1)).unwrap();
        let wrapped = old.wrap(&dk, "t").unwrap();
        assert!(old.unwrap(&wrapped, "other-team", 2).is_err());
        assert!(old.unwrap(&wrapped, "t", 3).is_err());
        assert!(new.unwrap(&wrapped, "t", 2).is_err());
        // rotation: unwrap with the old key, wrap with the new; values stay as they are
        let rewrapped = new
            .wrap(&old.unwrap(&wrapped, "t", 2).unwrap(), "t")
            .unwrap();
        let dk2 = new.unwrap(&rewrapped, "t", 2).unwrap();
        assert_eq!(&*dk2.open(&sealed, place("t", "n", 1)).unwrap(), b"v");
        assert!(format!("{dk2:?}") == "DataKey(v2)");
    }

    proptest! {
        #[test]
        fn seal_open_round_trip(
            value in proptest::collection::vec(any::<u8>(), 0..2048),
            team in "[a-z]{1,12}",
            name in "[A-Za-z0-9_./-]{1,40}",
            version in 1i64..1_000_000,
        ) {
            let dk = DataKey::generate(1).unwrap();
            let sealed = dk.seal(&value, place(&team, &name, version)).unwrap();
            prop_assert_eq!(sealed.len(), 1 + NONCE_LEN + value.len() + TAG_LEN);
            prop_assert_eq!(&*dk.open(&sealed, place(&team, &name, version)).unwrap(), &value[..]);
            prop_assert!(dk.open(&sealed, place(&team, &name, version + 1)).is_err());
        }

        #[test]
        fn ciphertexts_are_those_of_the_reference_xchacha20poly1305(
            value in proptest::collection::vec(any::<u8>(), 0..2048),
            aad in proptest::collection::vec(any::<u8>(), 0..128),
            key in any::<[u8; KEY_LEN]>(),
        ) {
            use chacha20poly1305::aead::{Aead, KeyInit, Payload};
            use chacha20poly1305::{XChaCha20Poly1305, XNonce};
            let reference = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key));
            // ours sealed, the reference opens
            let sealed = seal_with(&key, &value, &aad).unwrap();
            let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_LEN]);
            let opened = reference
                .decrypt(nonce, Payload { msg: &sealed[1 + NONCE_LEN..], aad: &aad })
                .unwrap();
            prop_assert_eq!(&opened, &value);
            // the reference sealed, ours opens
            let ct = reference.encrypt(nonce, Payload { msg: &value, aad: &aad }).unwrap();
            prop_assert_eq!(&ct[..], &sealed[1 + NONCE_LEN..]);
            let mut blob = vec![FORMAT_V1];
            blob.extend_from_slice(nonce);
            blob.extend_from_slice(&ct);
            prop_assert_eq!(&*open_with(&key, &blob, &aad, String::new).unwrap(), &value[..]);
            // one flipped bit anywhere does not open
            let mut bad = blob.clone();
            let i = value.len() % (bad.len() - 1) + 1;
            bad[i] ^= 1;
            prop_assert!(open_with(&key, &bad, &aad, String::new).is_err());
        }
    }
}
