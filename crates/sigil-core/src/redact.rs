//! The Redactor: masks secret values in text and byte streams.
//!
//! Register values (a [`SecretValue`]'s every string leaf, or raw text); every occurrence in
//! masked output becomes `***`, and so do the encodings programs print a value in: base64
//! (standard and URL-safe, padded or not, at any alignment inside a longer base64 text such as a
//! Basic auth header); percent-encoding of everything but the unreserved characters, or leaving
//! `/`, `!'()*` or every reserved character raw; form encoding (a space as `+`); JSON string
//! escaping as serde_json, Python (`\u00e9` for non-ASCII) and Go (`\u003c` for `<`, `>`, `&`)
//! write it; hex. Every hex digit in them comes in lower and upper case. Values shorter
//! than the minimum length (default 4 bytes) are not registered: masking every `1` or `on` would
//! make logs unreadable while hiding nothing.
//!
//! Matching is one pass of an Aho–Corasick automaton (leftmost-longest). [`RedactingWriter`]
//! masks a stream written in arbitrary chunks: it holds back only the tail that could still be
//! the start of a secret, so a secret split across two writes is still masked and the output
//! equals masking the whole text at once.
//!
//! ```
//! use sigil_core::Redactor;
//! let r = Redactor::new();
//! r.register_text("hunter22");
//! assert_eq!(r.redact("login with hunter22, b64 aHVudGVyMjI="), "login with ***, b64 ***");
//! ```

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;
use zeroize::Zeroize;

use crate::config::DEFAULT_MIN_MASK_BYTES;
use crate::value::SecretValue;

/// What a masked occurrence becomes.
pub const MASK: &str = "***";

/// The shortest base64 fragment registered for an unaligned occurrence (shorter ones would hit
/// ordinary text).
const MIN_B64_CORE: usize = 5;

/// Bits in the q-gram filter (512 KiB: stays in cache).
const FILTER_BITS: u32 = 22;
/// Length of the grams the filter samples.
const Q: usize = 4;

/// A sampling filter in front of the automaton. Every pattern is at least `m` bytes long, so any
/// occurrence covers one of the text positions `0, s, 2s, …` (stride `s = m - Q + 1`) with one of
/// the pattern's first `m - Q + 1` grams. The filter holds those grams' hashes; text positions
/// whose gram is absent cannot be inside an occurrence's first `m` bytes, and the automaton only
/// runs over windows around the positions that hit. With long secrets most of the text is skipped
/// `s` bytes at a time.
struct GramFilter {
    bits: Vec<u64>,
    stride: usize,
    back: usize,
    max_len: usize,
}

/// Two bit positions for a gram (a Bloom filter with two hash functions: with ~10,000
/// patterns, one position per gram let several per cent of ordinary grams through).
fn gram_hashes(g: &[u8]) -> (usize, usize) {
    let v = u64::from(u32::from_le_bytes([g[0], g[1], g[2], g[3]]));
    let h = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mask = (1 << FILTER_BITS) - 1;
    (
        (h >> (64 - FILTER_BITS)) as usize,
        (h >> 20) as usize & mask,
    )
}

impl GramFilter {
    fn build(patterns: &[Vec<u8>]) -> Option<GramFilter> {
        let m = patterns.iter().map(Vec::len).min()?;
        if m < Q {
            return None;
        }
        let mut bits = vec![0u64; 1 << (FILTER_BITS - 6)];
        for p in patterns {
            for j in 0..=m - Q {
                let (h1, h2) = gram_hashes(&p[j..j + Q]);
                bits[h1 >> 6] |= 1 << (h1 & 63);
                bits[h2 >> 6] |= 1 << (h2 & 63);
            }
        }
        Some(GramFilter {
            bits,
            stride: m - Q + 1,
            back: m - Q,
            max_len: patterns.iter().map(Vec::len).max().unwrap_or(0),
        })
    }

