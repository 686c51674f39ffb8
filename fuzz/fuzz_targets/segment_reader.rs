//! Fuzz target `segment_reader`: see `blackbox_fuzz::segment_reader` and fuzz/README.md.
//!
//! Under cargo-fuzz (`--cfg fuzzing`) this is a libFuzzer target. Built with plain
//! `cargo build` it is a replay binary: `segment_reader FILE_OR_DIR...` runs the harness on each input
//! (to reproduce a crash, or to run a corpus on stable Rust).
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| blackbox_fuzz::segment_reader(data));

#[cfg(not(fuzzing))]
fn main() {
    let n = blackbox_fuzz::replay(std::env::args_os().skip(1), blackbox_fuzz::segment_reader);
    eprintln!("segment_reader: {n} inputs ran without a panic");
}
