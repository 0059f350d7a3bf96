//! Writing output: stdout that tolerates a closed pipe.

use std::io::Write;

/// Writes bytes to stdout and flushes.
///
/// # Errors
/// The write error (a broken pipe becomes `Failure::BrokenPipe`: exit 0, nothing said).
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
