//! One command's way through the session: changes noted, the command dispatched to its handler
//! in `commands`, then its outcome turned into the reply with the selected mailbox's pending
//! updates (RFC 3501 §7.4.1, §5.2).

use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::response::{CommandContinuationRequest, Data, Response, StatusKind};
use imap_codec::imap_types::IntoStatic;

use super::{bad, no, ChangeFeed, Done, Extras, Failure, Next, Outcome, Reply, Session};
use crate::commands::AppendData;
use crate::mail_store::MailStore;
use crate::response::{bye, code_other, data, tagged};

impl<S: MailStore> Session<S> {
    /// Handles one command.
    pub async fn command(&mut self, cmd: Command<'_>, feed: &mut dyn ChangeFeed) -> Reply {
        self.command_with(cmd, Extras::default(), feed).await
    }

    /// Handles one command; `extras` carries what imap-codec does not parse.
    pub async fn command_with(
        &mut self,
        cmd: Command<'_>,
        extras: Extras,
        feed: &mut dyn ChangeFeed,
    ) -> Reply {
        self.start_command(feed);
        let tag = cmd.tag;
        let allow_expunge = !matches!(
            &cmd.body,
            CommandBody::Fetch { uid: false, .. }
                | CommandBody::Store { uid: false, .. }
                | CommandBody::Search { uid: false, .. }
        );
        let saves = extras.search_return.as_ref().is_some_and(|r| r.save);
        if let Some(sel) = self.selected.as_mut() {
            sel.use_saved = extras.saved_set;
        }
        let outcome = self.dispatch(cmd.body, extras).await;
        if let Some(sel) = self.selected.as_mut() {
            sel.use_saved = false;
            if saves && outcome.is_err() {
                // A failed SEARCH ... RETURN (SAVE) leaves `$` empty (RFC 5182 §2.1).
                sel.saved.clear();
            }
        }
        self.finish(tag, allow_expunge, outcome, feed).await
    }

    /// What every command does first: take note of changes other sessions made meanwhile, and
    /// of the view it starts from.
    pub(crate) fn start_command(&mut self, feed: &mut dyn ChangeFeed) {
        self.take_changes(feed);
        self.note_context_view();
    }

    /// Turns a command's outcome into its reply: untagged data, pending updates of the selected
    /// mailbox (EXPUNGE only if `allow_expunge`, RFC 3501 §7.4.1), then the tagged status.
    pub(crate) async fn finish(
        &mut self,
        tag: Tag<'_>,
        allow_expunge: bool,
        outcome: Outcome,
        feed: &mut dyn ChangeFeed,
    ) -> Reply {
        let mut raw = Vec::new();
        let (mut responses, status, next) = match outcome {
            Ok(done) => {
                let next = done.next;
                raw = done.raw;
                let status = if matches!(next, Next::Authenticate | Next::Idle | Next::Fetch) {
                    None
                } else {
                    Some(tagged(&tag, StatusKind::Ok, done.code, done.text))
                };
                (done.untagged, status, next)
            }
            Err(Failure::No(code, msg)) => (
                Vec::new(),
                Some(tagged(&tag, StatusKind::No, code, &msg)),
                Next::Continue,
            ),
            Err(Failure::Bad(msg)) => (
                Vec::new(),
                Some(tagged(&tag, StatusKind::Bad, None, &msg)),
                Next::Continue,
            ),
            Err(Failure::Store(e)) => {
                tracing::error!(error = %e, "imap command failed in the store");
                (
                    Vec::new(),
                    Some(tagged(
                        &tag,
                        StatusKind::No,
                        Some(code_other("SERVERBUG")),
                        "Internal error",
                    )),
                    Next::Continue,
                )
            }
        };
        if next != Next::Fetch {
            // A streamed FETCH sends them with its first batch.
            responses.splice(0..0, std::mem::take(&mut self.notices));
        }
        if matches!(next, Next::Continue | Next::Idle | Next::Compress) {
            self.take_changes(feed);
            responses.extend(self.updates(allow_expunge).await);
            if let Some(encoded) = self.context_updates(&mut responses).await {
                raw.extend(encoded);
            }
            let notified = self.notify_updates().await;
            if !notified.is_empty() {
                // After the untagged responses, before the tagged status.
                raw.extend(crate::response::encode_all(&std::mem::take(&mut responses)));
                raw.extend(notified);
            }
        }
        match next {
            Next::Idle => responses.push(Response::CommandContinuationRequest(
                CommandContinuationRequest::basic(None, "idling")
                    .unwrap_or_else(|_| CommandContinuationRequest::base64(Vec::new())),
            )),
            Next::Authenticate => {
                responses.push(self.challenge());
            }
            _ => {}
        }
        if matches!(next, Next::Idle | Next::Authenticate | Next::Fetch) {
            self.pending = Some(tag.into_static());
        }
        responses.extend(status);
        Reply {
            raw,
            responses,
            next,
        }
    }

