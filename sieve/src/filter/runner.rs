//! The sans-I/O side of a filter run: drives `sieve-rs` for one script over one message and
//! turns its events into a [`Plan`], asking the caller ([`Question`]) for what needs the store.

use std::collections::HashMap;
use std::sync::Arc;

use postern_store::Flags;
use sieve::{Context, Envelope, Event, Input, Recipient, Runtime, Script, Sieve};

use super::plan::{imap_flags, AutoReply, Plan};
use super::FilterError;

/// Most instructions one script may run before it is stopped (sieve-rs counts each step; its
/// own default is 5000, real scripts run a few hundred); Pigeonhole bounds CPU time instead
/// (`sieve_max_cpu_time`).
pub const MAX_INSTRUCTIONS: usize = 20_000;
/// Most `redirect`s per message (Pigeonhole's `sieve_max_redirects` is 4).
pub const MAX_REDIRECTS: usize = 4;
/// Most messages (redirects plus replies) one run may send.
pub const MAX_OUT_MESSAGES: usize = 6;
/// Deepest `include` nesting (RFC 6609 §3.2 lets servers bound it).
pub const MAX_INCLUDE_DEPTH: usize = 3;
/// `vacation` period without `:days` (RFC 5230 §4.1 recommends 7 days).
pub const DEFAULT_VACATION_SECS: u64 = 7 * 86_400;

/// The sieve-rs runtime with Postern's limits; `hostname` names this server in reply Message-IDs.
pub fn runtime(hostname: &str) -> Runtime {
    let mut runtime = Runtime::new()
        .with_cpu_limit(MAX_INSTRUCTIONS)
        .with_max_redirects(MAX_REDIRECTS)
        .with_max_out_messages(MAX_OUT_MESSAGES)
        .with_max_nested_includes(MAX_INCLUDE_DEPTH)
        .with_default_vacation_expiry(DEFAULT_VACATION_SECS)
        .with_default_duplicate_expiry(DEFAULT_VACATION_SECS);
    runtime.set_local_hostname(hostname.to_owned());
    runtime
}

/// Something a run needs from the store before it can go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// `include :personal` (RFC 6609 §3.2): the user's script of that name, compiled.
    Include {
        /// The script name.
        name: String,
        /// `:optional`: a missing script is skipped instead of failing the run.
        optional: bool,
    },
    /// Whether a reply (vacation, RFC 5230 §4.2) or duplicate id was already recorded within
    /// `period_secs`; recording it now if not.
    Seen {
        /// The response key (sender plus `:handle`).
        id: String,
        /// The period.
        period_secs: i64,
    },
    /// Whether every one of these folders exists (`mailboxexists`, RFC 5490 §3.1).
    FoldersExist(Vec<String>),
}

/// The answer to a [`Question`].
pub enum Answer {
    /// The included script.
    Script(Arc<Sieve>),
    /// Yes / found.
    Yes,
    /// No / not found.
    No,
}

/// What one script decided.
#[derive(Debug, Default)]
pub struct ScriptOutcome {
    /// Explicit actions (fileinto, redirect, vacation, reject).
    pub plan: Plan,
    /// The flags of the kept copy, if the message is kept (implicitly or with `keep`).
    pub keep: Option<Flags>,
}

/// Where a [`Run`] is.
pub enum Step {
    /// It waits for the answer to this question.
    Ask(Question),
    /// The script finished.
    Done(ScriptOutcome),
}

/// One script running over one message for one user.
pub struct Run<'x> {
    ctx: Context<'x>,
    start: Option<Arc<Sieve>>,
    outcome: ScriptOutcome,
    created: HashMap<usize, Vec<u8>>,
    vacation_pending: bool,
    asked: Option<Question>,
    list_mail: bool,
}

/// The delivery a run filters: envelope (RFC 5228 §5.4) and the user's own address.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// MAIL FROM (empty for the null sender).
    pub sender: &'a str,
    /// The RCPT TO address that reached the user.
    pub recipient: &'a str,
    /// The user's address (vacation's own address, RFC 5230 §4.5).
    pub user: &'a str,
}

