//! How the process's allocator is set up, first thing in `main`.
//!
//! glibc's malloc raises its mmap threshold (128 KiB at start) to the size of any mmapped
//! block that is freed, up to 32 MiB, and its trim threshold to twice that. The server
//! frees such blocks from its first second on: the master key's argon2id derivation
//! (19 MiB) and every API-key check (4 MiB, once per key every few seconds). From then
//! on every allocation below that size came from the per-thread arenas, which give
//! memory back only when tens of MiB lie free at their top: under the drill's churn
//! resident memory grew by about 10 MiB a minute while the heap in use stayed flat near
//! 20 MiB. With the threshold pinned, large blocks stay mmapped and go back to the
//! system when freed, and the arenas are trimmed as usual.

/// glibc's own starting value: blocks this large or larger are mmapped.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Pins the allocator's mmap threshold so that it does not follow freed blocks upwards.
/// True when done; false where there is nothing to pin (another C library) or glibc
/// refused.
pub fn pin_mmap_threshold() -> bool {
    pin()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pin() -> bool {
    // SAFETY: mallopt only sets allocator parameters; glibc takes its own lock, so it is
    // sound at any time and from any thread. The value fits a C int.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin() -> bool {
    false
}
