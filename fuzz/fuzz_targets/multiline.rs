//! cargo-fuzz target `multiline`: arbitrary bytes into `hephaestus::commands::fuzz::multiline`, which panics when an
//! invariant breaks. The invariants and the corpus replay live in the main crate.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hephaestus::commands::fuzz::multiline(data));
