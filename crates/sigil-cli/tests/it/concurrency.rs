//! Concurrent writers are serialised: nothing is lost, no comment is damaged.

use sigil_test_support::process::{COMMAND_LIMIT, finish_within};

use crate::{Sandbox, assert_code};

#[test]
fn twenty_concurrent_sets_all_land_with_comments_intact() {
    let sb = Sandbox::new();
    let header = "# Sigil config: hand-written, keep this\nbackend = \"local\" # trailing comment\n\n[context.secrets]\n# first secret\nFIRST = \"1\" # about FIRST\n";
    sb.write_config(header);
    let children: Vec<_> = (0..20)
        .map(|i| {
            let mut c = sb.cmd(&["secrets", "set", &format!("CONCURRENT_{i:02}"), "--stdin"]);
            c.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("value-{i}").as_bytes())
                .unwrap();
            child
        })
        .collect();
    for child in children {
        let o = finish_within(child, COMMAND_LIMIT, "sigil secrets set");
        assert_code(&o, 0);
    }
    let text = std::fs::read_to_string(sb.config()).unwrap();
    assert!(text.starts_with(header), "header changed:\n{text}");
    for i in 0..20 {
        let o = sb.run(&["secrets", "get", &format!("CONCURRENT_{i:02}")]);
        assert_code(&o, 0);
        assert_eq!(o.stdout, format!("value-{i}\n").into_bytes());
    }
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("CONCURRENT_"))
            .count(),
        20
    );
    // no temporary file is left behind
    let leftovers: Vec<_> = std::fs::read_dir(sb.home().join(".sigil"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
