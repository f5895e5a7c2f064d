//! Giving freed heap back to the OS.
//!
//! A burst (thousands of objects applied at once, a re-list) leaves glibc's
//! heap with free pages in the middle that it keeps mapped, so the pod's
//! resident memory stays at the burst's peak long after. One
//! `malloc_trim` per rate interval returns them.

/// Returns free heap pages to the OS (glibc only; a no-op elsewhere).
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no
    // pointers and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
