//! What the tests of every Sigil crate share (a dev-dependency only; it depends on nothing of
//! Sigil's, so any crate may use it): the values that break naive secret handling, and the
//! listing of a crate's fixture cases, and an allocator that sees whether freed memory still
//! holds a secret (`watch`), and waits for processes that fail a test instead of hanging it
//! (`process`), and PostgreSQL clusters a test owns (`pg`).

use std::path::{Path, PathBuf};

pub mod pg;
pub mod process;
pub mod watch;

/// Values that must come back byte for byte. Prefect 1 mangled the first ones on load (`$` and
/// `~` expansion, `${…}` references, `"42"` and `"true"` cast to a number and a boolean); the rest
/// break naive quoting: newlines, tabs, quotes of both kinds, backslashes, and text beyond ASCII.
pub const AWKWARD: &[&str] = &[
    "$HOME",
    "~/x",
    "${a.b}",
    "42",
    "true",
    "None",
    "P@$$w0rd",
    "line one\nline two\n",
    "line one\nline two\n\ttabbed",
    "ünïcødé ☃ 日本語",
    "'single' \"double\" \\back\ttab",
];

/// The case folders under `<crate>/tests/fixtures/<kind>` (`crate_dir` is the crate's
/// `CARGO_MANIFEST_DIR`), in name order; panics when there are fewer than `min`, so that a
/// fixture folder that went missing fails the test instead of passing it empty.
pub fn fixture_cases(crate_dir: &str, kind: &str, min: usize) -> Vec<PathBuf> {
    let root = Path::new(crate_dir).join("tests/fixtures").join(kind);
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("a readable fixture folder").path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= min,
        "fixtures missing under {}",
        root.display()
    );
    cases
}

/// The forms a leaked value could take in an output or a file, for a canary search: itself,
/// hex (both cases), percent-encoding (both cases of hex digits), its JSON string escape, and
/// base64 in both alphabets — padded, and the characters that depend on the value alone at each
/// of the three alignments inside a longer base64 text. Written apart from the code under test.
#[must_use]
pub fn leaked_forms(value: &str) -> Vec<String> {
    let b = value.as_bytes();
    let mut forms = vec![
        value.to_owned(),
        b.iter().map(|c| format!("{c:02x}")).collect(),
        b.iter().map(|c| format!("{c:02X}")).collect(),
    ];
    for upper in [true, false] {
        forms.push(
            b.iter()
                .map(|&c| match c {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        char::from(c).to_string()
                    }
                    _ if upper => format!("%{c:02X}"),
                    _ => format!("%{c:02x}"),
                })
                .collect(),
        );
    }
    let mut json = String::new();
    for c in value.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\n' => json.push_str("\\n"),
            c if u32::from(c) < 0x20 => json.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => json.push(c),
        }
    }
    forms.push(json);
    for url_safe in [false, true] {
        forms.push(base64(b, url_safe, true));
        for shift in 0..3 {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(b);
            let text = base64(&shifted, url_safe, false);
            let (start, end) = ((8 * shift).div_ceil(6), 8 * (shift + b.len()) / 6);
            if end > start + 4 {
                forms.push(text[start..end].to_owned());
            }
        }
    }
    forms.sort();
    forms.dedup();
    forms
}

/// Base64 (RFC 4648), standard or URL-safe alphabet, padded or not.
fn base64(bytes: &[u8], url_safe: bool, pad: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | u32::from(c) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
        }
        if pad {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

/// Decodes standard base64 (padded or not); `None` for anything else.
#[must_use]
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let digits: Option<Vec<u32>> = text
        .trim_end_matches('=')
        .bytes()
        .map(|c| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32))
        .collect();
    let mut out = Vec::new();
    for chunk in digits?.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | d << (18 - 6 * i));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().checked_sub(1)?]);
    }
    Some(out)
}

/// Where any of `needles` occurs in the files under `dir`, walked to every depth, but for
/// `skip`: each place as `path: needle` (the needle lossily as text).
#[must_use]
pub fn files_holding<N: AsRef<[u8]>>(dir: &Path, needles: &[N], skip: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() && !skip.contains(&path) {
                let bytes = std::fs::read(&path).unwrap_or_default();
                for needle in needles {
                    let needle = needle.as_ref();
                    if bytes.windows(needle.len()).any(|w| w == needle) {
                        found.push(format!(
                            "{}: {}",
                            path.display(),
                            String::from_utf8_lossy(needle)
                        ));
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_as_rfc_4648_says() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes(), false, true), encoded);
        }
        assert_eq!(super::base64(&[0xfb, 0xff], true, false), "-_8");
        assert_eq!(super::base64(&[0xfb, 0xff], false, true), "+/8=");
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            let text = super::base64(&bytes, false, true);
            assert_eq!(super::base64_decode(&text), Some(bytes.clone()));
            assert_eq!(
                super::base64_decode(text.trim_end_matches('=')),
                Some(bytes)
            );
        }
        assert_eq!(super::base64_decode("not base64!"), None);
    }

    #[test]
    fn forms_of_a_value() {
        let forms = super::leaked_forms("a b\"");
        for want in ["a b\"", "6120622", "a%20b%22", "a b\\\"", "YSBiIg=="] {
            assert!(
                forms.iter().any(|f| f.contains(want)),
                "{want} in {forms:?}"
            );
        }
    }
}
