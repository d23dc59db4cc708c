//! Argon2id password hashing. Hashing is CPU- and memory-heavy by design (19 MiB per hash), so it
//! runs on the blocking pool, never on the async workers, and at most one hash per CPU core runs at
//! a time: a flood of logins then queues instead of multiplying memory and starving other work.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::error::{Result, StoreError};

/// Longest password accepted; longer input is refused before hashing so it cannot cost CPU.
pub(crate) const MAX_PASSWORD_LEN: usize = 1024;

/// Permits for concurrent hashes: one per core.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

/// Runs one Argon2 computation on the blocking pool once a permit is free.
async fn run_limited<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _permit = hashing_permits().acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
}

/// Hashes `password` with Argon2id (default parameters, random salt) into a PHC string.
pub(crate) async fn hash(password: &str) -> Result<String> {
    check_len(password)?;
    let password = password.to_owned();
    run_limited(move || {
        let hash: PasswordHash = Argon2::default()
            .hash_password(password.as_bytes())
            .map_err(|_| StoreError::PasswordHash)?;
        Ok(hash.to_string())
    })
    .await
    .ok_or(StoreError::PasswordHash)?
}

/// Checks `password` against a stored PHC string. With `stored = None` it verifies against a fixed
/// dummy hash, so that a login for an unknown account costs the same time as one for a real account.
pub(crate) async fn verify(password: &str, stored: Option<String>) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let password = password.to_owned();
    let ok = run_limited(move || {
        PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    ok && known
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

/// Argon2id hash of a random string nobody knows, with the default parameters.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Xbl6Ab7ZiBKsFE2gq4oiqUmL5y8EnwPHjMUqsQ6oAhk";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(h.clone())).await);
        assert!(!verify("wrong", Some(h)).await);
        assert!(!verify("anything", None).await);
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(hash("").await.is_err());
    }
}
