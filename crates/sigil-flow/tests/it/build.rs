//! Building: names, cycles, foreign handles, parameters.

use sigil_flow::{Error, Flow, RunOptions};

#[test]
fn duplicate_names_are_an_error() {
    let mut flow = Flow::new("dup");
    flow.task("a", (), |_, ()| Ok(1));
    flow.task("a", (), |_, ()| Ok(2));
    assert_eq!(
        flow.run().unwrap_err(),
        Error::DuplicateName {
            flow: "dup".into(),
            name: "a".into()
        }
    );
    assert_eq!(
        flow.validate().unwrap_err().to_string(),
        "flow \"dup\": duplicate task name \"a\""
    );
}

#[test]
fn a_cycle_of_after_edges_names_its_tasks() {
    let mut flow = Flow::new("cyc");
    let a = flow.task("a", (), |_, ()| Ok(()));
    let b = flow.task("b", a, |_, ()| Ok(()));
    let c = flow.task("c", b, |_, ()| Ok(()));
    flow.after(a, c);
    let e = flow.run().unwrap_err().to_string();
    assert!(e.starts_with("flow \"cyc\": the tasks "), "{e}");
    for t in ["a", "b", "c"] {
        assert!(e.contains(t), "{e}");
    }
    assert!(
        e.contains("a -> b -> c -> a")
            || e.contains("b -> c -> a -> b")
            || e.contains("c -> a -> b -> c"),
        "{e}"
    );
}

#[test]
fn handles_of_another_flow_are_refused() {
    let mut other = Flow::new("other");
    let foreign = other.task("x", (), |_, ()| Ok(1u8));
    let mut flow = Flow::new("mine");
    flow.task("y", foreign, |_, x: u8| Ok(x));
    assert!(matches!(flow.run().unwrap_err(), Error::ForeignHandle { task, .. } if task == "y"));
}

#[test]
fn parameters_defaults_required_and_types() {
    let mut flow = Flow::new("params");
    let table = flow.parameter::<String>("table");
    let limit = flow.parameter_with_default("limit", 10u32);
    let out = flow.task("q", (table, limit), |_, (t, l): (String, u32)| {
        Ok(format!("{t}:{l}"))
    });
    assert_eq!(
        flow.run().unwrap_err().to_string(),
        "flow \"params\": parameter \"table\" is required and was not given"
    );
    let run = flow
        .run_with(RunOptions::new().parameter("table", "orders".to_string()))
        .unwrap();
    assert_eq!(run.output(out).as_deref(), Some("orders:10"));
    let run = flow
        .run_with(
            RunOptions::new()
                .parameter("table", "x".to_string())
                .parameter("limit", 3u32),
        )
        .unwrap();
    assert_eq!(run.output(out).as_deref(), Some("x:3"));
    let e = flow
        .run_with(RunOptions::new().parameter("table", 5i32))
        .unwrap_err()
        .to_string();
    // types named as a user writes them (it said `expects a alloc::string::String`)
    assert!(
        e.contains("parameter \"table\": expects String, was given i32"),
        "{e}"
    );
    // a &str for a String parameter is what a user writes; it failed at run time
    let run = flow
        .run_with(RunOptions::new().parameter("table", "orders"))
        .unwrap();
    assert_eq!(run.output(out).as_deref(), Some("orders:10"));
    let e = flow
        .run_with(
            RunOptions::new()
                .parameter("table", "x")
                .parameter("limit", Some(3u32)),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("parameter \"limit\": expects u32, was given Option<u32>"),
        "{e}"
    );
    let e = flow
        .run_with(
            RunOptions::new()
                .parameter("table", "x".to_string())
                .parameter("tabel", 1),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"tabel\": the flow has no such parameter"),
        "{e}"
    );
}
