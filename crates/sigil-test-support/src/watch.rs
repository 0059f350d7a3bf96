//! An allocator that can look into the memory a program frees, to prove that a secret is wiped
//! before its memory goes back: install [`Watching`] as a test binary's `#[global_allocator]`,
//! then [`watched_drop`] a value and see how many freed blocks still held the needle.
//!
//! The only unsafe code in the workspace, and only ever linked into tests: an allocator must be
//! an `unsafe impl`, and reading a block as it is freed is the point of the exercise.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The system allocator, plus a look into every block freed while a [`watched_drop`] runs.
pub struct Watching;

static WATCH: AtomicBool = AtomicBool::new(false);
static FREED: AtomicUsize = AtomicUsize::new(0);
static HELD: AtomicUsize = AtomicUsize::new(0);
/// One watched drop at a time (tests run on several threads).
static ONE: Mutex<()> = Mutex::new(());
/// The needle's bytes, copied where the allocator can read them without allocating.
static NEEDLE_BYTES: Mutex<[u8; 64]> = Mutex::new([0; 64]);
static NEEDLE_LEN: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to `System` with the same arguments; a block is only read (never
// written) before `System.dealloc` frees it, while it is still allocated and `layout.size()`
// bytes long.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `System`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WATCH.load(Ordering::SeqCst) {
            // SAFETY: the block is allocated and `layout.size()` bytes long until the call below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            FREED.fetch_add(1, Ordering::SeqCst);
            if let Ok(needle) = NEEDLE_BYTES.try_lock() {
                let needle = &needle[..NEEDLE_LEN.load(Ordering::SeqCst)];
                if block.windows(needle.len()).any(|w| w == needle) {
                    HELD.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        // SAFETY: as for `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Drops `value` while watching for `needle` (1 to 64 bytes) in every block freed meanwhile;
/// returns how many blocks were freed and how many of them still held the needle. Meaningful
/// only in a binary whose `#[global_allocator]` is [`Watching`].
///
/// # Panics
/// When the needle is empty or longer than 64 bytes.
pub fn watched_drop<T>(value: T, needle: &[u8]) -> (usize, usize) {
    assert!(
        !needle.is_empty() && needle.len() <= 64,
        "a needle of 1 to 64 bytes"
    );
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    {
        let mut bytes = NEEDLE_BYTES.lock().unwrap_or_else(|p| p.into_inner());
        bytes[..needle.len()].copy_from_slice(needle);
        NEEDLE_LEN.store(needle.len(), Ordering::SeqCst);
    }
    FREED.store(0, Ordering::SeqCst);
    HELD.store(0, Ordering::SeqCst);
    WATCH.store(true, Ordering::SeqCst);
    drop(value);
    WATCH.store(false, Ordering::SeqCst);
    (FREED.load(Ordering::SeqCst), HELD.load(Ordering::SeqCst))
}
