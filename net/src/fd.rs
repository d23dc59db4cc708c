//! The descriptor budget: raise the soft `RLIMIT_NOFILE` to the hard limit at start, and give
//! each listener a share of it so that one flooded service cannot take the descriptors the others
//! (and the database, zone files and outbound connections) need.

/// Descriptors kept back for everything that is not an inbound connection (database pool,
/// outbound SMTP and DNS, files, inotify, log output): a quarter of the limit, at most this many.
const RESERVED: u64 = 256;

/// Raises the soft descriptor limit to the hard limit and returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; the soft limit does not exceed the hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    lim.rlim_cur
}

/// The connections each of `listeners` listeners may hold under a descriptor limit of `limit`
/// (each connection is one descriptor; TLS adds none).
pub fn descriptor_share(limit: u64, listeners: usize) -> usize {
    let usable = limit
        .saturating_sub(RESERVED.min(limit / 4))
        .max(listeners as u64);
    usize::try_from(usable / listeners.max(1) as u64).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_split_what_is_left_after_the_reserve() {
        assert_eq!(descriptor_share(1280, 8), 128);
        assert_eq!(descriptor_share(256, 4), 48);
        assert_eq!(descriptor_share(8, 16), 1);
        assert_eq!(descriptor_share(1_048_576, 1), 1_048_320);
        assert!(raise_fd_limit() >= 256);
    }
}
