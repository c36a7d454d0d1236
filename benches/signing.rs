//! Micro-benchmark of the Alipay+ signatures (RSA-2048 PKCS#1 v1.5 / SHA-256) with the test keys
//! in `examples/keys/`: every Developer Center call costs one `sign` and one `verify` on each
//! side, so these bound how many calls per second one core can make or answer.

use std::hint::black_box;

use acqp_operator::devcenter::signing::{self, SigningKey, VerifyingKey};
use criterion::{Criterion, criterion_group, criterion_main};

const PATH: &str = "/devcenter/api/v1/authorizations/inquiry";
const CLIENT_ID: &str = "SANDBOX_ACQP_OPERATOR_DEMO";
const TIME: &str = "2026-11-27T12:08:56+08:00";

fn key_file(name: &str) -> Vec<u8> {
    let path = format!("{}/examples/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn bench(c: &mut Criterion) {
    let private = SigningKey::from_pem("tsp-private.pem", &key_file("tsp-private.pem"))
        .expect("the test private key loads");
    let public = VerifyingKey::from_pem("tsp-public.pem", &key_file("tsp-public.pem"))
        .expect("the test public key loads");
    // A one-page inquiry request, the poller's most frequent call.
    let body = br#"{"pageSize":100,"pageNumber":1}"#;
    let header = signing::sign(&private, PATH, CLIENT_ID, TIME, body);
    signing::verify(&public, PATH, CLIENT_ID, TIME, body, &header).expect("the signature verifies");

    let mut group = c.benchmark_group("devcenter::signing");
    group.bench_function("sign", |b| {
        b.iter(|| signing::sign(&private, PATH, CLIENT_ID, TIME, black_box(body)));
    });
    group.bench_function("verify", |b| {
        b.iter(|| signing::verify(&public, PATH, CLIENT_ID, TIME, black_box(body), &header));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
