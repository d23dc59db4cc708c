//! Session tests without sockets: commands are parsed from bytes and the encoded responses
//! checked. `unit` runs them over the in-memory [`mock::MockStore`] (no database, no password
//! hash, a fixed clock); `store` over the real store, for what depends on it.

mod mock;
mod store;
mod unit;
