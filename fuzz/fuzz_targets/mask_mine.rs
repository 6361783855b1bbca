//! cargo-fuzz target `mask_mine`: arbitrary bytes into `hephaestus::commands::fuzz::mask_mine`, which panics when an
//! invariant breaks. The invariants and the corpus replay live in the main crate.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hephaestus::commands::fuzz::mask_mine(data));