    /// Pending updates of the selected mailbox, if a change was noticed.
    pub(super) async fn updates(&mut self, allow_expunge: bool) -> Vec<Response<'static>> {
        let condstore = self.condstore;
        let Some(sel) = self.selected.as_mut() else {
            return Vec::new();
        };
        if !sel.dirty {
            return Vec::new();
        }
        let last_uid = sel.messages.last().map_or(0, |m| m.uid);
        match sel.refresh(&self.store, allow_expunge, condstore).await {
            Ok(r) => {
                // New messages wait to be fetched if NOTIFY asks for it (RFC 5465 §5.2).
                let fetch = self.notify.as_ref().and_then(|n| n.new_message_fetch());
                if fetch.is_some() && sel.messages.last().is_some_and(|m| m.uid > last_uid) {
                    let from = sel
                        .notify_fetch_from
                        .map_or(last_uid + 1, |f| f.min(last_uid + 1));
                    sel.notify_fetch_from = Some(from);
                }
                r
            }
            Err(e) => {
                tracing::warn!(error = %e, "refreshing the selected mailbox failed");
                Vec::new()
            }
        }
    }

    /// NOOP, CHECK and IDLE look at the selected mailbox itself (RFC 3501 §6.1.2: NOOP is the
    /// client's poll), so a change another session has committed is reported even when its
    /// notification (a PostgreSQL NOTIFY from another connection or node) has not arrived yet.
    async fn poll_selected(&mut self) -> Result<(), Failure> {
        if let Some(sel) = self.selected.as_mut() {
            sel.poll(&self.store).await?;
        }
        Ok(())
    }

    async fn dispatch(&mut self, body: CommandBody<'_>, extras: Extras) -> Outcome {
        use CommandBody as C;
        match body {
            C::Capability => Ok(Done::ok("Capabilities listed")
                .with(vec![data(Data::Capability(self.capabilities()))])),
            C::Noop | C::Check => {
                self.poll_selected().await?;
                Ok(Done::ok("Done"))
            }
            C::Logout => {
                self.deselect();
                let mut done = Done::ok("Bye").with(vec![bye("Logging out")]);
                done.next = Next::Logout;
                Ok(done)
            }
            C::StartTLS => {
                if self.tls {
                    return Err(bad("TLS is already active"));
                }
                if self.user.is_some() {
                    return Err(bad("Already authenticated"));
                }
                let mut done = Done::ok("Begin TLS negotiation now");
                done.next = Next::StartTls;
                Ok(done)
            }
            C::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                self.login(&user, &pass).await
            }
            C::Authenticate {
                mechanism,
                initial_response,
            } => {
                let initial = initial_response.map(|ir| ir.declassify().to_vec());
                self.authenticate(mechanism.as_ref(), initial).await
            }
            C::Id { .. } => Ok(Done::ok("ID completed").with(vec![data(Data::Id {
                parameters: Some(vec![(
                    crate::response::istring("name"),
                    crate::response::nstring(Some("Postern")),
                )]),
            })])),
            C::Enable { capabilities } => self.enable(capabilities),
            C::Idle => {
                self.require_user()?;
                self.poll_selected().await?;
                let mut done = Done::ok("");
                done.next = Next::Idle;
                Ok(done)
            }
            C::Namespace => self.namespace(),
            C::List {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&reference, &mailbox_wildcard, extras.list, false)
                    .await
            }
            C::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&reference, &mailbox_wildcard, extras.list, true)
                    .await
            }
            C::Create { mailbox } => self.create(&mailbox).await,
            C::Delete { mailbox } => self.delete(&mailbox).await,
            C::Rename { from, to } => self.rename(&from, &to).await,
            C::Subscribe { mailbox } => self.subscribe(&mailbox, true).await,
            C::Unsubscribe { mailbox } => self.subscribe(&mailbox, false).await,
            C::Status {
                mailbox,
                item_names,
            } => self.status(&mailbox, &item_names).await,
            C::Select {
                mailbox,
                parameters,
            } => self.select(&mailbox, false, &parameters).await,
            C::Examine {
                mailbox,
                parameters,
            } => self.select(&mailbox, true, &parameters).await,
            C::Unselect => {
                self.require_selected()?;
                self.deselect();
                Ok(Done::ok("Unselected"))
            }
            C::Close => self.close().await,
            C::Expunge => self.expunge(None).await,
            C::ExpungeUid { sequence_set } => self.expunge(Some(&sequence_set)).await,
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let raw = match &message {
                    LiteralOrLiteral8::Literal(l) => l.data(),
                    LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
                };
                self.append(&mailbox, &flags, date.as_ref(), AppendData::Literal(raw))
                    .await
            }
            C::Search {
                charset,
                criteria,
                uid,
            } => {
                self.search(
                    charset.as_ref(),
                    criteria.as_ref(),
                    uid,
                    extras.search_return,
                )
                .await
            }
            C::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                self.sort(
                    sort_criteria.as_ref(),
                    &charset,
                    search_criteria.as_ref(),
                    uid,
                    extras.search_return,
                )
                .await
            }
            C::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                self.thread(&algorithm, &charset, search_criteria.as_ref(), uid)
                    .await
            }
            C::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(&sequence_set, macro_or_item_names, uid, &modifiers)
                    .await
            }
            C::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                self.store_flags(&sequence_set, kind, response, &flags, uid, &modifiers)
                    .await
            }
            C::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&sequence_set, &mailbox, uid, false).await,
            C::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&sequence_set, &mailbox, uid, true).await,
            C::Compress { .. } => self.compress(),
            C::GetQuota { root } => self.get_quota(&root).await,
            C::GetQuotaRoot { mailbox } => self.get_quota_root(&mailbox).await,
            C::SetQuota { .. } => Err(no("Quotas are set by the administrator")),
            other => Err(bad(&format!("{} is not supported", other.name()))),
        }
    }
}
