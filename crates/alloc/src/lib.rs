//! The global allocator of the `tracehunt` binary: mimalloc (v2 line), and
//! [`tune`], which the binary calls first thing in `main`.
//!
//! Why mimalloc: the scan allocates and frees many small strings per event;
//! with glibc's malloc the hunt ran ~40 % slower and two threads contended
//! (README, benchmark section). Why [`tune`]: mimalloc keeps freed pages for
//! a *purge delay* before returning them to the OS (10 ms in v2, 1,000 ms in
//! v3); a hunt frees its rule loading's and each work unit's memory in bursts,
//! and with the delay those pages overlap the next burst's. Purging at once
//! took peak RSS with all SigmaHQ rules (2 threads, warm rule cache) on the
//! bench corpora from 87 to 77 MB (EVTX) and 73 to 63 MB (JSON lines) at the
//! same CPU time (issue #22, target ≤ 64 MB).
//!
//! This is the workspace's only crate that may use `unsafe`, for the one
//! option write in [`tune`].
//!
//! ```
//! tracehunt_alloc::tune();
//! // A user's MIMALLOC_PURGE_DELAY wins over tune's 0.
//! if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
//!     assert_eq!(tracehunt_alloc::purge_delay_ms(), 0);
//! }
//! ```

/// The allocator type the binary installs with `#[global_allocator]`.
pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (v2 and v3 headers
/// alike: `include/mimalloc.h`, the 16th option); the Rust bindings leave it
/// out ("not exposed as constants for stability reasons").
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc return freed pages to the OS at once (purge delay 0 ms),
/// unless the environment sets `MIMALLOC_PURGE_DELAY` (then that value, which
/// mimalloc read at start-up, stays). Call it at the start of `main`, before
/// any thread is spawned: mimalloc's option writes are not thread-safe.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` stores an integer into mimalloc's option table;
    // it takes no pointers. It is not synchronised, hence the "before any
    // thread" contract above (the binary calls it first in `main`).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

/// mimalloc's current purge delay in milliseconds (`mi_option_get`): 10 by
/// default in v2, 0 after [`tune`], `-1` for never.
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: `mi_option_get` reads an integer from mimalloc's option table;
    // no pointers.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option index is mimalloc's purge delay: v2's default for it is
    /// 10 ms, and `tune` sets it to 0 (a wrong index would read another
    /// option's default and leave the purge delay alone).
    #[test]
    fn tune_sets_the_purge_delay_whose_v2_default_is_10_ms() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the environment decides; nothing of ours to check
        }
        assert_eq!(purge_delay_ms(), 10);
        tune();
        assert_eq!(purge_delay_ms(), 0);
    }
}
