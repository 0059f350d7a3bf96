//! `Secret::get` of a local secret, warm, through the default chain.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sigil::Secret;

fn get(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("sigil-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("[context.secrets]\n");
    for i in 0..100 {
        text.push_str(&format!("SECRET_{i} = \"value-{i}\"\n"));
    }
    std::fs::write(dir.join("config.toml"), text).unwrap();
    let (settings, file) = sigil::Settings::load_from(&sigil::Environment::from_pairs([(
        "SIGIL_HOME",
        dir.as_os_str(),
    )]))
    .unwrap();
    sigil::set_default_resolver(Some(
        sigil::Resolver::from_settings(&settings, &file, None).unwrap(),
    ));
    let secret = Secret::new("SECRET_42");
    assert_eq!(secret.get().unwrap().expose_str(), Some("value-42"));
    c.bench_function("secret_get_file_warm", |b| {
        b.iter(|| black_box(&secret).get().unwrap())
    });
    let missing_env = Secret::new("SECRET_99");
    c.bench_function("secret_exists_file_warm", |b| {
        b.iter(|| black_box(&missing_env).exists().unwrap())
    });
    c.bench_function("baseline_env_var_os", |b| {
        b.iter(|| std::env::var_os(black_box("SIGIL__CONTEXT__SECRETS__SECRET_42")))
    });
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, get);
criterion_main!(benches);
