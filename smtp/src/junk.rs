//! The learning junk filter at delivery: each local recipient's own statistics (trained from
//! their IMAP moves and `$Junk`/`$NotJunk` keywords, see `postern_store::junk`) score the message;
//! at or above the threshold that user's copy goes to Junk with the `$Junk` keyword. The stored
//! message is shared by all recipients, so the verdict is per copy (folder and keyword), not a
//! header. Accounts with too little training keep the DMARC/SPF verdict alone.

use std::collections::BTreeMap;

use postern_store::{JunkTraining, LocalCopy, Store, Tokens};
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

/// Applies each user's own statistics to the copies of an MX message bound for INBOX (what the
/// user's Sieve script kept there, or the implicit keep): at or above the threshold such a copy
/// goes to Junk with [`JUNK_KEYWORD`] instead. Copies a script filed elsewhere stay where they
/// are. Each user is scored once; scoring failures leave the copy in INBOX. The message is
/// tokenized (parsed again) only once a recipient turns out to have enough training, which most
/// accounts and most messages never need; `trained` holds how much the users' statistics were
/// trained where that was read already (with their filters), the others' is read here.
pub(crate) async fn classify(
    store: &Store,
    config: &JunkConfig,
    message: &[u8],
    copies: &mut [LocalCopy],
    trained: &BTreeMap<i64, JunkTraining>,
) {
    let inbox = |c: &LocalCopy| c.folder.eq_ignore_ascii_case("INBOX");
    if !config.enabled || !copies.iter().any(inbox) {
        return;
    }
    let mut tokens = None;
    let min = JunkTraining {
        spam: config.min_spam,
        ham: config.min_ham,
    };
    let mut verdicts: std::collections::BTreeMap<i64, bool> = Default::default();
    for copy in copies.iter_mut().filter(|c| inbox(c)) {
        let user_id = copy.user_id;
        let junk = match verdicts.get(&user_id) {
            Some(&junk) => junk,
            None => {
                let known = trained.get(&user_id).copied();
                let junk = score(store, config, message, &mut tokens, min, user_id, known).await;
                verdicts.insert(user_id, junk);
                junk
            }
        };
        if junk {
            metrics::counter!("postern_smtp_bayes_junk_total").increment(1);
            copy.folder = "Junk".to_owned();
            copy.flags.keywords.insert(JUNK_KEYWORD.to_owned());
        }
    }
}

/// Whether `user_id`'s statistics put the message at or above the threshold; `tokens` are those of
/// `message`, made here if still `None` and the user's statistics are to be used; `known` is how
/// much they were trained, if read already.
async fn score(
    store: &Store,
    config: &JunkConfig,
    message: &[u8],
    tokens: &mut Option<Tokens>,
    min: JunkTraining,
    user_id: i64,
    known: Option<JunkTraining>,
) -> bool {
    let training = match known {
        Some(t) => Ok(t),
        None => store.junk_training(user_id).await,
    };
    let trained = match training {
        Ok(t) => t.suffices(min),
        Err(e) => {
            tracing::error!(user_id, error = %e, "junk scoring failed");
            false
        }
    };
    if !trained {
        return false;
    }
    let tokens = tokens.get_or_insert_with(|| Tokens::of(message));
    let score = match store.junk_probability(user_id, tokens, min).await {
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
    junk
}
