//! Argon2id password hashing (RFC 9106) with explicit parameters. Hashing is CPU- and memory-heavy
//! by design ([`M_COST_KIB`] per hash), so it runs on the blocking pool, never on the async workers,
//! and at most one hash per CPU core runs at a time: a flood of logins then queues instead of
//! multiplying memory and starving other work. Verifications of attempts from addresses with
//! failures (see [`crate::login`]) may hold at most half of the permits, so guesses from
//! addresses that already failed cannot fill the pool in front of other logins. Hashes imported
//! from other systems ([`legacy`]) verify in the same place and are replaced at the next login.

mod legacy;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::error::{Result, StoreError};

/// Longest password accepted; longer input is refused before hashing so it cannot cost CPU.
pub(crate) const MAX_PASSWORD_LEN: usize = 1024;

/// Argon2 memory cost in KiB: 19 MiB, the OWASP Password Storage Cheat Sheet's minimum for
/// Argon2id with `t = 2`, `p = 1`.
pub const M_COST_KIB: u32 = 19 * 1024;
/// Argon2 iterations.
pub const T_COST: u32 = 2;
/// Argon2 lanes.
pub const P_COST: u32 = 1;

/// The parameters every new hash uses; stored hashes with others are upgraded at the next
/// successful login.
const PARAMS: Params = match Params::new(M_COST_KIB, T_COST, P_COST, None) {
    Ok(p) => p,
    Err(_) => panic!("invalid Argon2 parameters"),
};

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

/// Which lane of the hashing pool a computation waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Hashes and verifications of attempts from clean or known-good addresses.
    Normal,
    /// Verifications of attempts from addresses with failures: at most half of the permits.
    Suspect,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Permits for concurrent hashes: one per core.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(cores()))
}

/// Permits a suspect verification must hold besides a hashing permit: half the cores, at least one.
fn suspect_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new((cores() / 2).max(1)))
}

/// Runs one Argon2 computation on the blocking pool once a permit of `lane` is free.
async fn run_limited<T: Send + 'static>(
    lane: Lane,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let _suspect = match lane {
        Lane::Suspect => Some(suspect_permits().acquire().await.ok()?),
        Lane::Normal => None,
    };
    let _permit = hashing_permits().acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
}

/// Hashes `password` with Argon2id ([`M_COST_KIB`], [`T_COST`], [`P_COST`], random salt) into a
/// PHC string.
pub(crate) async fn hash(password: &str) -> Result<String> {
    check_len(password)?;
    let password = password.to_owned();
    run_limited(Lane::Normal, move || {
        let hash: PasswordHash = argon2()
            .hash_password(password.as_bytes())
            .map_err(|_| StoreError::PasswordHash)?;
        Ok(hash.to_string())
    })
    .await
    .ok_or(StoreError::PasswordHash)?
}

/// The result of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The password matched a real stored hash.
    pub ok: bool,
    /// Argon2 actually ran (false for an over-long password or a pool that shut down).
    pub ran: bool,
}

/// Checks `password` against a stored hash: an Argon2 PHC string, or one of the [`legacy`]
/// schemes; a hash of an unknown scheme fails (and its scheme is logged). With `stored = None`
/// it verifies against a fixed dummy hash, so that a login for an unknown account costs the same
/// time as one for a real account.
pub(crate) async fn verify(password: &str, stored: Option<String>, lane: Lane) -> Verified {
    if password.len() > MAX_PASSWORD_LEN {
        return Verified {
            ok: false,
            ran: false,
        };
    }
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let password = password.to_owned();
    let result = run_limited(lane, move || {
        if let Some(ok) = legacy::verify(&password, &stored) {
            return ok;
        }
        match PasswordHash::new(&stored) {
            Ok(h) if h.algorithm.as_str().starts_with("argon2") => {
                argon2().verify_password(password.as_bytes(), &h).is_ok()
            }
            _ => {
                let scheme = legacy::scheme_name(&stored);
                tracing::warn!(scheme, "stored password hash of an unknown scheme");
                false
            }
        }
    })
    .await;
    Verified {
        ok: result.unwrap_or(false) && known,
        ran: result.is_some(),
    }
}

