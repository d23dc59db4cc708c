//! An in-memory [`MailStore`] for session unit tests: users with clear-text passwords, a login
//! limiter that refuses after a few failures, mailboxes with UIDs, flags, MODSEQs and `\Recent`
//! claims, and the [`Change`]s each write would publish, for the test to pass to the session.
//! It keeps the store's rules only as far as the tests need them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use postern_store::{
    normalize_address, Change, FlagOp, Flags, JunkClass, LoginAttempt, LoginOutcome, Mailbox,
    MailboxEvent, MessageDetails, MessageMeta, NewMessage, ParsedMessage, Result, Service, Spool,
    StoreError, TextKey, User,
};

use crate::mail_store::MailStore;
use crate::session::ChangeFeed;

/// Failed logins after which [`MockStore::login`] answers `Throttled`.
pub const FAILURES_BEFORE_THROTTLE: usize = 3;

/// A message as the mock holds it.
#[derive(Clone)]
struct Message {
    meta: MessageMeta,
    raw: Vec<u8>,
}

#[derive(Default)]
struct State {
    users: Vec<(User, String)>,
    failures: usize,
    /// Every login attempt seen: service, client and name.
    attempts: Vec<(Service, std::net::IpAddr, String)>,
    mailboxes: Vec<Mailbox>,
    messages: HashMap<i64, Vec<Message>>,
    recent_uid: HashMap<i64, i64>,
    subscriptions: BTreeSet<(i64, String)>,
    published: Vec<Change>,
    next_id: i64,
}

/// The in-memory store; clones share it.
#[derive(Clone, Default)]
pub struct MockStore(Arc<Mutex<State>>);

impl MockStore {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a user with an INBOX; its id.
    pub fn add_user(&self, address: &str, password: &str) -> i64 {
        let mut s = self.state();
        s.next_id += 1;
        let id = s.next_id;
        let user = User {
            id,
            address: normalize_address(address).unwrap(),
            quota_bytes: 0,
            used_bytes: 0,
            disabled: false,
        };
        s.users.push((user, password.to_owned()));
        drop(s);
        self.add_mailbox(id, "INBOX");
        id
    }

    /// Adds a mailbox; it.
    pub fn add_mailbox(&self, user_id: i64, name: &str) -> Mailbox {
        let mut s = self.state();
        s.next_id += 1;
        let mailbox = Mailbox {
            id: s.next_id,
            user_id,
            name: name.to_owned(),
            special_use: None,
            subscribed: false,
            uidvalidity: 1000 + s.next_id,
            uidnext: 1,
            highestmodseq: 1,
        };
        s.mailboxes.push(mailbox.clone());
        s.recent_uid.insert(mailbox.id, 1);
        mailbox
    }

    /// The user's mailbox `name` as stored now.
    pub fn get(&self, user_id: i64, name: &str) -> Mailbox {
        self.state()
            .mailboxes
            .iter()
            .find(|m| m.user_id == user_id && m.name == name)
            .cloned()
            .unwrap()
    }

    /// The changes published since the last call.
    pub fn take_published(&self) -> Vec<Change> {
        std::mem::take(&mut self.state().published)
    }

    /// The login attempts seen so far.
    pub fn attempts(&self) -> Vec<(Service, std::net::IpAddr, String)> {
        self.state().attempts.clone()
    }

    /// The stored messages of a mailbox.
    pub fn metas(&self, mailbox_id: i64) -> Vec<MessageMeta> {
        self.state()
            .messages
            .get(&mailbox_id)
            .map(|v| v.iter().map(|m| m.meta.clone()).collect())
            .unwrap_or_default()
    }
}

impl State {
    fn mailbox_mut(&mut self, id: i64) -> Result<&mut Mailbox> {
        self.mailboxes
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
    }

    /// A new MODSEQ for `mailbox` and the change it publishes.
    fn bump(&mut self, mailbox: i64, event: MailboxEvent) -> Result<i64> {
        let m = self.mailbox_mut(mailbox)?;
        m.highestmodseq += 1;
        let (user_id, modseq) = (m.user_id, m.highestmodseq);
        self.published.push(Change::Mailbox {
            user_id,
            mailbox_id: mailbox,
            modseq,
            event,
        });
        Ok(modseq)
    }

    fn append(&mut self, mailbox: i64, raw: &[u8], flags: &Flags, date: i64) -> Result<i64> {
        let modseq = self.bump(mailbox, MailboxEvent::Appended)?;
        let m = self.mailbox_mut(mailbox)?;
        let uid = m.uidnext;
        m.uidnext += 1;
        self.messages.entry(mailbox).or_default().push(Message {
            meta: MessageMeta {
                uid,
                size: raw.len() as i64,
                internal_date: date,
                flags: flags.clone(),
                modseq,
            },
            raw: raw.to_vec(),
        });
        Ok(uid)
    }

