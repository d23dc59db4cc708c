//! How many domains, users, aliases and queue entries there are, for the dashboard and the
//! queue gauges of `/metrics`: counted by the database, not by loading every row.

use crate::db::{get, Store};
use crate::error::Result;

/// Sizes of the main tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Hosted mail domains.
    pub domains: i64,
    /// Mail users.
    pub users: i64,
    /// Aliases.
    pub aliases: i64,
    /// The outbound queue by state.
    pub queue: QueueCounts,
}

/// Outbound queue entries by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueCounts {
    /// Not tried yet (or in their first attempt).
    pub new: i64,
    /// Tried at least once and waiting for a retry (or in a later attempt).
    pub deferred: i64,
}

impl QueueCounts {
    /// Every queue entry.
    pub fn total(&self) -> i64 {
        self.new + self.deferred
    }
}

impl Store {
    /// Counts domains, users, aliases and queue entries in one round trip.
    pub async fn counts(&self) -> Result<Counts> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM domains) AS domains, \
                    (SELECT COUNT(*) FROM users) AS users, \
                    (SELECT COUNT(*) FROM aliases) AS aliases, \
                    (SELECT COUNT(*) FROM queue WHERE attempts = 0) AS queue_new, \
                    (SELECT COUNT(*) FROM queue WHERE attempts > 0) AS queue_deferred",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            domains: get(&row, "domains")?,
            users: get(&row, "users")?,
            aliases: get(&row, "aliases")?,
            queue: QueueCounts {
                new: get(&row, "queue_new")?,
                deferred: get(&row, "queue_deferred")?,
            },
        })
    }
}
