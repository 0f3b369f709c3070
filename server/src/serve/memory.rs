//! Giving the memory a burst of work freed back to the system.
//!
//! The binary's own allocations go to jemalloc (main.rs), which returns freed pages by itself
//! within a second. The C code linked in (SQLite, above all) allocates from the C library's
//! `malloc`: glibc's keeps what is freed in the arena of the thread that allocated it and
//! gives the system back only the free space at the top of each arena, so a heartbeat round's
//! queries, spread over the blocking threads, would leave their pages behind in each.
//! `malloc_trim` returns every free page of every arena.

/// Returns the free pages the allocator holds to the system, where the allocator can (glibc);
/// elsewhere (musl frees eagerly) does nothing. Walks the allocator's free lists: call it
/// after a burst of work, not per request.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only walks the allocator's own free lists,
    // under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
