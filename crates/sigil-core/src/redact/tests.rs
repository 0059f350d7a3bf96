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
