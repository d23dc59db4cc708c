//! Backup and restore of a whole store (`postern backup DIR`, `postern restore DIR`): a
//! consistent snapshot taken while the server runs, written as typed JSON rows per table plus
//! message bytes once per SHA-256, with dump levels for incremental blob copies; restored into an
//! empty store on either backend (the way to move from SQLite to PostgreSQL).

mod dump;
mod manifest;
mod restore;
mod schema;
mod value;
mod verify;

pub use dump::BackupSummary;
pub use restore::RestoreReport;
pub use schema::{coverage, Coverage, DROPPED, RESTORES_FROM, TABLES};
pub use verify::{verify, VerifyReport};

use crate::db::Store;
use crate::error::Result;

impl Store {
    /// The tables of this store's schema that backup does not know (not in [`TABLES`]); backup
    /// and restore refuse to run while there are any.
    pub async fn tables_not_covered_by_backup(&self) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let uncovered = schema::uncovered(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(uncovered)
    }
}
