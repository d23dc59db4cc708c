//! NOTIFY (RFC 5465): the client names mailboxes (selected, inboxes, personal, subscribed,
//! subtree, mailboxes) and events; changes to those mailboxes reach it as they happen, from the
//! store's change bus like IDLE's: untagged STATUS for mailboxes other than the selected one
//! (§5.2-§5.3, with the items Dovecot sends), LIST for created, deleted and renamed mailboxes
//! (MailboxName, §5.4; a rename with OLDNAME) and for subscription changes (SubscriptionChange, §5.5), and the selected
//! mailbox's own updates without waiting for a command when `selected` is named, each new
//! message fetched with MessageNew's fetch attributes if the client gave them (§5.2, sent by
//! [`Session::notify_fetch_batch`]). Events Postern
//! has no source for (annotations, metadata) are refused with `NO [BADEVENT]` (§3.1). What one
//! session registers is bounded ([`MAX_GROUPS`], [`MAX_NAMES`]); changes wait in a set keyed by
//! mailbox, so their number is bounded by the user's mailboxes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use imap_codec::imap_types::fetch::MessageDataItemName;
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::status::StatusDataItemName;
use postern_store::{Change, MailboxEvent};

use super::list::delimiter;
use crate::ext_command::{Filter, NotifySet};
use crate::mail_store::MailStore;
use crate::response::{atom, code_other, data, encode_all, quoted};
use crate::session::{Done, Failure, Outcome, Session};

/// Most event groups one NOTIFY SET may carry.
pub(crate) const MAX_GROUPS: usize = 20;

/// Most mailbox names one NOTIFY SET may carry (over all `subtree` and `mailboxes` filters).
pub(crate) const MAX_NAMES: usize = 100;

/// The events Postern can report (RFC 5465 §5), in BADEVENT's list.
const SUPPORTED: [&str; 5] = [
    "MessageNew",
    "MessageExpunge",
    "FlagChange",
    "MailboxName",
    "SubscriptionChange",
];

/// Which events a group asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Events {
    new: bool,
    expunge: bool,
    flags: bool,
    name: bool,
    subscription: bool,
}

impl Events {
    fn of(names: &[String]) -> Result<Events, Failure> {
        let mut e = Events::default();
        for n in names {
            match n.as_str() {
                "MESSAGENEW" => e.new = true,
                "MESSAGEEXPUNGE" => e.expunge = true,
                "FLAGCHANGE" => e.flags = true,
                "MAILBOXNAME" => e.name = true,
                "SUBSCRIPTIONCHANGE" => e.subscription = true,
                _ => {
                    return Err(Failure::No(
                        Some(code_other(&format!("BADEVENT ({})", SUPPORTED.join(" ")))),
                        "Unsupported event".into(),
                    ))
                }
            }
        }
        Ok(e)
    }

    fn any(&self) -> bool {
        *self != Events::default()
    }

    /// The STATUS items reported for these events (Dovecot's choice for §5.2-§5.3): MESSAGES
    /// for expunges, MESSAGES UIDNEXT UIDVALIDITY for new mail, UIDVALIDITY HIGHESTMODSEQ for
    /// flag changes.
    fn status_items(&self) -> Vec<StatusDataItemName> {
        let mut items = Vec::new();
        if self.new || self.expunge {
            items.push(StatusDataItemName::Messages);
        }
        if self.new {
            items.push(StatusDataItemName::UidNext);
        }
        if self.new || self.flags {
            items.push(StatusDataItemName::UidValidity);
        }
        if self.flags {
            items.push(StatusDataItemName::HighestModSeq);
        }
        items
    }

    fn union(self, o: Events) -> Events {
        Events {
            new: self.new || o.new,
            expunge: self.expunge || o.expunge,
            flags: self.flags || o.flags,
            name: self.name || o.name,
            subscription: self.subscription || o.subscription,
        }
    }
}

/// Which mailboxes a group covers, names decoded.
#[derive(Debug)]
enum Scope {
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

/// A session's NOTIFY registration and what has happened since it last reported.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    groups: Vec<(Scope, Events)>,
    /// The `selected` group's events and whether it is `selected-delayed`.
    selected: Option<(Events, bool)>,
    /// The `selected` group's MessageNew fetch attributes (RFC 5465 §5.2): each new message of
    /// the selected mailbox is fetched with them after its EXISTS.
    fetch: Option<Vec<MessageDataItemName<'static>>>,
    /// Changes not reported yet, by mailbox id.
    pending: BTreeMap<i64, BTreeSet<u8>>,
    /// The subscription list changed.
    subscriptions_changed: bool,
    /// The user's mailboxes by id, to name deleted and renamed ones.
    names: HashMap<i64, String>,
    /// The user's subscriptions as last reported.
    subscribed: BTreeSet<String>,
    /// Each mailbox's STATUS as last sent (encoded): a change noticed late (a PostgreSQL NOTIFY
    /// arriving after the registration's STATUS already counted it) adds nothing, so an
    /// identical STATUS is not sent again.
    reported: HashMap<i64, Vec<u8>>,
}

