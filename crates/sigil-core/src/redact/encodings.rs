//! The forms a registered value is masked in besides itself: each JSON string leaf, JSON string
//! escapes (serde_json's, Python's, Go's), percent and form encodings, base64 at every alignment,
//! and hex, each hex digit in both cases.

#[allow(unused_imports)]
use super::*;

pub(super) fn collect_leaves<'a>(v: &'a Value, out: &mut Vec<Cow<'a, str>>) {
    match v {
        Value::String(s) => out.push(Cow::Borrowed(s)),
        Value::Number(n) => out.push(Cow::Owned(n.to_string())),
        Value::Array(a) => a.iter().for_each(|x| collect_leaves(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_leaves(x, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

pub(super) fn add_patterns(set: &mut BTreeSet<Vec<u8>>, s: &str) {
    let b = s.as_bytes();
    keep(set, b.to_vec());
    add_json_escapes(set, s);
    add_percent_encodings(set, b);
    // hex, as `bytes.hex()`, `xxd -p` or a debugger prints it
    for digits in [HEX_LOWER, HEX_UPPER] {
        let mut h = Vec::with_capacity(b.len() * 2);
        for &c in b {
            h.push(digits[usize::from(c >> 4)]);
            h.push(digits[usize::from(c & 15)]);
        }
        keep(set, h);
    }
    add_base64(set, b);
}

/// Adds a pattern; a duplicate is wiped before it is dropped.
pub(super) fn keep(set: &mut BTreeSet<Vec<u8>>, mut pattern: Vec<u8>) {
    if pattern.is_empty() || set.contains(&pattern) {
        pattern.zeroize();
    } else {
        set.insert(pattern);
    }
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The text of a JSON string as encoders write it: serde_json and JavaScript (non-ASCII kept),
/// Python's `json.dumps` (non-ASCII as `\u00e9`), Go's `encoding/json` (`<`, `>`, `&`, U+2028
/// and U+2029 as `\u003c`…), each with lower- and upper-case hex digits.
pub(super) fn add_json_escapes(set: &mut BTreeSet<Vec<u8>>, s: &str) {
    for ascii_only in [false, true] {
        for html in [false, true] {
            for digits in [HEX_LOWER, HEX_UPPER] {
                let mut out = Vec::with_capacity(s.len() + 8);
                for c in s.chars() {
                    json_escape_char(&mut out, c, ascii_only, html, digits);
                }
                keep(set, out);
            }
        }
    }
}

pub(super) fn json_escape_char(
    out: &mut Vec<u8>,
    c: char,
    ascii_only: bool,
    html: bool,
    digits: &[u8; 16],
) {
    let mut unit = |u: u16| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(digits[usize::from((u >> shift) & 15)]);
        }
    };
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        '\u{0}'..='\u{1f}' => unit(c as u16),
        '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if html => unit(c as u16),
        '\u{7f}'.. if ascii_only => {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                unit(*u);
            }
        }
        _ => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Percent-encodings: of everything but RFC 3986's unreserved characters (Python's `quote(s,
/// safe="")`, Go's `QueryEscape`), leaving `/` raw (Python's `quote`), leaving `!'()*` raw
/// (JavaScript's `encodeURIComponent`), leaving every reserved character raw (`encodeURI`); and
/// form encoding, a space as `+` (Python's `quote_plus` and `urlencode`, Go's `QueryEscape`, the
/// WHATWG form serializer, which keeps `*` and encodes `~`). Upper- and lower-case hex each.
pub(super) fn add_percent_encodings(set: &mut BTreeSet<Vec<u8>>, b: &[u8]) {
    const UNRESERVED: &[u8] = b"-._~";
    const SLASH: &[u8] = b"-._~/";
    const URI_COMPONENT: &[u8] = b"-._~!'()*";
    const RESERVED: &[u8] = b"-._~:/?#[]@!$&'()*+,;=";
    const WHATWG_FORM: &[u8] = b"-._*";
    let encodings: [(&[u8], bool); 6] = [
        (UNRESERVED, false),
        (SLASH, false),
        (URI_COMPONENT, false),
        (RESERVED, false),
        (UNRESERVED, true),
        (WHATWG_FORM, true),
    ];
    for (raw, form) in encodings {
        for digits in [HEX_UPPER, HEX_LOWER] {
            let mut p = Vec::with_capacity(b.len() * 3);
            for &c in b {
                if c.is_ascii_alphanumeric() || raw.contains(&c) {
                    p.push(c);
                } else if form && c == b' ' {
                    p.push(b'+');
                } else {
                    p.extend_from_slice(&[
                        b'%',
                        digits[usize::from(c >> 4)],
                        digits[usize::from(c & 15)],
                    ]);
                }
            }
            keep(set, p);
        }
    }
}

/// Base64: the whole padded encoding, and for each of the three alignments the characters that
/// depend on the secret's bytes alone (found inside longer base64 texts).
pub(super) fn add_base64(set: &mut BTreeSet<Vec<u8>>, b: &[u8]) {
    keep(set, STANDARD.encode(b).into_bytes());
    keep(set, URL_SAFE.encode(b).into_bytes());
    for shift in 0..3usize {
        let mut input = vec![0u8; shift];
        input.extend_from_slice(b);
        let start = (8 * shift).div_ceil(6);
        let end = 8 * (shift + b.len()) / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let enc = engine.encode(&input);
            if end > start && end - start >= MIN_B64_CORE {
                keep(set, enc.as_bytes()[start..end].to_vec());
            }
        }
        input.zeroize();
    }
}
