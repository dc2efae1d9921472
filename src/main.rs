//! The `sluice` binary: everything lives in the library; see `sluice::cli`.

/// Events are allocated on the source's thread and freed on another actor's.
/// Under that producer/consumer pattern glibc's malloc spends most of a replay
/// consolidating arenas and mimalloc keeps faulting in fresh pages; jemalloc's
/// thread caches and arenas halve the pipeline's CPU time (measured on the
/// benchmark topology, see the README).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(sluice::cli::main());
}