impl Notify {
    /// `status`, encoded, unless it is what was last sent for `mailbox_id`.
    fn news(&mut self, mailbox_id: i64, status: Response<'static>) -> Option<Vec<u8>> {
        let line = encode_all(&[status]);
        if self.reported.get(&mailbox_id) == Some(&line) {
            return None;
        }
        self.reported.insert(mailbox_id, line.clone());
        Some(line)
    }
}

impl Notify {
    /// The union of the events of the groups covering `name`.
    fn events_for(&self, name: &str) -> Events {
        self.groups
            .iter()
            .filter(|(scope, _)| match scope {
                Scope::Inboxes => name == "INBOX",
                Scope::Personal => true,
                Scope::Subscribed => self.subscribed.contains(name),
                Scope::Subtree(roots) => roots.iter().any(|r| {
                    name == r
                        || name
                            .strip_prefix(r.as_str())
                            .is_some_and(|s| s.starts_with('/'))
                }),
                Scope::Mailboxes(names) => names.iter().any(|n| n == name),
            })
            .fold(Events::default(), |a, (_, e)| a.union(*e))
    }

    /// Whether anything waits to be reported.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.subscriptions_changed
    }

    /// Whether the selected mailbox's updates go out as they happen, and if expunges wait for a
    /// command (`selected-delayed`).
    pub(crate) fn pushes_selected(&self) -> Option<bool> {
        self.selected
            .filter(|(e, _)| e.any())
            .map(|(_, delayed)| delayed)
    }

    /// The fetch attributes new messages of the selected mailbox are fetched with, if any.
    pub(crate) fn new_message_fetch(&self) -> Option<&[MessageDataItemName<'static>]> {
        self.fetch.as_deref()
    }
}

fn event_code(e: MailboxEvent) -> u8 {
    match e {
        MailboxEvent::Appended => 0,
        MailboxEvent::Flags => 1,
        MailboxEvent::Expunged => 2,
        MailboxEvent::Renamed => 3,
    }
}

impl<S: MailStore> Session<S> {
    /// NOTIFY SET / NOTIFY NONE (RFC 5465 §3).
    pub(crate) async fn notify(&mut self, set: Option<NotifySet>) -> Outcome {
        let user_id = self.require_user()?.id;
        let Some(set) = set else {
            self.notify = None;
            return Ok(Done::ok("NOTIFY completed"));
        };
        let names: usize = set
            .groups
            .iter()
            .map(|g| match &g.filter {
                Filter::Subtree(n) | Filter::Mailboxes(n) => n.len(),
                _ => 0,
            })
            .sum();
        if set.groups.len() > MAX_GROUPS || names > MAX_NAMES {
            return Err(Failure::No(
                Some(code_other("LIMIT")),
                format!("NOTIFY takes at most {MAX_GROUPS} groups and {MAX_NAMES} mailbox names"),
            ));
        }
        let mut notify = Notify::default();
        for g in &set.groups {
            let events = Events::of(&g.events)?;
            let decode = |list: &[Vec<u8>]| -> Result<Vec<String>, Failure> {
                list.iter()
                    .map(|n| {
                        let wire = WireMailbox::try_from(n.clone())
                            .map_err(|_| crate::session::bad("Invalid mailbox name"))?;
                        self.mailbox_name(&wire)
                    })
                    .collect()
            };
            let scope = match &g.filter {
                Filter::Selected { delayed } => {
                    if notify.selected.is_some() {
                        return Err(crate::session::bad("selected is named twice"));
                    }
                    notify.selected = Some((events, *delayed));
                    notify.fetch = g.fetch.clone();
                    continue;
                }
                Filter::Inboxes => Scope::Inboxes,
                Filter::Personal => Scope::Personal,
                Filter::Subscribed => Scope::Subscribed,
                Filter::Subtree(n) => Scope::Subtree(decode(n)?),
                Filter::Mailboxes(n) => Scope::Mailboxes(decode(n)?),
            };
            notify.groups.push((scope, events));
        }
        let mailboxes = self.store.list_mailboxes(user_id).await?;
        notify.subscribed = self.store.subscriptions(user_id).await?;
        notify.names = mailboxes.iter().map(|m| (m.id, m.name.clone())).collect();
        let mut out = Vec::new();
        if set.status {
            let selected = self.selected.as_ref().map(|s| s.mailbox.id);
            for m in mailboxes.iter().filter(|m| Some(m.id) != selected) {
                let items = notify.events_for(&m.name).status_items();
                if !items.is_empty() {
                    let status = self.status_response(m, &items).await?;
                    out.extend(notify.news(m.id, status).unwrap_or_default());
                }
            }
        }
        self.notify = Some(notify);
        Ok(Done::ok("NOTIFY completed").raw(out))
    }