/// Whether a stored hash was made with another algorithm, version or parameters than new hashes
/// use, and should be replaced after the next successful login.
pub(crate) fn needs_rehash(stored: &str) -> bool {
    let Ok(h) = PasswordHash::new(stored) else {
        return true;
    };
    let Ok(p) = Params::try_from(&h) else {
        return true;
    };
    h.algorithm.as_str() != Algorithm::Argon2id.ident().as_str()
        || h.version != Some(Version::V0x13.into())
        || p.m_cost() != M_COST_KIB
        || p.t_cost() != T_COST
        || p.p_cost() != P_COST
        || p.output_len()
            .is_some_and(|n| n != Params::DEFAULT_OUTPUT_LEN)
}

/// Whether `stored` is a hash [`verify`] can check: an Argon2 PHC string or a [`legacy`] one.
pub fn is_stored_hash(stored: &str) -> bool {
    legacy::is_legacy_hash(stored)
        || PasswordHash::new(stored).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

fn check_len(password: &str) -> Result<()> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(StoreError::invalid(
            "password",
            format!("must be 1 to {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Argon2id hash of a random string nobody knows, with the current parameters.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Xbl6Ab7ZiBKsFE2gq4oiqUmL5y8EnwPHjMUqsQ6oAhk";

/// Hashes `password` with other Argon2id costs (memory `m_cost` KiB, `t_cost` iterations), as an
/// older release or another system would have; for tests of the upgrade on login.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn hash_with_costs(password: &str, m_cost: u32, t_cost: u32) -> Result<String> {
    let params = Params::new(m_cost, t_cost, 1, None).map_err(|_| StoreError::PasswordHash)?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| StoreError::PasswordHash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(!needs_rehash(&h));
        assert!(!needs_rehash(DUMMY_HASH));
        let ok = verify("correct horse", Some(h.clone()), Lane::Normal).await;
        assert!(ok.ok && ok.ran);
        assert!(!verify("wrong", Some(h), Lane::Suspect).await.ok);
        let unknown = verify("anything", None, Lane::Normal).await;
        assert!(
            !unknown.ok && unknown.ran,
            "unknown accounts cost a verification too"
        );
        let long = verify(&"x".repeat(MAX_PASSWORD_LEN + 1), None, Lane::Normal).await;
        assert!(!long.ok && !long.ran);
        assert!(hash("").await.is_err());
    }

    #[tokio::test]
    async fn legacy_hashes_verify_and_are_replaced() {
        let mailu =
            "$bcrypt-sha256$v=2,t=2b,r=4$8bZ9M7pu1r4nPO6bHjYAku$7YWtj4VOCzud0B7KDbcVNk7Tl9y4SQu";
        let ok = verify("correct horse", Some(mailu.to_owned()), Lane::Normal).await;
        assert!(ok.ok && ok.ran);
        assert!(
            !verify("wrong", Some(mailu.to_owned()), Lane::Normal)
                .await
                .ok
        );
        assert!(needs_rehash(mailu));
        let unknown = Some("{SSHA}c2VjcmV0c2FsdA==".to_owned());
        assert!(!verify("x", unknown, Lane::Normal).await.ok);
        let md5 = "{MD5-CRYPT}$1$fsfe6i4t$rFPdgkRV9joppDK/9V9.Z.";
        assert!(
            verify("secret", Some(md5.to_owned()), Lane::Normal)
                .await
                .ok
        );
        assert!(needs_rehash(md5));
        assert!(is_stored_hash(mailu) && is_stored_hash(DUMMY_HASH) && is_stored_hash(md5));
        assert!(!is_stored_hash("{PLAIN}secret") && !is_stored_hash("abJnggxhB/yWI"));
    }

    #[tokio::test]
    async fn old_parameters_are_recognised() {
        let old = hash_with_costs("pw", 4096, 1).unwrap();
        assert!(needs_rehash(&old));
        assert!(
            verify("pw", Some(old), Lane::Normal).await.ok,
            "still verifies"
        );
        assert!(needs_rehash(
            "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
        assert!(needs_rehash("not a hash"));
    }
}
