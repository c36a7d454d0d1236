//! The `signature_header` target: [`oracle::check`] on every input (see `oracles/signature_header.rs`, which
//! `tests/fuzz_corpus.rs` also runs on the committed corpus).

#![no_main]

#[path = "common.rs"]
mod common;
#[path = "../oracles/signature_header.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::check(data));
