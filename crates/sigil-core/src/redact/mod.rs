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

mod encodings;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use encodings::{add_patterns, collect_leaves};
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
mod tests;
