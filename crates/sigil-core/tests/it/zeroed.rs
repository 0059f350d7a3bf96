//! "Zeroed on drop", proved on the bytes: this binary's allocator looks into every block freed
//! while a value is dropped, and none of them may still hold the value.

use sigil_core::SecretValue;
use sigil_test_support::watch::{Watching, watched_drop};

#[global_allocator]
static ALLOCATOR: Watching = Watching;

const CANARY: &str = "zeroed-canary-5f0e1d";

#[test]
fn a_dropped_value_leaves_no_copy_in_the_memory_it_frees() {
    let key = format!("{CANARY}-as-a-key");
    let nested = serde_json::json!({
        "password": CANARY,
        key: [CANARY, {"deeper": format!("prefix {CANARY} suffix")}],
    });
    let (freed, held) = watched_drop(SecretValue::new(nested), CANARY.as_bytes());
    assert!(
        freed >= 4,
        "the value's strings were freed while watched ({freed})"
    );
    assert_eq!(
        held, 0,
        "freed blocks still holding the value: {held} of {freed}"
    );
    // (other tests free memory meanwhile: counts are at least, not exactly)
    let (freed, held) = watched_drop(SecretValue::from(CANARY), CANARY.as_bytes());
    assert!(freed >= 1);
    assert_eq!(held, 0);
}

/// The watch can see a value: a plain `String` (not wiped) dropped the same way is found.
#[test]
fn the_watch_sees_an_unwiped_string() {
    let (freed, held) = watched_drop(CANARY.to_owned(), CANARY.as_bytes());
    assert!(freed >= 1);
    assert_eq!(held, 1);
}
