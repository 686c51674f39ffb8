//! The `blackbox` binary: see `blackbox --help` and README.md.

/// Counts allocations so `run` can report (and tests can prove) a hot path without any.
#[global_allocator]
static ALLOC: blackbox::alloc_count::Counting = blackbox::alloc_count::Counting;

fn main() {
    std::process::exit(blackbox::cli::main());
}