    fn messages(&self, mailbox: i64, uids: &[i64]) -> Vec<Message> {
        self.messages
            .get(&mailbox)
            .map(|v| {
                v.iter()
                    .filter(|m| uids.contains(&m.meta.uid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn copy(&mut self, from: i64, uids: &[i64], to: i64, remove: bool) -> Result<Vec<(i64, i64)>> {
        let mut pairs = Vec::new();
        for m in self.messages(from, uids) {
            let new = self.append(to, &m.raw, &m.meta.flags, m.meta.internal_date)?;
            pairs.push((m.meta.uid, new));
        }
        if remove && !pairs.is_empty() {
            let moved: Vec<i64> = pairs.iter().map(|p| p.0).collect();
            self.messages
                .entry(from)
                .or_default()
                .retain(|m| !moved.contains(&m.meta.uid));
            self.bump(from, MailboxEvent::Expunged)?;
        }
        Ok(pairs)
    }
}

fn header_block(raw: &[u8]) -> Vec<u8> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    raw[..end].to_vec()
}

impl MailStore for MockStore {
    fn login(&self, attempt: LoginAttempt<'_>) -> impl Future<Output = LoginOutcome<User>> + Send {
        let mut s = self.state();
        s.attempts
            .push((attempt.service, attempt.client, attempt.username.to_owned()));
        let outcome =
            if s.failures >= FAILURES_BEFORE_THROTTLE {
                LoginOutcome::Throttled {
                    retry_after: Duration::from_secs(60),
                }
            } else {
                match s.users.iter().find(|(u, p)| {
                    u.address.to_string() == attempt.username && p == attempt.password
                }) {
                    Some((u, _)) => LoginOutcome::Success(u.clone()),
                    None => {
                        s.failures += 1;
                        LoginOutcome::Failed
                    }
                }
            };
        std::future::ready(outcome)
    }

    async fn user(&self, address: &str) -> Result<Option<User>> {
        Ok(self
            .state()
            .users
            .iter()
            .find(|(u, _)| u.address.to_string() == address)
            .map(|(u, _)| u.clone()))
    }

    async fn mailbox(&self, user_id: i64, name: &str) -> Result<Option<Mailbox>> {
        Ok(self
            .state()
            .mailboxes
            .iter()
            .find(|m| m.user_id == user_id && m.name == name)
            .cloned())
    }

    async fn mailbox_by_id(&self, user_id: i64, id: i64) -> Result<Option<Mailbox>> {
        Ok(self
            .state()
            .mailboxes
            .iter()
            .find(|m| m.user_id == user_id && m.id == id)
            .cloned())
    }

    async fn list_mailboxes(&self, user_id: i64) -> Result<Vec<Mailbox>> {
        let mut boxes: Vec<Mailbox> = self
            .state()
            .mailboxes
            .iter()
            .filter(|m| m.user_id == user_id)
            .cloned()
            .collect();
        boxes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(boxes)
    }

    async fn create_mailbox_path(&self, user_id: i64, name: &str) -> Result<Mailbox> {
        if self.mailbox(user_id, name).await?.is_some() {
            return Err(StoreError::Exists(name.to_owned()));
        }
        Ok(self.add_mailbox(user_id, name))
    }

    async fn delete_mailbox(&self, mailbox: &Mailbox) -> Result<()> {
        let mut s = self.state();
        s.mailboxes.retain(|m| m.id != mailbox.id);
        s.messages.remove(&mailbox.id);
        Ok(())
    }

    async fn rename_mailbox(&self, user_id: i64, from: &str, to: &str) -> Result<Mailbox> {
        let mut s = self.state();
        let m = s
            .mailboxes
            .iter_mut()
            .find(|m| m.user_id == user_id && m.name == from)
            .ok_or_else(|| StoreError::NotFound(from.to_owned()))?;
        to.clone_into(&mut m.name);
        Ok(m.clone())
    }

    async fn subscriptions(&self, user_id: i64) -> Result<BTreeSet<String>> {
        Ok(self
            .state()
            .subscriptions
            .iter()
            .filter(|(u, _)| *u == user_id)
            .map(|(_, n)| n.clone())
            .collect())
    }

    async fn set_subscription(&self, user_id: i64, name: &str, on: bool) -> Result<bool> {
        let mut s = self.state();
        let key = (user_id, name.to_owned());
        let was = s.subscriptions.contains(&key);
        if on {
            s.subscriptions.insert(key);
        } else {
            s.subscriptions.remove(&key);
        }
        Ok(was)
    }

    async fn list_messages(&self, mailbox: &Mailbox) -> Result<Vec<MessageMeta>> {
        Ok(self.metas(mailbox.id))
    }

    async fn claim_recent(&self, mailbox: &Mailbox) -> Result<Range<i64>> {
        let mut s = self.state();
        let next = s.mailbox_mut(mailbox.id)?.uidnext;
        let first = s.recent_uid.insert(mailbox.id, next).unwrap_or(1);
        Ok(first..next)
    }

    async fn first_recent_uid(&self, mailbox: &Mailbox) -> Result<i64> {
        Ok(self
            .state()
            .recent_uid
            .get(&mailbox.id)
            .copied()
            .unwrap_or(1))
    }

    async fn recent_count(&self, mailbox: &Mailbox) -> Result<i64> {
        let first = self.first_recent_uid(mailbox).await?;
        Ok(self
            .metas(mailbox.id)
            .iter()
            .filter(|m| m.uid >= first)
            .count() as i64)
    }

    async fn set_flags(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        op: FlagOp,
        flags: &Flags,
    ) -> Result<Vec<MessageMeta>> {
        let mut s = self.state();
        let modseq = s.mailbox_mut(mailbox.id)?.highestmodseq + 1;
        let mut changed = Vec::new();
        for m in s.messages.entry(mailbox.id).or_default() {
            if !uids.contains(&m.meta.uid) {
                continue;
            }
            let new = m.meta.flags.apply(op, flags);
            if new != m.meta.flags {
                m.meta.flags = new;
                m.meta.modseq = modseq;
                changed.push(m.meta.clone());
            }
        }
        if !changed.is_empty() {
            s.bump(mailbox.id, MailboxEvent::Flags)?;
        }
        Ok(changed)
    }

    async fn expunge(&self, mailbox: &Mailbox, uids: Option<&[i64]>) -> Result<Vec<i64>> {
        let mut s = self.state();
        let list = s.messages.entry(mailbox.id).or_default();
        let gone: Vec<i64> = list
            .iter()
            .filter(|m| m.meta.flags.system & Flags::DELETED != 0)
            .filter(|m| uids.is_none_or(|u| u.contains(&m.meta.uid)))
            .map(|m| m.meta.uid)
            .collect();
        list.retain(|m| !gone.contains(&m.meta.uid));
        if !gone.is_empty() {
            s.bump(mailbox.id, MailboxEvent::Expunged)?;
        }
        Ok(gone)
    }

    async fn copy_messages(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
    ) -> Result<Vec<(i64, i64)>> {
        self.state().copy(from.id, uids, to.id, false)
    }

    async fn move_messages(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
    ) -> Result<Vec<(i64, i64)>> {
        self.state().copy(from.id, uids, to.id, true)
    }

    async fn append(
        &self,
        mailbox: &Mailbox,
        raw: &[u8],
        flags: &Flags,
        internal_date: i64,
    ) -> Result<i64> {
        self.state().append(mailbox.id, raw, flags, internal_date)
    }

    async fn append_spooled(
        &self,
        _mailbox: &Mailbox,
        _spool: Spool,
        _flags: &Flags,
        _internal_date: i64,
    ) -> Result<i64> {
        Err(StoreError::Invalid {
            what: "message",
            reason: "the mock store takes no spool files".into(),
        })
    }

    async fn append_all(&self, mailbox: &Mailbox, messages: &[NewMessage<'_>]) -> Result<Vec<i64>> {
        let mut s = self.state();
        messages
            .iter()
            .map(|m| s.append(mailbox.id, m.raw, m.flags, m.internal_date))
            .collect()
    }

    async fn message_details(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        with_raw: bool,
    ) -> Result<Vec<MessageDetails>> {
        Ok(self
            .state()
            .messages(mailbox.id, uids)
            .into_iter()
            .map(|m| MessageDetails {
                uid: m.meta.uid,
                parsed: ParsedMessage::parse(&m.raw),
                raw: with_raw.then_some(m.raw),
            })
            .collect())
    }

    async fn message_headers(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        Ok(self
            .state()
            .messages(mailbox.id, uids)
            .into_iter()
            .map(|m| (m.meta.uid, header_block(&m.raw)))
            .collect())
    }

    async fn search_text(
        &self,
        mailbox: &Mailbox,
        _key: TextKey,
        needle: &str,
    ) -> Result<HashSet<i64>> {
        let needle = needle.to_lowercase();
        let s = self.state();
        Ok(s.messages
            .get(&mailbox.id)
            .into_iter()
            .flatten()
            .filter(|m| {
                String::from_utf8_lossy(&m.raw)
                    .to_lowercase()
                    .contains(&needle)
            })
            .map(|m| m.meta.uid)
            .collect())
    }

    async fn urlauth_token(&self, mailbox: &Mailbox, rump: &str) -> Result<String> {
        Ok(format!("{}-{}", mailbox.id, rump.len()))
    }

    async fn urlauth_verify(&self, mailbox: &Mailbox, rump: &str, token: &str) -> Result<bool> {
        Ok(token == format!("{}-{}", mailbox.id, rump.len()))
    }

    async fn reset_urlauth_keys(&self, _user_id: i64, _mailbox_id: Option<i64>) -> Result<()> {
        Ok(())
    }

    async fn train_junk(
        &self,
        _mailbox: &Mailbox,
        uids: &[i64],
        _class: JunkClass,
    ) -> Result<usize> {
        Ok(uids.len())
    }
}

/// Changes handed over as a list, taken once.
impl ChangeFeed for Vec<Change> {
    fn received(&mut self) -> (Vec<Change>, bool) {
        (std::mem::take(self), false)
    }
}
