//! Writing output: stdout that tolerates a closed pipe.

use std::io::Write;

/// Writes bytes to stdout and flushes.
///
/// # Errors
/// The write error (a broken pipe is recognised by [`is_broken_pipe`]).
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Writes a line to stdout.
///
/// # Errors
/// As [`write_stdout`].
pub fn line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Whether the error is a closed stdout (`sigil secrets list | head -1`), which is not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
