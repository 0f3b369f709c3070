// With the `mlock` feature (a default one), each buffer's pages are locked in memory (never
// swapped out) for as long as it holds them; without it, the wasm no-ops are used everywhere.
#[cfg(all(windows, feature = "mlock"))]
mod windows;

#[cfg(all(not(windows), not(target_arch = "wasm32"), feature = "mlock"))]
mod unix;

#[cfg(any(target_arch = "wasm32", not(feature = "mlock")))]
mod wasm;

// Re-export functions based on the platform
#[cfg(all(not(windows), not(target_arch = "wasm32"), feature = "mlock"))]
pub use unix::{mlock, munlock};
#[cfg(any(target_arch = "wasm32", not(feature = "mlock")))]
pub use wasm::{mlock, munlock};
#[cfg(all(windows, feature = "mlock"))]
pub use windows::{mlock, munlock};

#[cfg(all(not(target_arch = "wasm32"), feature = "mlock"))]
mod error {
    use std::error::Error;
    use std::fmt::Display;
    use std::sync::atomic::{AtomicBool, Ordering};

    use log::warn;

    #[derive(Debug)]
    pub struct MemoryLockError {
        message: String,
    }

    impl MemoryLockError {
        pub fn new(message: String) -> Self {
            let warning_previously_shown = MLOCK_WARNING_SHOWN.swap(true, Ordering::Relaxed);
            if !warning_previously_shown {
                warn!(
                    "Security warning: OS has failed to lock/unlock memory for a cryptographic buffer: {message}"
                );
                #[cfg(unix)]
                warn!("You might need to increase the RLIMIT_MEMLOCK limit.");
                warn!("This warning will only be shown once.");
            }
            Self { message }
        }
    }

    static MLOCK_WARNING_SHOWN: AtomicBool = AtomicBool::new(false);

    impl Display for MemoryLockError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failed to lock/unlock memory: {}", self.message)
        }
    }

    impl Error for MemoryLockError {}
}

#[cfg(all(not(target_arch = "wasm32"), feature = "mlock"))]
pub use error::MemoryLockError;
