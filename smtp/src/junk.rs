//! The learning junk filter at delivery: each local recipient's own statistics (trained from
//! their IMAP moves and `$Junk`/`$NotJunk` keywords, see `postern_store::junk`) score the message;
//! at or above the threshold that user's copy goes to Junk with the `$Junk` keyword. The stored
//! message is shared by all recipients, so the verdict is per copy (folder and keyword), not a
//! header. Accounts with too little training keep the DMARC/SPF verdict alone.

use postern_store::{Flags, JunkTraining, LocalCopy, Store, Tokens};
use serde::Deserialize;

/// The keyword a copy judged junk gets (IANA IMAP keyword registry, RFC 5788).
pub const JUNK_KEYWORD: &str = "$Junk";

/// The `[smtp.junk]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JunkConfig {
    /// Score MX mail with the recipients' statistics.
    pub enabled: bool,
    /// Spam probability (0 to 1) from which a copy is filed into Junk.
    pub threshold: f64,
    /// Spam messages an account must have trained before its statistics are used.
    pub min_spam: i64,
    /// Ham messages an account must have trained before its statistics are used.
    pub min_ham: i64,
}

impl Default for JunkConfig {
    fn default() -> Self {
        JunkConfig {
            enabled: true,
            threshold: 0.95,
            min_spam: 50,
            min_ham: 50,
        }
    }
}

/// The copies of an MX message for `users`: into `folder` (Junk when DMARC or the virus scan
/// already said so), else each into Junk with [`JUNK_KEYWORD`] when that user's statistics score
/// it at or above the threshold, or INBOX. Scoring failures deliver to INBOX.
pub(crate) async fn local_copies(
    store: &Store,
    config: &JunkConfig,
    message: &[u8],
    users: &[i64],
    folder: &str,
) -> Vec<LocalCopy> {
    if !config.enabled || folder != "INBOX" || users.is_empty() {
        return LocalCopy::all(users, folder);
    }
    let tokens = Tokens::of(message);
    let min = JunkTraining {
        spam: config.min_spam,
        ham: config.min_ham,
    };
    let mut copies = Vec::with_capacity(users.len());
    for &user_id in users {
        let score = match store.junk_probability(user_id, &tokens, min).await {
            Ok(score) => score,
            Err(e) => {
                tracing::error!(user_id, error = %e, "junk scoring failed");
                None
            }
        };
        let junk = score.is_some_and(|p| p >= config.threshold);
        if let Some(p) = score {
            tracing::info!(
                user_id,
                score = format!("{p:.3}"),
                junk,
                "junk filter score"
            );
        }
        let mut copy = LocalCopy::new(user_id, if junk { "Junk" } else { folder });
        if junk {
            metrics::counter!("postern_smtp_bayes_junk_total").increment(1);
            copy.flags = Flags {
                system: 0,
                keywords: [JUNK_KEYWORD.to_owned()].into(),
            };
        }
        copies.push(copy);
    }
    copies
}
