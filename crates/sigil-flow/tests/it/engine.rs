//! Running: parallelism, retries, timeouts, triggers, upstream failures, large flows, reports.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use sigil_flow::{Flow, RunOptions, TaskState, Trigger};

#[test]
fn independent_tasks_run_at_once() {
    // each task waits on one shared barrier: both finish only if they run at the same time
    let barrier = Arc::new(Barrier::new(2));
    let mut flow = Flow::new("parallel");
    for name in ["left", "right"] {
        let b = barrier.clone();
        let h = flow.task(name, (), move |_, ()| {
            b.wait();
            Ok(())
        });
        flow.configure(h).timeout(Duration::from_secs(30)); // a generous guard, not a measurement
    }
    let run = flow.run_with(RunOptions::new().workers(2)).unwrap();
    assert!(run.is_success(), "{run}");
}

#[test]
fn data_flows_in_dependency_order() {
    let mut flow = Flow::new("diamond");
    let a = flow.task("a", (), |_, ()| Ok(2u64));
    let b = flow.task("b", a, |_, a: u64| Ok(a * 10));
    let c = flow.task("c", a, |_, a: u64| Ok(a + 1));
    let d = flow.task("d", (b, c), |_, (b, c): (u64, u64)| Ok(b + c));
    let all = flow.task("all", vec![a, b, c, d], |_, v: Vec<u64>| Ok(v));
    let run = flow.run().unwrap();
    assert_eq!(run.output(d), Some(23));
    assert_eq!(run.output(all), Some(vec![2, 20, 3, 23]));
}

#[test]
fn retries_until_success() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut flow = Flow::new("retry");
    let c = calls.clone();
    let flaky = flow.task("flaky", (), move |ctx, ()| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(ctx.attempt(), n);
        if n < 3 {
            Err(format!("attempt {n} failed").into())
        } else {
            Ok(n)
        }
    });
    flow.configure(flaky)
        .max_retries(3)
        .retry_delay(Duration::from_millis(5));
    let s = seen.clone();
    let run = flow
        .run_with(
            RunOptions::new()
                .on_state(move |task, state| s.lock().unwrap().push((task.to_owned(), state))),
        )
        .unwrap();
    assert_eq!(run.state(flaky), TaskState::Success);
    assert_eq!(run.task(flaky).attempts, 3);
    assert_eq!(run.task(flaky).error, None);
    assert_eq!(run.output(flaky), Some(3));
    let states: Vec<TaskState> = seen.lock().unwrap().iter().map(|(_, s)| *s).collect();
    use TaskState::*;
    assert_eq!(
        states,
        vec![Running, Retrying, Running, Retrying, Running, Success]
    );
}

#[test]
fn retries_run_out_and_downstream_is_upstream_failed() {
    let mut flow = Flow::new("fail");
    let bad = flow.task("bad", (), |_, ()| -> Result<u8, _> { Err("boom".into()) });
    flow.configure(bad).max_retries(1);
    let next = flow.task("next", bad, |_, x: u8| Ok(x));
    let after_next = flow.task("after_next", next, |_, x: u8| Ok(x));
    let independent = flow.task("independent", (), |_, ()| Ok(()));
    let run = flow.run().unwrap();
    assert!(!run.is_success());
    assert_eq!(run.state(bad), TaskState::Failed);
    assert_eq!(run.task(bad).attempts, 2);
    assert_eq!(run.task(bad).error.as_deref(), Some("boom"));
    assert_eq!(run.state(next), TaskState::UpstreamFailed);
    assert_eq!(run.task(next).attempts, 0);
    assert_eq!(
        run.task(next).error.as_deref(),
        Some("upstream task(s) did not succeed: bad")
    );
    assert_eq!(run.state(after_next), TaskState::UpstreamFailed);
    assert_eq!(run.state(independent), TaskState::Success);
}