    /// Disjoint windows of `hay` that hold every occurrence of every pattern.
    fn windows(&self, hay: &[u8], mut f: impl FnMut(usize, usize)) {
        let n = hay.len();
        let mut cur: Option<(usize, usize)> = None;
        let mut i = 0;
        while i + Q <= n {
            let (h1, h2) = gram_hashes(&hay[i..i + Q]);
            if self.bits[h1 >> 6] & (1 << (h1 & 63)) != 0
                && self.bits[h2 >> 6] & (1 << (h2 & 63)) != 0
            {
                let (ws, we) = (i.saturating_sub(self.back), (i + self.max_len).min(n));
                cur = match cur {
                    Some((cs, ce)) if ws <= ce => Some((cs, ce.max(we))),
                    Some((cs, ce)) => {
                        f(cs, ce);
                        Some((ws, we))
                    }
                    None => Some((ws, we)),
                };
            }
            i += self.stride;
        }
        if let Some((cs, ce)) = cur {
            f(cs, ce);
        }
    }
}

struct Matcher {
    ac: Option<AhoCorasick>,
    filter: Option<GramFilter>,
    /// Sorted, for "is this tail the start of some pattern?"
    sorted: Vec<Vec<u8>>,
    first_bytes: [bool; 256],
    max_len: usize,
}

impl Matcher {
    fn build(patterns: &BTreeSet<Vec<u8>>) -> Matcher {
        let sorted: Vec<Vec<u8>> = patterns.iter().cloned().collect();
        let mut first_bytes = [false; 256];
        for p in &sorted {
            first_bytes[p[0] as usize] = true;
        }
        let ac = if sorted.is_empty() {
            None
        } else {
            match AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&sorted)
            {
                Ok(ac) => Some(ac),
                Err(e) => {
                    // beyond the automaton's size limits (gigabytes of secrets): mask with a
                    // plain scan rather than stop masking or panic
                    tracing::warn!(error = %e, patterns = sorted.len(), "masking falls back to a slow scan");
                    None
                }
            }
        };
        Matcher {
            ac,
            filter: GramFilter::build(&sorted),
            max_len: sorted.iter().map(Vec::len).max().unwrap_or(0),
            sorted,
            first_bytes,
        }
    }

    /// Calls `f(start, end)` for each leftmost-longest, non-overlapping match in `hay`, in order.
    fn each_match(&self, hay: &[u8], mut f: impl FnMut(usize, usize)) {
        let Some(ac) = &self.ac else {
            self.each_match_slowly(hay, f);
            return;
        };
        match &self.filter {
            None => ac.find_iter(hay).for_each(|m| f(m.start(), m.end())),
            // windows are disjoint and each holds whole occurrences, so searching them one by one
            // finds exactly what a search of the whole text finds
            Some(filter) => filter.windows(hay, |ws, we| {
                for m in ac.find_iter(&hay[ws..we]) {
                    f(ws + m.start(), ws + m.end());
                }
            }),
        }
    }

    /// Leftmost-longest, non-overlapping matches without the automaton.
    fn each_match_slowly(&self, hay: &[u8], mut f: impl FnMut(usize, usize)) {
        let mut i = 0;
        while i < hay.len() {
            let longest = if self.first_bytes[hay[i] as usize] {
                self.sorted
                    .iter()
                    .filter(|p| hay[i..].starts_with(p))
                    .map(Vec::len)
                    .max()
            } else {
                None
            };
            match longest {
                Some(len) => {
                    f(i, i + len);
                    i += len;
                }
                None => i += 1,
            }
        }
    }

    fn is_pattern_prefix(&self, s: &[u8]) -> bool {
        let i = self.sorted.partition_point(|p| p.as_slice() < s);
        self.sorted.get(i).is_some_and(|p| p.starts_with(s))
    }

    /// Start of the longest suffix of `buf` that could grow into a match.
    fn hold_start(&self, buf: &[u8]) -> usize {
        let from = buf.len().saturating_sub(self.max_len.saturating_sub(1));
        (from..buf.len())
            .find(|&i| self.first_bytes[buf[i] as usize] && self.is_pattern_prefix(&buf[i..]))
            .unwrap_or(buf.len())
    }
}

