//! Sieve at local delivery (RFC 5228): runs a user's scripts over an incoming message and
//! returns the [`Plan`] (folders and flags, redirects, vacation replies, reject). The interpreter
//! loop is sans-I/O ([`runner`]); this module is the thin shell that answers its questions
//! (`include`, vacation's reply log, `mailboxexists`) from the store.

mod plan;
mod runner;

use std::sync::Arc;

use postern_store::{DeliveryFilters, Store, StoreError};

pub use plan::{imap_flags, AutoReply, FolderCopy, Plan};
pub use runner::Delivery;
use runner::{Answer, Question, Run, Step};

/// Why a filter run failed; delivery then keeps the message in INBOX (a bad script never loses
/// mail).
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// A script does not compile.
    #[error("script {name:?} does not compile: {error}")]
    Compile {
        /// The script's name.
        name: String,
        /// The compiler's message.
        error: String,
    },
    /// The interpreter stopped (CPU limit, too many includes, ...).
    #[error("script failed: {0}")]
    Runtime(String),
    /// `include` of a personal script that does not exist, without `:optional` (RFC 6609 §3.2).
    #[error("included script {0:?} does not exist")]
    MissingInclude(String),
    /// `include :global`: Postern keeps no global scripts.
    #[error("include :global {0:?}: there are no global scripts")]
    GlobalInclude(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One script to run, by name (for logs and `include` caching) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterScript {
    /// The script's name.
    pub name: String,
    /// Its Sieve text.
    pub content: String,
}

/// The scripts to run at delivery for a user whose [`DeliveryFilters`] are `filters`, in order:
/// the one generated from the account's vacation and forwarding settings (like Pigeonhole's
/// `sieve_before`), then the user's active script, if any.
pub fn scripts_of(filters: &DeliveryFilters) -> Vec<FilterScript> {
    let account = crate::account_script(&filters.settings).map(|content| FilterScript {
        name: ACCOUNT_SCRIPT.to_owned(),
        content,
    });
    let active = filters.script.as_ref().map(|s| FilterScript {
        name: s.name.clone(),
        content: s.content.clone(),
    });
    account.into_iter().chain(active).collect()
}

/// The name the account settings' generated script runs under (in logs and errors).
pub const ACCOUNT_SCRIPT: &str = "account settings";

/// Runs `scripts` in order over `raw` for user `user_id`. The message is kept in INBOX only if
/// no script cancelled the implicit keep (RFC 5228 §2.10.2); explicit actions of all scripts add
/// up. Folders named by `fileinto :create` exist when this returns.
pub async fn filter(
    store: &Store,
    hostname: &str,
    user_id: i64,
    delivery: Delivery<'_>,
    raw: &[u8],
    scripts: &[FilterScript],
) -> Result<Plan, FilterError> {
    let runtime = runner::runtime(hostname);
    let mut plan = Plan::default();
    let mut keep = Some(postern_store::Flags::default());
    for script in scripts {
        let compiled = compile_named(&script.name, &script.content)?;
        let mut run = Run::new(&runtime, raw, delivery, compiled);
        let mut answer = None;
        let outcome = loop {
            match run.step(answer.take())? {
                Step::Done(outcome) => break outcome,
                Step::Ask(question) => answer = Some(self::answer(store, user_id, question).await?),
            }
        };
        keep = match (keep, outcome.keep) {
            (Some(_), Some(flags)) => Some(flags),
            _ => None,
        };
        plan.copies.extend(outcome.plan.copies);
        plan.redirects.extend(outcome.plan.redirects);
        plan.replies.extend(outcome.plan.replies);
        plan.reject = plan.reject.or(outcome.plan.reject);
    }
    if let Some(flags) = keep {
        if plan.reject.is_none() {
            plan.copies.insert(
                0,
                FolderCopy {
                    folder: "INBOX".into(),
                    flags,
                    create: false,
                },
            );
        }
    }
    for copy in plan.copies.iter().filter(|c| c.create) {
        if store.mailbox(user_id, &copy.folder).await?.is_none() {
            match store.create_mailbox_path(user_id, &copy.folder).await {
                Ok(_) | Err(StoreError::Exists(_)) => {}
                Err(e) => {
                    tracing::warn!(folder = copy.folder, error = %e, "fileinto :create failed; the copy goes to INBOX")
                }
            }
        }
    }
    Ok(plan)
}

fn compile_named(name: &str, content: &str) -> Result<Arc<sieve::Sieve>, FilterError> {
    crate::compile(content)
        .map(Arc::new)
        .map_err(|e| FilterError::Compile {
            name: name.to_owned(),
            error: e.to_string(),
        })
}

/// Answers a run's question from the store.
async fn answer(store: &Store, user_id: i64, question: Question) -> Result<Answer, FilterError> {
    Ok(match question {
        Question::Include { name, optional } => match store.sieve_script(user_id, &name).await? {
            Some(script) => Answer::Script(compile_named(&name, &script.content)?),
            None if optional => Answer::No,
            None => return Err(FilterError::MissingInclude(name)),
        },
        Question::Seen { id, period_secs } => {
            if store
                .record_vacation_reply(user_id, &id, period_secs)
                .await?
            {
                Answer::No
            } else {
                Answer::Yes
            }
        }
        Question::FoldersExist(names) => {
            for name in names {
                if store.mailbox(user_id, &name).await?.is_none() {
                    return Ok(Answer::No);
                }
            }
            Answer::Yes
        }
    })
}
