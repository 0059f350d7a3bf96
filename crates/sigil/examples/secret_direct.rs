//! Pattern 2: ask for a secret by name.
//!
//! ```sh
//! SIGIL__CONTEXT__SECRETS__MYSECRET='MY SECRET VALUE' cargo run -p sigil --example secret_direct
//! ```
//! or put `MYSECRET = "…"` in the `[context.secrets]` table of `~/.sigil/config.toml`.

#![allow(clippy::print_stdout)] // an example program prints

use sigil::Secret;

fn main() -> Result<(), sigil::Error> {
    let value = Secret::new("MYSECRET").get()?;
    // Debug and Display never show the value; exposing it is explicit.
    println!("got {value:?}: {} bytes", value.size());
    if Secret::new("OPTIONAL").exists()? {
        println!("OPTIONAL is set too");
    }
    Ok(())
}