#[test]
fn panics_are_failures() {
    let mut flow = Flow::new("panic");
    let p = flow.task("p", (), |_, ()| -> Result<(), _> { panic!("went wrong") });
    let run = flow.run().unwrap();
    assert_eq!(run.state(p), TaskState::Failed);
    assert_eq!(
        run.task(p).error.as_deref(),
        Some("task panicked: went wrong")
    );
}

#[test]
fn timeouts_end_the_attempt_and_retry() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let mut flow = Flow::new("timeout");
    let slow = flow.task("slow", (), move |ctx, ()| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            // the first attempt hangs until the run gives up on it
            while !ctx.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(n)
    });
    flow.configure(slow)
        .timeout(Duration::from_millis(100))
        .max_retries(1);
    let stuck = flow.task("stuck", (), |ctx, ()| {
        while !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    });
    flow.configure(stuck).timeout(Duration::from_millis(50));
    let run = flow.run_with(RunOptions::new().workers(2)).unwrap();
    assert_eq!(run.state(slow), TaskState::Success, "{run}");
    assert_eq!(
        run.output(slow),
        Some(1),
        "the second attempt's result is kept"
    );
    assert_eq!(run.task(slow).attempts, 2);
    assert_eq!(run.state(stuck), TaskState::TimedOut);
    assert_eq!(
        run.task(stuck).error.as_deref(),
        Some("timed out after 50ms")
    );
}

#[test]
fn clean_up_task_always_runs() {
    let cleaned = Arc::new(AtomicU32::new(0));
    let mut flow = Flow::new("cleanup");
    let work = flow.task("work", (), |_, ()| -> Result<(), _> {
        Err("work failed".into())
    });
    let c = cleaned.clone();
    let cleanup = flow.task("cleanup", (), move |_, ()| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    flow.configure(cleanup)
        .trigger(Trigger::AlwaysRun)
        .after(work);
    let default_trigger = flow.task("report", (), |_, ()| Ok(()));
    flow.after(default_trigger, work);
    let run = flow.run().unwrap();
    assert_eq!(run.state(work), TaskState::Failed);
    assert_eq!(run.state(cleanup), TaskState::Success);
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
    assert_eq!(run.state(default_trigger), TaskState::UpstreamFailed);
}

#[test]
fn ten_thousand_tasks_as_a_chain_and_a_fan_out() {
    let mut chain = Flow::new("chain");
    let mut last = chain.task("t0", (), |_, ()| Ok(0u64));
    for i in 1..10_000 {
        last = chain.task(format!("t{i}"), last, |_, x: u64| Ok(x + 1));
    }
    let run = chain.run().unwrap();
    assert!(run.is_success());
    assert_eq!(run.output(last), Some(9_999));

    let mut fan = Flow::new("fan");
    let root = fan.task("root", (), |_, ()| Ok(1u64));
    let leaves: Vec<_> = (0..9_998)
        .map(|i| fan.task(format!("leaf{i}"), root, move |_, x: u64| Ok(x + i)))
        .collect();
    let sum = fan.task("sum", leaves, |_, v: Vec<u64>| Ok(v.iter().sum::<u64>()));
    let run = fan.run().unwrap();
    assert!(run.is_success());
    assert_eq!(run.tasks().len(), 10_000);
    assert_eq!(run.output(sum), Some(9_998 + (0..9_998u64).sum::<u64>()));
}

#[test]
fn report_as_table_and_json() {
    let mut flow = Flow::new("report");
    flow.task("ok", (), |ctx, ()| {
        ctx.info("hello");
        Ok(())
    });
    flow.task("bad", (), |_, ()| -> Result<(), _> { Err("nope".into()) });
    let run = flow.run().unwrap();
    let table = run.to_string();
    assert!(table.contains("TASK  STATE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ok    Success") && l.contains("  1  ")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("bad   Failed") && l.ends_with("nope")),
        "{table}"
    );
    let json = run.to_json();
    assert_eq!(json["flow"], "report");
    assert_eq!(json["success"], false);
    assert_eq!(json["tasks"][1]["state"], "Failed");
    assert_eq!(json["tasks"][1]["error"], "nope");
    assert_eq!(json["logs"][0]["message"], "hello");
    assert_eq!(json["run_id"].as_str().unwrap().len(), 36);
}

