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

/// Caps glibc's malloc arenas at one per core (its default is eight per core). A zone build
/// allocates on the threads it starts (grouping, digest, encoding, freeing), and each new thread
/// may take an arena of its own: the served zone's blocks then lie scattered over many arenas,
/// between holes that `malloc_trim` cannot give back, and resident memory crept up by about
/// 1 MiB per reload of a 100,000-record zone (21 to 28 MiB over eight reloads). With one arena per
/// core it stays flat. Call it at start, before the zones are loaded.
pub fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only tunes the allocator; arenas already made stay in use.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
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