impl<'x> Run<'x> {
    /// Prepares `script` over `raw` for `delivery`; [`Run::step`] with `None` starts it.
    pub fn new(
        runtime: &'x Runtime,
        raw: &'x [u8],
        delivery: Delivery<'x>,
        script: Arc<Sieve>,
    ) -> Run<'x> {
        let ctx = runtime
            .filter(raw)
            .with_user_address(delivery.user)
            .with_envelope(Envelope::From, delivery.sender)
            .with_envelope(Envelope::To, delivery.recipient);
        let list_mail = is_list_mail(&ctx);
        Run {
            ctx,
            start: Some(script),
            outcome: ScriptOutcome::default(),
            created: HashMap::new(),
            vacation_pending: false,
            asked: None,
            list_mail,
        }
    }

    /// Runs until the script needs an answer or ends; `answer` answers the last question.
    pub fn step(&mut self, answer: Option<Answer>) -> Result<Step, FilterError> {
        let mut input = match (self.start.take(), answer, self.asked.take()) {
            (Some(script), _, _) => Input::Script {
                name: Script::Personal(String::new()),
                script,
            },
            (None, Some(Answer::Script(script)), Some(Question::Include { name, .. })) => {
                Input::Script {
                    name: Script::Personal(name),
                    script,
                }
            }
            (None, Some(Answer::Yes), _) => {
                // A reply already sent: the vacation action will not run.
                self.vacation_pending = false;
                Input::True
            }
            (None, _, _) => Input::False,
        };
        loop {
            match self.ctx.run(input) {
                None => return Ok(Step::Done(std::mem::take(&mut self.outcome))),
                Some(Err(sieve::runtime::RuntimeError::TooManyIncludes)) => {
                    return Err(FilterError::Runtime(format!(
                        "includes nested deeper than {MAX_INCLUDE_DEPTH}"
                    )))
                }
                Some(Err(e)) => return Err(FilterError::Runtime(e.to_string())),
                Some(Ok(event)) => match self.event(event)? {
                    Next::Ask(question) => {
                        self.asked = Some(question.clone());
                        return Ok(Step::Ask(question));
                    }
                    Next::Answer(answer) => input = answer,
                    // Input::False leaves the test result alone (sieve-rs XORs it in).
                    Next::Go => input = Input::False,
                },
            }
        }
    }

    /// Folds one event into the outcome, or turns it into a question.
    fn event(&mut self, event: Event) -> Result<Next, FilterError> {
        let plan = &mut self.outcome.plan;
        match event {
            Event::IncludeScript { name, optional } => match name {
                Script::Personal(name) => {
                    return Ok(Next::Ask(Question::Include { name, optional }))
                }
                Script::Global(name) => return Err(FilterError::GlobalInclude(name)),
            },
            Event::MailboxExists { mailboxes, .. } => {
                let names = mailboxes
                    .into_iter()
                    .map(|m| match m {
                        sieve::Mailbox::Name(n) | sieve::Mailbox::Id(n) => n,
                    })
                    .collect();
                return Ok(Next::Ask(Question::FoldersExist(names)));
            }
            Event::DuplicateId { id, expiry, .. } => {
                let vacation = id.starts_with("_v");
                if vacation && self.list_mail {
                    // RFC 5230 §5.4: no replies to list or bulk mail; answering "seen" skips it.
                    self.vacation_pending = false;
                    return Ok(Next::Answer(Input::True));
                }
                self.vacation_pending = vacation;
                return Ok(Next::Ask(Question::Seen {
                    id,
                    period_secs: i64::try_from(expiry).unwrap_or(i64::MAX),
                }));
            }
            Event::Keep { flags, .. } => self.outcome.keep = Some(imap_flags(&flags)),
            Event::Discard => self.outcome.keep = None,
            Event::FileInto {
                folder,
                flags,
                create,
                ..
            } => plan.add_copy(folder, imap_flags(&flags), create),
            Event::Reject { reason, .. } => {
                self.outcome.keep = None;
                plan.reject = Some(reason);
            }
            Event::CreatedMessage {
                message_id,
                message,
            } => {
                self.created.insert(message_id, message);
            }
            Event::SendMessage {
                recipient,
                message_id,
                ..
            } => {
                let vacation = std::mem::take(&mut self.vacation_pending);
                match (recipient, vacation) {
                    (Recipient::Address(to), true) => {
                        if let Some(message) = self.created.remove(&message_id) {
                            plan.replies.push(AutoReply { to, message });
                        }
                    }
                    (Recipient::Address(to), false) => plan.redirects.push(to),
                    (other, _) => {
                        tracing::info!(recipient = ?other, "sieve: list and group recipients are not supported");
                    }
                }
            }
            Event::Notify { method, .. } => {
                tracing::info!(method, "sieve: notify (RFC 5435) is not supported");
            }
            Event::ListContains { .. } | Event::SetEnvelope { .. } | Event::Function { .. } => {}
        }
        Ok(Next::Go)
    }
}

/// What the run loop does after an event.
enum Next {
    /// Go on.
    Go,
    /// Ask the caller.
    Ask(Question),
    /// Go on with this input (a question answered without the store).
    Answer(Input),
}

