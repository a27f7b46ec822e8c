//! Memory given back after a load peak. The C allocator keeps what a burst freed for reuse
//! (glibc returns only the top of its main heap on its own); the real broker asks it, every
//! [`TRIM_EVERY`], to hand every whole free page back to the system, so a broker that served
//! a peak shrinks to what its idle state needs. Not part of the simulation: it changes nothing
//! a run observes.

use std::time::Duration;

/// How often freed memory is handed back.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Hands freed memory back every [`TRIM_EVERY`], for ever (a task of the real broker).
pub async fn give_back_freed_memory() {
    loop {
        tokio::time::sleep(TRIM_EVERY).await;
        trim();
    }
}

/// Asks the allocator to return its free pages; what it cannot return it keeps.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases memory the allocator holds free; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
