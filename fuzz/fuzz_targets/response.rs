//! The `response` target: [`oracle::check`] on every input (see `oracles/response.rs`, which
//! `tests/fuzz_corpus.rs` also runs on the committed corpus).

#![no_main]

#[path = "common.rs"]
mod common;
#[path = "../oracles/response.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::check(data));
