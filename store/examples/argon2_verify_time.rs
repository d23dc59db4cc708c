//! Times one Argon2id verification with the parameters Postern stores passwords with
//! (`postern_store::password::{M_COST_KIB, T_COST, P_COST}`): the CPU an attacker's guess costs
//! the server. Run by `bench/argon2.sh` in a release build; prints min/median/max of 20.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use postern_store::password::{M_COST_KIB, P_COST, T_COST};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let parsed: PasswordHash = argon2.hash_password(b"correct horse")?;
    let mut ms = Vec::new();
    for _ in 0..20 {
        let t = std::time::Instant::now();
        argon2.verify_password(b"correct horse", &parsed)?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "Argon2id verify (m={M_COST_KIB} KiB, t={T_COST}, p={P_COST}): min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms[0],
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    );
    Ok(())
}
