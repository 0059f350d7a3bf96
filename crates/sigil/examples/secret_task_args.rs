//! Pattern 1: pass secrets as task arguments.
//!
//! A secret task resolves `MYSECRET` through the ordinary chain when the flow runs; its result is
//! passed to the task that needs it. That task logs the credential — and the log shows `***`.
//!
//! ```sh
//! SIGIL__CONTEXT__SECRETS__MYSECRET='MY SECRET VALUE' cargo run -p sigil --example secret_task_args
//! ```

#![allow(clippy::print_stdout)] // an example program prints

use sigil::SecretValue;
use sigil::flow::{Flow, SecretTask};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut flow = Flow::new("example");
    let my_secret = flow.add(SecretTask::new("MYSECRET"));
    flow.task("my_task", my_secret, |ctx, credentials: SecretValue| {
        // a string, or a clear task error (a table or number stored by mistake would be "")
        let password = credentials.expose_str().ok_or("MYSECRET is not a string")?;
        // connect with the credential; logging it by mistake only ever shows ***
        ctx.info(format!(
            "connecting to postgres://etl:{password}@db:5432/warehouse"
        ));
        Ok(())
    });
    let run = flow.run()?;
    for line in run.logs() {
        println!("[{}] {}", line.task, line.message);
    }
    print!("{run}");
    if run.is_success() {
        Ok(())
    } else {
        Err("the flow failed".into())
    }
}