impl Drop for Matcher {
    fn drop(&mut self) {
        for p in &mut self.sorted {
            p.zeroize();
        }
    }
}

struct Inner {
    patterns: BTreeSet<Vec<u8>>,
    matcher: Arc<Matcher>,
    dirty: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for mut p in std::mem::take(&mut self.patterns) {
            p.zeroize();
        }
    }
}

/// Masks registered secret values. Cheap to share (`Arc<Redactor>`); registering and masking may
/// happen from many threads at once.
pub struct Redactor {
    min_len: usize,
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.read().map(|i| i.patterns.len()).unwrap_or(0);
        write!(f, "Redactor {{ min_len: {}, patterns: {n} }}", self.min_len)
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl Redactor {
    /// A Redactor with the default minimum length (4 bytes).
    pub fn new() -> Self {
        Self::with_min_len(DEFAULT_MIN_MASK_BYTES)
    }

    /// A Redactor that ignores values shorter than `min_len` bytes (at least 1).
    pub fn with_min_len(min_len: usize) -> Self {
        Redactor {
            min_len: min_len.max(1),
            inner: RwLock::new(Inner {
                patterns: BTreeSet::new(),
                matcher: Arc::new(Matcher::build(&BTreeSet::new())),
                dirty: false,
            }),
        }
    }

    /// The minimum length in bytes.
    pub fn min_len(&self) -> usize {
        self.min_len
    }

    /// Whether `text` is long enough to be registered.
    pub fn is_maskable(&self, text: &str) -> bool {
        text.len() >= self.min_len
    }

    /// Registers every string leaf (and every number) of `value`. Returns how many leaves were
    /// too short to be masked.
    pub fn register(&self, value: &SecretValue) -> usize {
        let mut short = 0;
        let mut leaves = Vec::new();
        collect_leaves(value.expose_json(), &mut leaves);
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        for leaf in leaves {
            if leaf.len() < self.min_len {
                short += 1;
                continue;
            }
            add_patterns(&mut inner.patterns, &leaf);
            let mut leaf = leaf.into_owned();
            leaf.zeroize();
        }
        inner.dirty = true;
        short
    }

    /// Registers one text; `false` when it is too short to be masked.
    pub fn register_text(&self, text: &str) -> bool {
        if text.len() < self.min_len {
            return false;
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        add_patterns(&mut inner.patterns, text);
        inner.dirty = true;
        true
    }

    /// How many patterns (values and their encodings) are registered.
    pub fn pattern_count(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .patterns
            .len()
    }

    fn matcher(&self) -> Arc<Matcher> {
        {
            let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
            if !inner.dirty {
                return inner.matcher.clone();
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if inner.dirty {
            inner.matcher = Arc::new(Matcher::build(&inner.patterns));
            inner.dirty = false;
        }
        inner.matcher.clone()
    }

    /// Masks `text`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let m = self.matcher();
        let mut out = String::new();
        let mut last = 0;
        m.each_match(text.as_bytes(), |start, end| {
            // patterns are whole UTF-8 strings, so hits start and end on char boundaries
            out.push_str(&text[last..start]);
            out.push_str(MASK);
            last = end;
        });
        if last == 0 {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// Masks bytes.
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let m = self.matcher();
        let mut out = Vec::new();
        let last = mask_into(&m, bytes, bytes.len(), &mut out);
        if last == 0 && out.is_empty() {
            return Cow::Borrowed(bytes);
        }
        out.extend_from_slice(&bytes[last..]);
        Cow::Owned(out)
    }

    /// A writer that masks everything written through it into `inner`.
    pub fn writer<W: Write>(self: &Arc<Self>, inner: W) -> RedactingWriter<W> {
        RedactingWriter {
            redactor: self.clone(),
            inner: Some(inner),
            buf: Vec::new(),
        }
    }
}

/// Masks matches in `buf` that start before `limit`, appending to `out`; returns the offset up to
/// which `buf` has been consumed.
fn mask_into(m: &Matcher, buf: &[u8], limit: usize, out: &mut Vec<u8>) -> usize {
    let mut last = 0;
    m.each_match(buf, |start, end| {
        if start < limit {
            out.extend_from_slice(&buf[last..start]);
            out.extend_from_slice(MASK.as_bytes());
            last = end;
        }
    });
    if last < limit {
        out.extend_from_slice(&buf[last..limit]);
        last = limit;
    }
    last
}

fn collect_leaves<'a>(v: &'a Value, out: &mut Vec<Cow<'a, str>>) {
    match v {
        Value::String(s) => out.push(Cow::Borrowed(s)),
        Value::Number(n) => out.push(Cow::Owned(n.to_string())),
        Value::Array(a) => a.iter().for_each(|x| collect_leaves(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_leaves(x, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

fn add_patterns(set: &mut BTreeSet<Vec<u8>>, s: &str) {
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
fn keep(set: &mut BTreeSet<Vec<u8>>, mut pattern: Vec<u8>) {
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
fn add_json_escapes(set: &mut BTreeSet<Vec<u8>>, s: &str) {
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

fn json_escape_char(out: &mut Vec<u8>, c: char, ascii_only: bool, html: bool, digits: &[u8; 16]) {
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
fn add_percent_encodings(set: &mut BTreeSet<Vec<u8>>, b: &[u8]) {
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
fn add_base64(set: &mut BTreeSet<Vec<u8>>, b: &[u8]) {
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

/// A writer that masks secrets before passing bytes on.
///
/// Bytes that could be the beginning of a secret are held until the next write shows whether
/// they are; [`RedactingWriter::finish`] (or drop) writes out the rest. Output is byte-for-byte
/// what [`Redactor::redact_bytes`] gives for the whole stream.
pub struct RedactingWriter<W: Write> {
    redactor: Arc<Redactor>,
    inner: Option<W>,
    buf: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    /// Masks and writes out whatever is held, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// The inner writer's error.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain_all()?;
        let mut w = self.inner.take().expect("inner is only taken here");
        w.flush()?;
        Ok(w)
    }

    fn drain_all(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let masked = self.redactor.redact_bytes(&self.buf).into_owned();
        self.buf.zeroize();
        self.buf.clear();
        if let Some(w) = self.inner.as_mut() {
            w.write_all(&masked)?;
        }
        Ok(())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        let m = self.redactor.matcher();
        let hold = m.hold_start(&self.buf);
        let mut out = Vec::with_capacity(hold + 16);
        let consumed = mask_into(&m, &self.buf, hold, &mut out);
        self.buf.drain(..consumed);
        if let Some(w) = self.inner.as_mut() {
            w.write_all(&out)?;
        }
        Ok(data.len())
    }

    /// Flushes the inner writer. Bytes that could still be the start of a secret stay held.
    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.drain_all();
            if let Some(w) = self.inner.as_mut() {
                let _ = w.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encodings(s: &str) -> Vec<String> {
        let json = serde_json::to_string(s).unwrap();
        let pct: String = s
            .bytes()
            .map(|c| {
                if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                    (c as char).to_string()
                } else {
                    format!("%{c:02X}")
                }
            })
            .collect();
        vec![
            s.to_owned(),
            STANDARD.encode(s),
            URL_SAFE.encode(s),
            STANDARD_NO_PAD.encode(s),
            pct.replace("%20", "+"),
            pct,
            json[1..json.len() - 1].to_owned(),
            s.bytes().map(|c| format!("{c:02x}")).collect(),
            s.bytes().map(|c| format!("{c:02X}")).collect(),
        ]
    }

    #[test]
    fn masks_every_encoding() {
        let r = Redactor::new();
        let secret = "p@ss/wörd+\"x\"?";
        r.register_text(secret);
        for enc in encodings(secret) {
            let text = format!("before {enc} after");
            assert_eq!(r.redact(&text), "before *** after", "encoding {enc}");
        }
    }

    /// What real encoders printed for one value (Python 3.11's `json.dumps`, `quote_plus`,
    /// `quote` and `bytes.hex`, Go's `encoding/json` escaping, Node's `encodeURIComponent`,
    /// `encodeURI` and `URLSearchParams`): each is masked whole.
    #[test]
    fn masks_what_real_encoders_print() {
        let r = Redactor::new();
        r.register_text("p@ss wörd/€+<&>\"x\"");
        for printed in [
            r#"p@ss w\u00f6rd/\u20ac+<&>\"x\""#,
            r#"p@ss w\u00F6rd/\u20AC+<&>\"x\""#,
            r#"p@ss wörd/€+\u003c\u0026\u003e\"x\""#,
            r#"p@ss w\u00f6rd/\u20ac+\u003c\u0026\u003e\"x\""#,
            "p%40ss+w%C3%B6rd%2F%E2%82%AC%2B%3C%26%3E%22x%22",
            "p%40ss+w%c3%b6rd%2f%e2%82%ac%2b%3c%26%3e%22x%22",
            "p%40ss%20w%C3%B6rd/%E2%82%AC%2B%3C%26%3E%22x%22",
            "p%40ss%20w%C3%B6rd%2F%E2%82%AC%2B%3C%26%3E%22x%22",
            "p@ss%20w%C3%B6rd/%E2%82%AC+%3C&%3E%22x%22",
            "704073732077c3b672642fe282ac2b3c263e227822",
            "704073732077C3B672642FE282AC2B3C263E227822",
        ] {
            assert_eq!(
                r.redact(&format!("[{printed}]")),
                "[***]",
                "{printed} is not masked"
            );
        }
        // an astral character is a surrogate pair in ASCII-only JSON
        r.register_text("key🔑value");
        assert_eq!(r.redact(r#"="key\ud83d\udd11value""#), "=\"***\"");
    }

    /// Plain ASCII values get no extra patterns from encodings that would print them unchanged.
    #[test]
    fn encodings_that_change_nothing_add_no_patterns() {
        let r = Redactor::new();
        r.register_text("sk-0001-abcdef");
        // the value, its lower- and upper-case hex, and base64's: padded and URL-safe (equal
        // here), and the cores at three alignments in two alphabets (some equal)
        assert!(r.pattern_count() <= 10, "{}", r.pattern_count());
    }

    #[test]
    fn masks_base64_inside_longer_base64() {
        let r = Redactor::new();
        r.register_text("s3cr3t-value");
        for prefix in ["", "u:", "us:", "user:"] {
            let header = STANDARD.encode(format!("{prefix}s3cr3t-value"));
            let masked = r.redact(&header);
            assert!(masked.contains(MASK), "{prefix}: {masked}");
            assert!(
                !masked.contains(&STANDARD_NO_PAD.encode("s3cr3t-value")[..8]),
                "{prefix}: {masked}"
            );
        }
    }

    #[test]
    fn json_leaves_and_short_values() {
        let r = Redactor::new();
        let v = SecretValue::new(
            serde_json::json!({"user": "etl", "password": "pw-123456", "port": 54321}),
        );
        assert_eq!(r.register(&v), 1, "\"etl\" is too short");
        assert_eq!(r.redact("etl pw-123456 54321"), "etl *** ***");
        assert!(!r.register_text("abc"));
        let r = Redactor::with_min_len(2);
        assert!(r.register_text("ab"));
        assert_eq!(r.redact("xaby"), "x***y");
    }

    #[test]
    fn stream_split_across_writes() {
        let r = Arc::new(Redactor::new());
        r.register_text("TOPSECRET");
        let mut w = r.writer(Vec::new());
        w.write_all(b"a TOPS").unwrap();
        w.write_all(b"ECRET b T").unwrap();
        w.flush().unwrap();
        assert_eq!(w.inner.as_ref().unwrap().as_slice(), b"a *** b ");
        let out = w.finish().unwrap();
        assert_eq!(out, b"a *** b T");
    }

    #[test]
    fn empty_redactor_is_identity() {
        let r = Redactor::new();
        assert!(matches!(r.redact("x"), Cow::Borrowed("x")));
        assert_eq!(r.redact_bytes(b"\xff\x00"), &b"\xff\x00"[..]);
    }

    fn secret_strategy() -> impl Strategy<Value = String> {
        // no '*': the mask itself must not be able to complete a secret
        "[A-Za-z0-9@$%&/+=:;,.?!\"'\\\\ éü€\n-]{4,24}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn masked_output_contains_no_secret_in_any_encoding(
            secrets in proptest::collection::vec(secret_strategy(), 1..5),
            noise in proptest::collection::vec("[a-z ]{0,12}", 1..8),
            picks in proptest::collection::vec((0usize..5, 0usize..9), 1..10),
        ) {
            let r = Redactor::new();
            for s in &secrets { r.register_text(s); }
            let mut text = String::new();
            for (i, (si, ei)) in picks.iter().enumerate() {
                text.push_str(&noise[i % noise.len()]);
                let s = &secrets[si % secrets.len()];
                text.push_str(&encodings(s)[*ei]);
            }
            let masked = r.redact(&text);
            for s in &secrets {
                for enc in encodings(s) {
                    prop_assert!(!masked.contains(&enc), "{enc:?} left in {masked:?}");
                }
            }
        }

        /// The sampling filter finds exactly the matches of a plain search of the whole text.
        #[test]
        fn filtered_search_equals_plain_search(
            patterns in proptest::collection::btree_set("[ab]{4,9}", 1..20),
            text in "[abc]{0,300}",
        ) {
            let set: BTreeSet<Vec<u8>> = patterns.into_iter().map(String::into_bytes).collect();
            let m = Matcher::build(&set);
            prop_assert!(m.filter.is_some());
            let mut filtered = Vec::new();
            m.each_match(text.as_bytes(), |s, e| filtered.push((s, e)));
            let plain: Vec<(usize, usize)> =
                m.ac.as_ref().unwrap().find_iter(text.as_bytes()).map(|x| (x.start(), x.end())).collect();
            prop_assert_eq!(filtered, plain);
        }

        /// The fallback scan finds exactly what the automaton finds.
        #[test]
        fn slow_scan_equals_automaton(
            patterns in proptest::collection::btree_set("[ab]{1,6}", 1..12),
            text in "[abc]{0,200}",
        ) {
            let set: BTreeSet<Vec<u8>> = patterns.into_iter().map(String::into_bytes).collect();
            let m = Matcher::build(&set);
            let mut slow = Vec::new();
            m.each_match_slowly(text.as_bytes(), |s, e| slow.push((s, e)));
            let fast: Vec<(usize, usize)> =
                m.ac.as_ref().unwrap().find_iter(text.as_bytes()).map(|x| (x.start(), x.end())).collect();
            prop_assert_eq!(slow, fast);
        }

        #[test]
        fn stream_masking_equals_whole_text_masking(
            secrets in proptest::collection::vec(secret_strategy(), 1..4),
            parts in proptest::collection::vec(("[a-zA-Z0-9 ]{0,10}", 0usize..4), 1..10),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            let r = Arc::new(Redactor::new());
            for s in &secrets { r.register_text(s); }
            let mut text = Vec::new();
            for (noise, si) in &parts {
                text.extend_from_slice(noise.as_bytes());
                text.extend_from_slice(secrets[si % secrets.len()].as_bytes());
            }
            let whole = r.redact_bytes(&text).into_owned();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort_unstable();
            let mut w = r.writer(Vec::new());
            let mut prev = 0;
            for c in cuts.into_iter().chain([text.len()]) {
                w.write_all(&text[prev..c]).unwrap();
                prev = c;
            }
            prop_assert_eq!(w.finish().unwrap(), whole);
        }
    }
}
