//! Giving the memory of a zone build back: drafts freed off the serving path, and freed pages
//! returned to the system.

/// Hands freed memory back to the system. glibc keeps freed memory in the arena of the thread
/// that allocated it, and rebuilds run on whichever thread asked (watcher, admin request,
/// re-signing): without trimming, each rebuild of a big zone in another arena would keep the
/// old copy resident, and RSS would ratchet up reload by reload.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Frees `value` (a big zone's draft: hundreds of thousands of allocations) on a thread of
/// its own, then trims, so that the zone is served without waiting for it. When no thread
/// can be started it is freed here.
pub(crate) fn drop_later<T: Send + 'static>(value: T) {
    let spawned = std::thread::Builder::new()
        .name("zone-draft-free".into())
        .spawn(move || {
            drop(value);
            release_freed_memory();
        });
    if let Err(e) = spawned {
        tracing::debug!("zone draft freed in place: {e}");
    }
}
