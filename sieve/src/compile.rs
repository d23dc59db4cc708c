//! One place that turns script text into a compiled [`sieve::Sieve`], with Postern's limits.

use postern_store::MAX_SIEVE_SCRIPT_BYTES as MAX_SCRIPT_BYTES;
use sieve::{Compiler, Sieve};

/// Why a script does not compile, in words for the script's author (ManageSieve sends it as the
/// human-readable text of `NO`, RFC 5804 §2.6).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(String);

/// Compiles `script` (RFC 5228 text) with every extension `sieve-rs` implements.
pub fn compile(script: &str) -> Result<Sieve, CompileError> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(CompileError(format!(
            "script is larger than {MAX_SCRIPT_BYTES} bytes"
        )));
    }
    let compiler = Compiler::new().with_max_script_size(MAX_SCRIPT_BYTES);
    compiler
        .compile(script.as_bytes())
        .map_err(|e| CompileError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_scripts() {
        compile(
            "require \"fileinto\"; if header :contains \"subject\" \"x\" { fileinto \"Junk\"; }",
        )
        .unwrap();
        let err = compile("if true { fileinto \"x\"; }").unwrap_err();
        assert!(!err.to_string().is_empty());
        assert!(compile(&"#".repeat(MAX_SCRIPT_BYTES + 1)).is_err());
    }
}