/// Runs `flow` and checks that every task was called once and its report says one attempt.
fn assert_each_task_ran_once(flow: &Flow, calls: &[(&str, Arc<AtomicU32>)], opts: RunOptions) {
    let run = flow.run_with(opts).unwrap();
    assert!(run.is_success(), "{run}");
    for (name, count) in calls {
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "{name} was called more than once\n{run}"
        );
        let report = run.tasks().iter().find(|t| t.name == *name).unwrap();
        assert_eq!(report.attempts, 1, "{name}\n{run}");
    }
    let attempts: Vec<u32> = run
        .logs()
        .iter()
        .filter_map(|l| l.message.strip_prefix("attempt "))
        .map(|a| a.parse().unwrap())
        .collect();
    assert!(attempts.iter().all(|&a| a == 1), "{attempts:?}");
}

fn counted(calls: &mut Vec<(&'static str, Arc<AtomicU32>)>, name: &'static str) -> Arc<AtomicU32> {
    let c = Arc::new(AtomicU32::new(0));
    calls.push((name, c.clone()));
    c
}

// A task whose only inputs were parameters ran twice, concurrently: starting a run queued the
// parameters' dependents, then queued them again because they were still Pending.
#[test]
fn a_task_fed_by_parameters_runs_once_in_every_wiring() {
    // parameter only
    let mut calls = Vec::new();
    let mut flow = Flow::new("param_only");
    let p = flow.parameter_with_default("rows", 10u32);
    let c = counted(&mut calls, "insert_rows");
    flow.task("insert_rows", p, move |ctx, rows: u32| {
        ctx.info(format!("attempt {}", ctx.attempt()));
        c.fetch_add(1, Ordering::SeqCst);
        Ok(rows)
    });
    assert_each_task_ran_once(&flow, &calls, RunOptions::new().workers(2));

    // a parameter and a task
    let mut calls = Vec::new();
    let mut flow = Flow::new("param_and_task");
    let p = flow.parameter::<String>("env");
    let c = counted(&mut calls, "extract");
    let t = flow.task("extract", (), move |_, ()| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(3u32)
    });
    let c = counted(&mut calls, "load");
    flow.task("load", (p, t), move |_, (env, n): (String, u32)| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(format!("{env}{n}"))
    });
    assert_each_task_ran_once(
        &flow,
        &calls,
        RunOptions::new()
            .workers(2)
            .parameter("env", String::from("prod")),
    );

    // several parameters, two tasks on them
    let mut calls = Vec::new();
    let mut flow = Flow::new("several_params");
    let a = flow.parameter_with_default("a", 1u32);
    let b = flow.parameter_with_default("b", 2u32);
    let c1 = counted(&mut calls, "sum");
    let sum = flow.task("sum", (a, b), move |_, (a, b): (u32, u32)| {
        c1.fetch_add(1, Ordering::SeqCst);
        Ok(a + b)
    });
    let c2 = counted(&mut calls, "double_a");
    flow.task("double_a", a, move |_, a: u32| {
        c2.fetch_add(1, Ordering::SeqCst);
        Ok(a * 2)
    });
    let c3 = counted(&mut calls, "after_sum");
    flow.task("after_sum", sum, move |_, s: u32| {
        c3.fetch_add(1, Ordering::SeqCst);
        Ok(s)
    });
    assert_each_task_ran_once(&flow, &calls, RunOptions::new().workers(4));

    // no parameters
    let mut calls = Vec::new();
    let mut flow = Flow::new("no_params");
    let c = counted(&mut calls, "root");
    let r = flow.task("root", (), move |_, ()| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(1u32)
    });
    let c = counted(&mut calls, "leaf");
    flow.task("leaf", r, move |_, x: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(x)
    });
    assert_each_task_ran_once(&flow, &calls, RunOptions::new().workers(2));
}