    async fn status_response(
        &mut self,
        m: &postern_store::Mailbox,
        items: &[StatusDataItemName],
    ) -> Result<Response<'static>, Failure> {
        // Unlike a STATUS command (RFC 7162 §3.1), NOTIFY's HIGHESTMODSEQ does not turn
        // CONDSTORE on.
        let condstore = self.condstore;
        let items = self.status_items(m, items).await;
        self.condstore = condstore;
        let items = items?;
        Ok(data(Data::Status {
            mailbox: self.wire_name(&m.name),
            items: items.into(),
        }))
    }

    /// Takes note of a change for NOTIFY: one to another of the user's mailboxes, or to the
    /// subscriptions, waits to be reported.
    pub(crate) fn note_notify(&mut self, change: &Change) {
        let (Some(n), Some(user)) = (self.notify.as_mut(), self.user.as_ref()) else {
            return;
        };
        let selected = self.selected.as_ref().map(|s| s.mailbox.id);
        match change {
            Change::Mailbox {
                user_id,
                mailbox_id,
                event,
                ..
            } if *user_id == user.id
                && (Some(*mailbox_id) != selected || *event == MailboxEvent::Renamed) =>
            {
                n.pending
                    .entry(*mailbox_id)
                    .or_default()
                    .insert(event_code(*event));
            }
            Change::Subscriptions { user_id } if *user_id == user.id => {
                n.subscriptions_changed = true;
            }
            _ => {}
        }
    }

    /// The untagged STATUS and LIST responses for what NOTIFY reports since the last call,
    /// encoded.
    pub(crate) async fn notify_updates(&mut self) -> Vec<u8> {
        let Some(mut n) = self.notify.take() else {
            return Vec::new();
        };
        let out = match self.notify_report(&mut n).await {
            Ok(out) => out,
            Err(_) => {
                tracing::warn!("NOTIFY updates failed in the store");
                Vec::new()
            }
        };
        self.notify = Some(n);
        out
    }

    async fn notify_report(&mut self, n: &mut Notify) -> Result<Vec<u8>, Failure> {
        let user_id = self.require_user()?.id;
        let mut out = Vec::new();
        for (id, events) in std::mem::take(&mut n.pending) {
            let now = self.store.mailbox_by_id(user_id, id).await?;
            if events.contains(&event_code(MailboxEvent::Renamed)) {
                let old = n.names.remove(&id);
                if let Some(m) = &now {
                    n.names.insert(id, m.name.clone());
                }
                let new_name = now.as_ref().map(|m| m.name.clone());
                let old = old.filter(|o| n.events_for(o).name);
                match (old, new_name.filter(|m| n.events_for(m).name)) {
                    (Some(old), None) => {
                        let gone = FlagNameAttribute::from(atom("NonExistent"));
                        out.extend(encode_all(&[self.list_response(&old, vec![gone])]));
                    }
                    (None, Some(new)) => {
                        out.extend(encode_all(&[self.list_response(&new, Vec::new())]));
                    }
                    (Some(old), Some(new)) if old != new => {
                        // RFC 5465 §5.4: a rename is the new name's LIST with OLDNAME, extended
                        // data imap-codec's LIST lacks.
                        let mut line = encode_all(&[self.list_response(&new, Vec::new())]);
                        line.truncate(line.len().saturating_sub(2));
                        let old_text = match self.wire_name(&old) {
                            WireMailbox::Inbox => "INBOX".to_owned(),
                            WireMailbox::Other(o) => {
                                String::from_utf8_lossy(o.inner().as_ref()).into_owned()
                            }
                        };
                        line.extend(
                            format!(" (\"OLDNAME\" ({}))\r\n", quoted(&old_text)).into_bytes(),
                        );
                        out.extend(line);
                    }
                    _ => {}
                }
                continue;
            }
            let Some(m) = now else { continue };
            let wanted = n.events_for(&m.name);
            let happened = Events {
                new: events.contains(&event_code(MailboxEvent::Appended)) && wanted.new,
                expunge: events.contains(&event_code(MailboxEvent::Expunged)) && wanted.expunge,
                flags: events.contains(&event_code(MailboxEvent::Flags)) && wanted.flags,
                ..Events::default()
            };
            let items = happened.status_items();
            if !items.is_empty() {
                let status = self.status_response(&m, &items).await?;
                out.extend(n.news(m.id, status).unwrap_or_default());
            }
        }
        if std::mem::take(&mut n.subscriptions_changed) {
            let now = self.store.subscriptions(user_id).await?;
            let before = std::mem::replace(&mut n.subscribed, now);
            // A name that left the subscriptions is still covered by a `subscribed` group.
            let by_subscribed = n
                .groups
                .iter()
                .any(|(s, e)| matches!(s, Scope::Subscribed) && e.subscription);
            for name in before.symmetric_difference(&n.subscribed) {
                let covered =
                    n.events_for(name).subscription || (by_subscribed && before.contains(name));
                if !covered {
                    continue;
                }
                let attrs = if n.subscribed.contains(name) {
                    vec![FlagNameAttribute::from(crate::response::atom("Subscribed"))]
                } else {
                    Vec::new()
                };
                out.extend(encode_all(&[self.list_response(name, attrs)]));
            }
        }
        Ok(out)
    }

    fn list_response(
        &self,
        name: &str,
        items: Vec<FlagNameAttribute<'static>>,
    ) -> Response<'static> {
        data(Data::List {
            items,
            delimiter: delimiter(),
            mailbox: self.wire_name(name),
        })
    }
}

