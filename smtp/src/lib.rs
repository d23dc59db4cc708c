//! Replaced by the smtp implementation.
