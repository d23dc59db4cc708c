//! Sieve (RFC 5228) for Postern: compiling users' scripts with Stalwart's `sieve-rs`
//! interpreter (AGPL-3.0-only, compatible with Postern's AGPL-3.0-or-later), shared by the
//! ManageSieve server's CHECKSCRIPT/PUTSCRIPT, the account page and delivery ([`filter`]).

mod account;
mod compile;
mod extensions;
pub mod filter;
pub mod managesieve;

pub use account::{account_script, account_script_for, VACATION_DAYS};
pub use compile::{compile, CompileError};
pub use extensions::extensions;
