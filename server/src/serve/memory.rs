//! Giving the memory a burst of work freed back to the system.
//!
//! glibc's allocator keeps what is freed in the arena of the thread that allocated it, and
//! gives the system back only the free space at the top of each arena. A heartbeat round over
//! ten thousand hosts allocates and frees a few tens of megabytes spread over every worker
//! thread's arena; without help, serve's resident size creeps towards the sum of its arenas'
//! peaks over the hours, although the memory in use stays flat (`docs/api-bench.md`).
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
