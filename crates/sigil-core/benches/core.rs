//! Benchmarks of the core's hot paths: resolving a local secret and masking text.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sigil_core::{ConfigFile, Redactor, Resolver, SecretName};

fn resolve(c: &mut Criterion) {
    let mut text = String::from("[context.secrets]\n");
    for i in 0..100 {
        text.push_str(&format!("SECRET_{i} = \"value-{i}\"\n"));
    }
    let file = ConfigFile::parse("bench.toml".as_ref(), &text).unwrap();
    let chain = Resolver::local(&file);
    let name: SecretName = "SECRET_42".parse().unwrap();
    c.bench_function("resolver_get_file_secret_warm", |b| {
        b.iter(|| chain.get(black_box(&name)).unwrap())
    });
    c.bench_function("baseline_secret_name_parse", |b| {
        b.iter(|| black_box("SECRET_42").parse::<SecretName>().unwrap())
    });
}

/// 16 MiB of log-like text with 1,000 registered secrets, 100 of them present.
fn redact(c: &mut Criterion) {
    let r = Arc::new(Redactor::new());
    let secrets: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "sk-{i:04}-{:016x}",
                (i as u64).wrapping_mul(0x9E3779B97F4A7C15)
            )
        })
        .collect();
    for s in &secrets {
        r.register_text(s);
    }
    let mut text = String::with_capacity(16 << 20);
    let mut i = 0usize;
    while text.len() < 16 << 20 {
        text.push_str("2026-11-29T19:32:40Z INFO task=load_orders rows=1834 elapsed_ms=12 status=ok host=worker-3\n");
        if i.is_multiple_of(1000) {
            text.push_str(&format!(
                "DEBUG connecting with token {}\n",
                secrets[(i / 1000) % 1000]
            ));
        }
        i += 1;
    }
    let masked = r.redact(&text);
    assert!(masked.len() < text.len());
    eprintln!("redactor: {} patterns for 1,000 secrets", r.pattern_count());
    let mut g = c.benchmark_group("redactor");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(10);
    g.bench_function("redact_16mib_1000_secrets", |b| {
        b.iter(|| r.redact(black_box(&text)).len())
    });
    g.bench_function("baseline_count_newlines_16mib", |b| {
        b.iter(|| {
            black_box(text.as_bytes())
                .iter()
                .filter(|&&c| c == b'\n')
                .count()
        })
    });
    // the filter skips less with short secrets: 1,000 secrets of 8 bytes
    let short = Arc::new(Redactor::new());
    for i in 0..1000u64 {
        short.register_text(&format!("{:08x}", i.wrapping_mul(0x9E37_79B9)));
    }
    eprintln!(
        "redactor: {} patterns for 1,000 secrets of 8 bytes",
        short.pattern_count()
    );
    g.bench_function("redact_16mib_1000_secrets_of_8_bytes", |b| {
        b.iter(|| short.redact(black_box(&text)).len())
    });
    g.finish();
}

/// RFC 3339 on the server's hottest path (every read's answer carries a time), against the
/// formatter writing the same digits from numbers already at hand.
fn times(c: &mut Criterion) {
    let mut g = c.benchmark_group("times");
    let ms = 1_795_894_360_123_i64;
    g.bench_function("rfc3339", |b| {
        b.iter(|| sigil_core::wire::rfc3339(std::hint::black_box(ms)))
    });
    g.bench_function("parse_rfc3339", |b| {
        b.iter(|| {
            sigil_core::wire::parse_rfc3339(std::hint::black_box("2026-11-28T19:32:40.123+01:00"))
        })
    });
    g.bench_function("baseline_format_7_numbers", |b| {
        b.iter(|| {
            let [y, m, d, hh, mi, ss, f] = std::hint::black_box([2026, 11, 28, 19, 32, 40, 123]);
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mi:02}:{ss:02}.{f:03}Z")
        })
    });
    g.finish();
}

criterion_group!(benches, resolve, redact, times);
criterion_main!(benches);
