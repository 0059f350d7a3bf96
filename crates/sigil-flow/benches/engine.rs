//! Per-task overhead of the engine: 10,000 no-op tasks as a chain and as a fan-out.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sigil_flow::{Flow, RunOptions};

const N: usize = 10_000;

fn chain() -> Flow {
    let mut flow = Flow::new("chain");
    let mut last = flow.task("t0", (), |_, ()| Ok(0u64));
    for i in 1..N {
        last = flow.task(format!("t{i}"), last, |_, x: u64| Ok(x + 1));
    }
    flow
}

fn fan_out() -> Flow {
    let mut flow = Flow::new("fan");
    let root = flow.task("root", (), |_, ()| Ok(1u64));
    for i in 1..N {
        flow.task(format!("leaf{i}"), root, |_, x: u64| Ok(x + 1));
    }
    flow
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_10k_noop_tasks");
    g.sample_size(10);
    let chain = chain();
    let fan = fan_out();
    g.bench_function("chain_run", |b| {
        b.iter(|| {
            assert!(
                chain
                    .run_with(RunOptions::new().workers(2))
                    .unwrap()
                    .is_success()
            )
        })
    });
    g.bench_function("fan_out_run", |b| {
        b.iter(|| {
            assert!(
                fan.run_with(RunOptions::new().workers(2))
                    .unwrap()
                    .is_success()
            )
        })
    });
    g.bench_function("chain_build", |b| b.iter(|| black_box(chain_build_only())));
    // baseline: the same 10,000 closures called directly, no engine
    let fs: Vec<Box<dyn Fn(u64) -> u64>> = (0..N)
        .map(|_| Box::new(|x: u64| x + 1) as Box<dyn Fn(u64) -> u64>)
        .collect();
    g.bench_function("baseline_direct_calls", |b| {
        b.iter(|| fs.iter().fold(0u64, |acc, f| f(black_box(acc))))
    });
    g.finish();
}

fn chain_build_only() -> usize {
    chain().len()
}

criterion_group!(benches, engine);
criterion_main!(benches);
