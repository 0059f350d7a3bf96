use super::*;
use proptest::prelude::*;

/// Percent-encodes `s`: alphanumerics and `safe` stay, a space is `+` when `form`, the rest is
/// `%XX` with upper- or lower-case digits. Written here, apart from the code under test.
fn percent(s: &str, safe: &str, form: bool, upper: bool) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || safe.as_bytes().contains(&c) {
                (c as char).to_string()
            } else if form && c == b' ' {
                "+".to_owned()
            } else if upper {
                format!("%{c:02X}")
            } else {
                format!("%{c:02x}")
            }
        })
        .collect()
}

/// The inside of `s` as a JSON string: serde_json's, then with every non-ASCII character as
/// `\uXXXX` (Python's `json.dumps`), then also `<`, `>`, `&` so (Go's `encoding/json`); the
/// escapes' hex digits in lower or upper case.
fn json_forms(s: &str) -> Vec<String> {
    let serde = serde_json::to_string(s).unwrap();
    let serde = serde[1..serde.len() - 1].to_owned();
    let mut out = vec![serde.clone()];
    for upper in [false, true] {
        let unit = |u: u16| {
            if upper {
                format!("\\u{u:04X}")
            } else {
                format!("\\u{u:04x}")
            }
        };
        let ascii: String = serde
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    c.encode_utf16(&mut [0; 2])
                        .iter()
                        .map(|u| unit(*u))
                        .collect()
                }
            })
            .collect();
        let go: String = serde
            .chars()
            .map(|c| match c {
                '<' | '>' | '&' => unit(c as u16),
                c => c.to_string(),
            })
            .collect();
        out.extend([ascii, go]);
    }
    out
}

/// Every form a registered value is masked in, each computed independently of the code under
/// test: itself, base64 (standard and URL-safe, padded or not), percent and form encodings
/// (each safe set, upper- and lower-case digits), JSON string escapes, hex in both cases.
fn encodings(s: &str) -> Vec<String> {
    let mut out = vec![
        s.to_owned(),
        STANDARD.encode(s),
        URL_SAFE.encode(s),
        STANDARD_NO_PAD.encode(s),
        URL_SAFE_NO_PAD.encode(s),
        s.bytes().map(|c| format!("{c:02x}")).collect(),
        s.bytes().map(|c| format!("{c:02X}")).collect(),
    ];
    for upper in [true, false] {
        for safe in ["-._~", "-._~/", "-._~!'()*", "-._~:/?#[]@!$&'()*+,;="] {
            out.push(percent(s, safe, false, upper));
        }
        for safe in ["-._~", "-._*"] {
            out.push(percent(s, safe, true, upper));
        }
    }
    out.extend(json_forms(s));
    out
}

/// `s` inside a longer base64 text (`before` and `after` encoded with it, in one of the four
/// alphabets), and the characters of that text that depend on `s`'s bytes alone: what must
/// not survive masking.
fn inside_base64(before: &[u8], s: &str, after: &[u8], engine: usize) -> (String, String) {
    let engines = [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD];
    let mut bytes = before.to_vec();
    bytes.extend_from_slice(s.as_bytes());
    bytes.extend_from_slice(after);
    let text = engines[engine % 4].encode(&bytes);
    let start = (8 * before.len()).div_ceil(6);
    let end = 8 * (before.len() + s.len()) / 6;
    let core = text[start..end].to_owned();
    (text, core)
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

/// A value inside a longer base64 text, at each of the three alignments (a prefix of 0 to 5
/// bytes) and in each alphabet: the characters that depend on the value alone are masked. (The
/// asserts used to look for the value's own base64 at offset 0 whatever the prefix: at offsets
/// 1 and 2 that text never occurs, so they could not fail.)
#[test]
fn masks_base64_inside_longer_base64() {
    let r = Redactor::new();
    let secret = "s3cr3t-välue?>";
    r.register_text(secret);
    for prefix in ["", "u", "us", "use", "user", "user:"] {
        for engine in 0..4 {
            let (text, core) = inside_base64(prefix.as_bytes(), secret, b"\n", engine);
            assert!(
                text.contains(&core) && core.len() >= 16,
                "the test's own core: {core}"
            );
            let masked = r.redact(&text);
            assert!(masked.contains(MASK), "{prefix:?}/{engine}: {masked}");
            assert!(
                !masked.contains(&core),
                "{prefix:?}/{engine}: {core} left in {masked}"
            );
        }
    }
    // the URL-safe alphabet differs from the standard one here
    let (standard, _) = inside_base64(b"u", secret, b"", 0);
    let (url_safe, _) = inside_base64(b"u", secret, b"", 1);
    assert_ne!(standard, url_safe);
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

    /// Any mix of values in any of their forms, and inside base64 after a prefix of any length:
    /// masked as a whole text, no form and no base64 core is left; masked as a stream cut
    /// anywhere, the output is the same.
    #[test]
    fn no_form_survives_whole_or_streamed(
        secrets in proptest::collection::vec(secret_strategy(), 1..4),
        noise in proptest::collection::vec("[a-z ]{0,12}", 1..8),
        picks in proptest::collection::vec((0usize..4, 0usize..40), 1..8),
        wrap in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..7), 0usize..4), 1..4),
        cuts in proptest::collection::vec(0usize..2000, 0..16),
    ) {
        let r = Arc::new(Redactor::new());
        for s in &secrets { r.register_text(s); }
        let mut text = String::new();
        let mut cores = Vec::new();
        for (i, (si, ei)) in picks.iter().enumerate() {
            text.push_str(&noise[i % noise.len()]);
            let s = &secrets[si % secrets.len()];
            let forms = encodings(s);
            if ei % 5 == 4 {
                // inside base64, after a prefix of 0 to 6 bytes
                let (before, engine) = &wrap[i % wrap.len()];
                let (b64, core) = inside_base64(before, s, b"!", *engine);
                text.push_str(&b64);
                text.push(' ');
                if core.len() >= 5 { cores.push(core); }
            } else {
                text.push_str(&forms[ei % forms.len()]);
            }
        }
        let masked = r.redact(&text);
        for s in &secrets {
            for form in encodings(s) {
                prop_assert!(!masked.contains(&form), "{form:?} left in {masked:?}");
            }
        }
        for core in &cores {
            prop_assert!(!masked.contains(core.as_str()), "base64 {core:?} left in {masked:?}");
        }
        let bytes = text.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut w = r.writer(Vec::new());
        let mut prev = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            w.write_all(&bytes[prev..c]).unwrap();
            prev = c;
        }
        prop_assert_eq!(w.finish().unwrap(), masked.as_bytes());
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
}