#[cfg(test)]
mod tests {
    use imap_codec::imap_types::status::StatusDataItem;

    use crate::ext_command::ExtCommand;

    use super::*;

    fn status(messages: u32) -> Response<'static> {
        data(Data::Status {
            mailbox: WireMailbox::try_from("Other").expect("valid name"),
            items: vec![StatusDataItem::Messages(messages)].into(),
        })
    }

    #[test]
    fn an_unchanged_status_is_not_sent_twice() {
        let mut n = Notify::default();
        let first = n.news(7, status(1)).expect("first STATUS is sent");
        assert_eq!(first, b"* STATUS Other (MESSAGES 1)\r\n");
        assert_eq!(n.news(7, status(1)), None, "the same STATUS again");
        assert!(n.news(8, status(1)).is_some(), "another mailbox's STATUS");
        assert!(n.news(7, status(2)).is_some(), "a changed STATUS");
        assert!(n.news(7, status(1)).is_some(), "back to an earlier value");
    }

    #[test]
    fn message_new_fetch_attributes() {
        let groups = |cmd: &str| match crate::ext_command::parse(format!("t {cmd}\r\n").as_bytes())
        {
            Some(Ok((_, ExtCommand::Notify(Some(set))))) => Ok(set.groups),
            Some(Err(why)) => Err(why),
            other => panic!("{cmd}: {other:?}"),
        };
        let g = groups(
            "NOTIFY SET (selected-delayed (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From \"Subject\")]<0.100> \
FLAGS BODY[]) MessageExpunge))",
        )
        .expect("valid attributes");
        let fetch = g[0].fetch.as_ref().expect("kept");
        assert_eq!(fetch.len(), 4);
        assert_eq!(fetch[0], MessageDataItemName::Uid);
        assert!(matches!(
            &fetch[1],
            MessageDataItemName::BodyExt {
                peek: true,
                partial: Some((0, _)),
                ..
            }
        ));
        assert_eq!(fetch[2], MessageDataItemName::Flags);
        assert!(matches!(
            &fetch[3],
            MessageDataItemName::BodyExt { peek: false, .. }
        ));
        // A literal inside the list is read as FETCH reads it.
        let g = groups(
            "NOTIFY SET (selected (MessageNew (BODY.PEEK[HEADER.FIELDS ({7}\r\nSubject)])))",
        )
        .expect("a literal");
        assert!(g[0].fetch.is_some());
        for bad in [
            // Not fetch-att: macros, unknown items, an empty list, a FETCH modifier.
            "NOTIFY SET (selected (MessageNew (ALL)))",
            "NOTIFY SET (selected (MessageNew (FAST UID)))",
            "NOTIFY SET (selected (MessageNew (BOGUS)))",
            "NOTIFY SET (selected (MessageNew ()))",
            "NOTIFY SET (selected (MessageNew (BODY[HEADER.FIELDS ()])))",
            "NOTIFY SET (selected (MessageNew (UID) (CHANGEDSINCE 1)))",
            "NOTIFY SET (selected (MessageNew (UID) (FLAGS)))",
            "NOTIFY SET (selected (MessageNew (UID)\r\n t2 NOOP))",
            // Only the selected mailbox's new messages are fetched (RFC 5465 §5.2).
            "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
            "NOTIFY SET (mailboxes INBOX (MessageNew (UID)))",
            // A list after another event.
            "NOTIFY SET (selected (MessageExpunge (UID)))",
            "NOTIFY SET (selected ((UID) MessageNew))",
        ] {
            assert!(groups(bad).is_err(), "{bad}");
        }
    }
}
