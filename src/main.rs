//! The `sluice` binary: everything lives in the library; see `sluice::cli`.

/// Events are allocated on the source's thread and freed on another actor's;
/// glibc's malloc spends most of a replay consolidating arenas under that
/// pattern, mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(sluice::cli::main());
}
