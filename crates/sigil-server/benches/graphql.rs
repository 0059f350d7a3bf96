//! What `async-graphql` itself costs a request of Prefect's read document, apart from Sigil:
//! a schema of the same shape whose resolver returns a constant, executed with the document and
//! its variables as Prefect's client sends them — parsed every time, or parsed once (as the
//! server keeps parsed documents) — and the request's JSON answer serialised. Compare with the
//! server's figures in `bench/README.md` (`bench/prefect.sh`).
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use async_graphql::{EmptyMutation, EmptySubscription, Json, Object, Schema, Variables};
use criterion::{Criterion, criterion_group, criterion_main};

struct Query;

#[Object(rename_fields = "snake_case")]
impl Query {
    async fn secret_value(&self, name: String) -> Option<Json<serde_json::Value>> {
        Some(Json(serde_json::Value::String(format!("value of {name}"))))
    }
}

const READ: &str = "query($name: String!) {\n        secret_value(name: $name)\n}";

fn graphql(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
    let doc = async_graphql::parser::parse_query(READ).unwrap();
    let vars = || serde_json::from_str::<Variables>(r#"{"name": "bench/read"}"#).unwrap();
    c.bench_function("graphql: parse only", |b| {
        b.iter(|| async_graphql::parser::parse_query(READ).unwrap())
    });
    c.bench_function("graphql: parse, validate, execute, serialise", |b| {
        b.iter(|| {
            let r =
                rt.block_on(schema.execute(async_graphql::Request::new(READ).variables(vars())));
            serde_json::to_vec(&r).unwrap()
        })
    });
    c.bench_function("graphql: validate, execute, serialise (parsed once)", |b| {
        b.iter(|| {
            let mut req = async_graphql::Request::new(READ).variables(vars());
            req.set_parsed_query(doc.clone());
            let r = rt.block_on(schema.execute(req));
            serde_json::to_vec(&r).unwrap()
        })
    });
}

criterion_group!(benches, graphql);
criterion_main!(benches);