/// Mail from a list or sent in bulk (RFC 5230 §5.4, RFC 2369 `List-*`, RFC 2919 `List-Id`,
/// `Precedence: bulk/list/junk`), which vacation never answers; sieve-rs checks only some of these.
fn is_list_mail(ctx: &Context<'_>) -> bool {
    ctx.message().parts.first().is_some_and(|part| {
        part.headers.iter().any(|h| {
            let name = h.name.as_str();
            let value = h.value.as_text().unwrap_or_default().trim();
            name.to_ascii_lowercase().starts_with("list-")
                || (name.eq_ignore_ascii_case("precedence")
                    && ["bulk", "list", "junk"]
                        .iter()
                        .any(|p| value.eq_ignore_ascii_case(p)))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVERY: Delivery<'static> = Delivery {
        sender: "carol@remote.test",
        recipient: "alice+lists@example.test",
        user: "alice@example.test",
    };

    fn run_to_end(script: &str, raw: &[u8]) -> Result<ScriptOutcome, FilterError> {
        run_seen(script, raw, false)
    }

    /// Runs `script`, answering vacation's question with `seen`.
    fn run_seen(script: &str, raw: &[u8], seen: bool) -> Result<ScriptOutcome, FilterError> {
        let runtime = runtime("mx.example.test");
        let script = Arc::new(crate::compile(script).unwrap());
        let mut run = Run::new(&runtime, raw, DELIVERY, script);
        let mut answer = None;
        loop {
            match run.step(answer.take())? {
                Step::Done(outcome) => return Ok(outcome),
                Step::Ask(Question::Seen { .. }) => {
                    answer = Some(if seen { Answer::Yes } else { Answer::No })
                }
                Step::Ask(q) => panic!("unexpected {q:?}"),
            }
        }
    }

    #[test]
    fn fileinto_with_flags_and_subaddress() {
        let out = run_to_end(
            "require [\"fileinto\", \"imap4flags\", \"subaddress\", \"envelope\", \"variables\"];\n\
             if envelope :detail \"to\" \"lists\" { set \"f\" \"Lists\"; addflag \"\\\\Seen $Work\"; fileinto \"${f}\"; }",
            b"Subject: hi\r\n\r\nbody\r\n",
        )
        .unwrap();
        assert!(out.keep.is_none());
        let copy = &out.plan.copies[0];
        assert_eq!(copy.folder, "Lists");
        assert_eq!(copy.flags.system, Flags::SEEN);
        assert!(copy.flags.keywords.contains("$Work"));
    }

    #[test]
    fn vacation_skips_list_mail() {
        let script = "require \"vacation\"; vacation :days 1 \"away\";";
        let to_me =
            b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nx\r\n";
        let out = run_to_end(script, to_me).unwrap();
        assert_eq!(out.plan.replies.len(), 1);
        assert_eq!(out.plan.replies[0].to, "carol@remote.test");
        assert!(out.keep.is_some());
        let list = b"From: carol@remote.test\r\nTo: alice@example.test\r\nPrecedence: list\r\nSubject: hi\r\n\r\nx\r\n";
        assert!(run_to_end(script, list).unwrap().plan.replies.is_empty());
    }

    #[test]
    fn redirect_after_an_answered_vacation_is_a_redirect() {
        let script = "require \"vacation\"; vacation \"away\"; redirect \"r@remote.test\";";
        let raw = b"From: carol@remote.test\r\nTo: alice@example.test\r\n\r\nx\r\n";
        let out = run_seen(script, raw, true).unwrap();
        assert!(out.plan.replies.is_empty());
        assert_eq!(out.plan.redirects, ["r@remote.test"]);
        let out = run_seen(script, raw, false).unwrap();
        assert_eq!(out.plan.replies.len(), 1);
        assert_eq!(out.plan.redirects, ["r@remote.test"]);
    }

    #[test]
    fn redirects_are_capped_and_ereject_cancels_keep() {
        let script: String = (0..10)
            .map(|i| format!("redirect \"r{i}@remote.test\";\n"))
            .collect();
        let out = run_to_end(&script, b"Subject: x\r\n\r\nx\r\n").unwrap();
        assert_eq!(out.plan.redirects.len(), MAX_REDIRECTS);
        assert!(out.keep.is_none());
        let out = run_to_end(
            "require \"ereject\"; ereject \"go away\";",
            b"Subject: x\r\n\r\nx\r\n",
        )
        .unwrap();
        assert_eq!(out.plan.reject.as_deref(), Some("go away"));
        assert!(out.keep.is_none());
    }

    #[test]
    fn runaway_script_hits_the_cpu_limit() {
        let script = "if true { }\n".repeat(MAX_INSTRUCTIONS);
        let err = run_to_end(&script, b"Subject: x\r\n\r\nx\r\n").unwrap_err();
        assert!(
            err.to_string().contains("maximum number of instructions"),
            "{err}"
        );
    }
}
