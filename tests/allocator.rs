//! Memory an API-key check frees goes back to the system. In a process of its own: the
//! allocator's parameters are global.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

/// The first key check freed argon2id's 4 MiB of working memory, which raised glibc's
/// mmap threshold to 4 MiB and its trim threshold to 8 MiB; every later check then took
/// its 4 MiB from an arena that kept it. Counted through the allocator's own
/// bookkeeping (arena and mmapped bytes it holds from the system), not resident memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn key_checks_give_their_working_memory_back() {
    assert!(ibstream::cli::allocator::pin_mmap_threshold());
    let key = ibstream::crypto::generate_api_key();
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let held = || {
        let info = unsafe { libc::mallinfo2() };
        info.arena + info.hblkhd
    };
    let before = held();
    for _ in 0..3 {
        assert!(ibstream::crypto::verify_api_key(&key.secret, &key.hash));
    }
    let after = held();
    assert!(
        after < before + (1 << 20),
        "three key checks left {} bytes with the allocator",
        after.saturating_sub(before)
    );
}
