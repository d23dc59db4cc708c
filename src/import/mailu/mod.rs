//! `postern import mailu PATH`: moving a whole Mailu installation in, from its three volumes
//! (`/mailu/data/main.db`, `/mailu/mail`, `/mailu/dkim`). Domains, alternative domains (as
//! aliases, see [`Run::alternatives`]), users with their quota, enabled flag and password hash
//! (verified at login and replaced by Argon2id then), aliases (a `%` wildcard becomes the
//! catch-all, other wildcard patterns pattern aliases), forward and auto-reply settings as the
//! users' vacation and forwarding settings, the users' own Sieve scripts, DKIM keys under their
//! selector, and every message with its flags and folder.
//!
//! Every step looks first: what is already there is left as it is, so a second or interrupted
//! run imports nothing twice. What Postern has no place for (relayed domains, fetched accounts,
//! application tokens) is listed as skipped.

mod db;
mod sieve;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use postern_store::{AccountSettings, Store, StoreError, User};

use super::importer::Options;
use super::mbox::Quoting;
use super::{import_folders, maildir, sources, Imported};
use crate::cli::MailuArgs;
use crate::output::outln;
use db::{MailuAlias, MailuData, MailuUser};

/// Runs `postern import mailu`.
pub async fn run(store: &Store, args: MailuArgs, max_size: u64) -> anyhow::Result<()> {
    let root = args.path.unwrap_or_default();
    let db_path = args.db.unwrap_or_else(|| root.join("data/main.db"));
    let mail = args.mail.unwrap_or_else(|| root.join("mail"));
    let dkim = args.dkim.unwrap_or_else(|| root.join("dkim"));
    let data = db::read(&db_path).await?;
    let mut run = Run {
        store,
        dry_run: args.dry_run,
        max_size,
        failed: 0,
        messages: Imported::default(),
    };
    run.domains(&data).await?;
    run.users(&data).await?;
    run.aliases(&data).await?;
    run.alternatives(&data).await?;
    run.dkim(&data, &dkim).await?;
    run.skipped(&data)?;
    for user in &data.users {
        run.settings(user).await?;
        run.sieve(user, &mail.join(&user.email)).await?;
    }
    for user in &data.users {
        run.mail(user, &mail.join(&user.email)).await?;
    }
    run.stray_maildirs(&data, &mail)?;
    let verb = if run.dry_run {
        "would import"
    } else {
        "imported"
    };
    outln!(
        "{verb} {} message(s) for {} user(s)",
        run.messages.imported,
        data.users.len()
    );
    let failed = run.failed + run.messages.failed;
    if failed > 0 {
        anyhow::bail!("{failed} item(s) could not be imported (see the errors above)");
    }
    Ok(())
}

/// One import run: the store, whether it only looks, and what failed so far.
struct Run<'a> {
    store: &'a Store,
    dry_run: bool,
    /// Largest message imported (see [`Options::max_size`]).
    max_size: u64,
    failed: u64,
    messages: Imported,
}

impl Run<'_> {
    /// "added" or, in a dry run, "would add".
    fn added(&self) -> &'static str {
        if self.dry_run {
            "would add"
        } else {
            "added"
        }
    }

    /// Reports an item that could not be imported and counts it.
    fn error(&mut self, item: &str, e: impl std::fmt::Display) {
        eprintln!("error: {item}: {e}; not imported");
        self.failed += 1;
    }

    async fn domains(&mut self, data: &MailuData) -> anyhow::Result<()> {
        let names = data
            .domains
            .iter()
            .chain(data.alternatives.iter().map(|(alt, _)| alt));
        for name in names {
            self.domain(name).await?;
        }
        Ok(())
    }

    async fn domain(&mut self, name: &str) -> anyhow::Result<()> {
        if self.store.domain(name).await?.is_some() {
            outln!("domain {name}: already there");
            return Ok(());
        }
        if !self.dry_run {
            match self.store.add_domain(name).await {
                Ok(_) | Err(StoreError::Exists(_)) => {}
                Err(e @ StoreError::Invalid { .. }) => {
                    self.error(&format!("domain {name}"), e);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        outln!("domain {name}: {}", self.added());
        Ok(())
    }

    async fn users(&mut self, data: &MailuData) -> anyhow::Result<()> {
        for u in &data.users {
            let item = format!("user {}", u.email);
            if self.store.user(&u.email).await?.is_some() {
                outln!("{item}: already there (left as it is)");
                continue;
            }
            if !postern_store::password::is_stored_hash(&u.password) {
                let scheme = match u.password.split_inclusive('}').next() {
                    Some(p) if p.starts_with('{') && p.ends_with('}') => p,
                    _ => u.password.split('$').nth(1).unwrap_or("?"),
                };
                self.error(
                    &item,
                    format!("its password hash ({scheme}) is of a scheme Postern does not verify"),
                );
                continue;
            }
            if !self.dry_run {
                match self
                    .store
                    .add_user_with_hash(&u.email, &u.password, 0)
                    .await
                {
                    Ok(_) => {}
                    Err(e @ (StoreError::Invalid { .. } | StoreError::NotFound(_))) => {
                        self.error(&item, e);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
                if !u.enabled {
                    self.store.set_disabled(&u.email, true).await?;
                }
            }
            let state = if u.enabled { "" } else { ", disabled" };
            outln!("{item}: {}{state}", self.added());
            if u.global_admin {
                outln!("note: {item} was a Mailu global admin; Postern admins are separate (`postern admin add`)");
            }
            if !u.enable_imap {
                outln!("note: {item} had IMAP turned off in Mailu; Postern has no per-user IMAP switch");
            }
        }
        Ok(())
    }

    /// Aliases: one Postern alias per destination; a wildcard alias becomes a pattern alias
    /// ([`alias_source`]).
    async fn aliases(&mut self, data: &MailuData) -> anyhow::Result<()> {
        let mut have = self.existing_aliases().await?;
        for a in &data.aliases {
            let shown = format!("alias {}@{}", a.localpart, a.domain);
            if a.disabled {
                outln!("skipped: {shown} (disabled in Mailu)");
                continue;
            }
            let Some(source) = self.alias_source(a, &a.domain) else {
                continue;
            };
            for dest in &a.destination {
                self.alias(&mut have, &source, dest).await?;
            }
        }
        Ok(())
    }

    /// The Postern alias source for Mailu alias `a` in `domain`: its address, or for a wildcard
    /// alias (an SQL `LIKE` pattern: `%` any run, `_` one character) the pattern alias with `*`
    /// and `?`, or `@domain` (the catch-all) for `%` alone. A pattern that already holds `*` or
    /// `?` (which it matches literally) has no translation: reported as an error.
    fn alias_source(&mut self, a: &MailuAlias, domain: &str) -> Option<String> {
        if !a.wildcard {
            return Some(format!("{}@{domain}", a.localpart));
        }
        if a.localpart == "%" {
            return Some(format!("@{domain}"));
        }
        if a.localpart.contains(['*', '?']) {
            self.error(
                &format!("wildcard alias {}@{domain}", a.localpart),
                "its pattern holds `*` or `?`, which Postern's pattern aliases read as wildcards (add its addresses as aliases)",
            );
            return None;
        }
        let glob: String = a
            .localpart
            .chars()
            .map(|c| match c {
                '%' => '*',
                '_' => '?',
                c => c,
            })
            .collect();
        Some(format!("{glob}@{domain}"))
    }

    /// Every alias of the store as (source, destination), `@domain` for catch-alls.
    async fn existing_aliases(&self) -> anyhow::Result<BTreeSet<(String, String)>> {
        Ok(self
            .store
            .list_aliases(None)
            .await?
            .into_iter()
            .map(|a| (a.source, a.destination))
            .collect())
    }

    async fn alias(
        &mut self,
        have: &mut BTreeSet<(String, String)>,
        source: &str,
        dest: &str,
    ) -> anyhow::Result<()> {
        let item = format!("alias {source} -> {dest}");
        let key = (source.to_lowercase(), dest.to_lowercase());
        if have.contains(&key) {
            outln!("{item}: already there");
            return Ok(());
        }
        if !self.dry_run {
            match self.store.add_alias(source, dest).await {
                Ok(_) | Err(StoreError::Exists(_)) => {}
                Err(e @ (StoreError::Invalid { .. } | StoreError::NotFound(_))) => {
                    self.error(&item, e);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        have.insert(key);
        outln!("{item}: {}", self.added());
        Ok(())
    }

    /// Alternative domains: Mailu resolves `x@alt` as `x@primary`. Postern has no domain
    /// aliases, so the alternative becomes a hosted domain whose addresses are aliases of the
    /// primary's users and aliases as they are now (`x@alt -> x@primary`), and whose pattern
    /// aliases and catch-all go where the primary's do. Addresses added to the primary later need their own alias.
    async fn alternatives(&mut self, data: &MailuData) -> anyhow::Result<()> {
        let mut have = self.existing_aliases().await?;
        for (alt, primary) in &data.alternatives {
            let users = data.users.iter().filter_map(|u| {
                let (local, domain) = u.email.rsplit_once('@')?;
                (domain == primary).then_some(local)
            });
            let aliases = data
                .aliases
                .iter()
                .filter(|a| &a.domain == primary && !a.wildcard && !a.disabled)
                .map(|a| a.localpart.as_str());
            let locals: BTreeSet<&str> = users.chain(aliases).collect();
            for local in locals {
                let source = format!("{local}@{alt}");
                self.alias(&mut have, &source, &format!("{local}@{primary}"))
                    .await?;
            }
            let wildcards = data
                .aliases
                .iter()
                .filter(|a| &a.domain == primary && a.wildcard && !a.disabled);
            for a in wildcards {
                let Some(source) = self.alias_source(a, alt) else {
                    continue;
                };
                for dest in &a.destination {
                    self.alias(&mut have, &source, dest).await?;
                }
            }
        }
        Ok(())
    }

    /// DKIM keys `<dkim>/<domain>.<selector>.key`, each the active RSA key of its domain and of
    /// the domain's alternatives (Mailu publishes the same key for them).
    async fn dkim(&mut self, data: &MailuData, dir: &Path) -> anyhow::Result<()> {
        let files: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
            Err(e) => {
                outln!("skipped: DKIM keys: {}: {e}", dir.display());
                return Ok(());
            }
        };
        for domain in &data.domains {
            let prefix = format!("{domain}.");
            for file in &files {
                let Some(selector) = file
                    .strip_prefix(&prefix)
                    .and_then(|s| s.strip_suffix(".key"))
                    .filter(|s| !s.is_empty() && !s.contains('.'))
                else {
                    continue;
                };
                let path = dir.join(file);
                let pem = match read_small(&path) {
                    Ok(pem) => pem,
                    Err(e) => {
                        self.error(&format!("DKIM key {}", path.display()), e);
                        continue;
                    }
                };
                let alternatives = data
                    .alternatives
                    .iter()
                    .filter(|(_, primary)| primary == domain)
                    .map(|(alt, _)| alt);
                for name in std::iter::once(domain).chain(alternatives) {
                    self.dkim_key(name, selector, &pem, &path).await?;
                }
            }
        }
        Ok(())
    }

    async fn dkim_key(
        &mut self,
        domain: &str,
        selector: &str,
        pem: &str,
        path: &Path,
    ) -> anyhow::Result<()> {
        let item = format!("DKIM key {selector}._domainkey.{domain}");
        if self.dry_run {
            let known = self.store.dkim_keys(domain).await.unwrap_or_default();
            match known.iter().any(|k| k.selector == selector) {
                true => outln!("{item}: already there"),
                false => outln!("{item}: would import {} as the active key", path.display()),
            }
            return Ok(());
        }
        match self.store.import_dkim_key(domain, selector, pem).await {
            Ok(true) => outln!("{item}: imported as the active key"),
            Ok(false) => outln!("{item}: already there"),
            Err(e @ (StoreError::Invalid { .. } | StoreError::Exists(_))) => {
                self.error(&format!("{item} ({})", path.display()), e)
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Lists what Postern has no place for.
    fn skipped(&mut self, data: &MailuData) -> anyhow::Result<()> {
        for (name, smtp) in &data.relays {
            let via = smtp
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("its MX");
            outln!(
                "skipped: relayed domain {name} (via {via}): Postern does not relay domains it does not host"
            );
        }
        if data.fetches > 0 {
            outln!(
                "skipped: {} fetched account(s): Postern does not poll remote mailboxes",
                data.fetches
            );
        }
        if data.tokens > 0 {
            outln!(
                "skipped: {} application token(s): users make new ones (their secrets are not stored)",
                data.tokens
            );
        }
        Ok(())
    }

    /// The user's forward and auto-reply settings, as their vacation and forwarding settings
    /// when none were saved yet.
    async fn settings(&mut self, u: &MailuUser) -> anyhow::Result<()> {
        let Some(wanted) = sieve::account_settings(u) else {
            return Ok(());
        };
        let item = format!("forwarding and auto-reply of {}", u.email);
        if u.reply_enabled && !wanted.reply_enabled {
            outln!("note: {item}: the auto-reply is off, as Mailu sent none for mail forwarded without a copy");
        }
        let wanted = match wanted.normalized() {
            Ok(w) => w,
            Err(e) => {
                self.error(&item, e);
                return Ok(());
            }
        };
        let Some(user) = self.store.user(&u.email).await? else {
            if self.dry_run {
                outln!("{item}: would set");
            }
            return Ok(());
        };
        let stored = self.store.account_settings(user.id).await?;
        let unset = AccountSettings {
            forward_keep: true,
            ..AccountSettings::default()
        };
        if stored == wanted {
            outln!("{item}: already there");
        } else if stored != unset {
            outln!("skipped: {item}: the user's settings differ, kept (see `postern user vacation|forward`)");
        } else if self.dry_run {
            outln!("{item}: would set");
        } else {
            match self.store.set_account_settings(user.id, &wanted).await {
                Ok(_) => outln!("{item}: set"),
                Err(e @ StoreError::Invalid { .. }) => self.error(&item, e),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The user's own Sieve scripts, with the one Dovecot ran activated unless another is active.
    async fn sieve(&mut self, u: &MailuUser, home: &Path) -> anyhow::Result<()> {
        let mut warn = |w: String| eprintln!("warning: {w}");
        let scripts: Vec<(String, String, bool)> = sieve::user_scripts(home, &mut warn)
            .into_iter()
            .map(|s| (s.name, s.content, s.active))
            .collect();
        if scripts.is_empty() {
            return Ok(());
        }
        let user = match self.store.user(&u.email).await? {
            Some(user) => Some(user),
            None if self.dry_run => None,
            None => return Ok(()),
        };
        for (name, content, wants_active) in scripts {
            let item = format!("sieve script {name:?} of {}", u.email);
            let Some(user) = &user else {
                outln!("{item}: would add");
                continue;
            };
            let stored = self.store.sieve_script(user.id, &name).await?;
            match &stored {
                Some(s) if s.content == content => outln!("{item}: already there"),
                Some(_) => {
                    outln!("skipped: {item}: a different script of that name is there, kept");
                    continue;
                }
                None if self.dry_run => outln!("{item}: would add"),
                None => match self.store.put_sieve_script(user.id, &name, &content).await {
                    Ok(()) => outln!("{item}: added"),
                    Err(e @ StoreError::Invalid { .. }) => {
                        self.error(&item, e);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                },
            }
            if !wants_active || self.dry_run {
                continue;
            }
            if let Err(e) = postern_sieve::compile(&content) {
                outln!("note: {item} does not compile here ({e}); stored, not activated");
                continue;
            }
            match self.store.active_sieve_script(user.id).await? {
                None => {
                    self.store
                        .set_active_sieve_script(user.id, Some(&name))
                        .await?;
                    outln!("{item}: active");
                }
                Some(active) if active.name == name => {}
                Some(active) => outln!(
                    "note: {item} not activated: {:?} is active here already",
                    active.name
                ),
            }
        }
        Ok(())
    }

    /// The user's Maildir `<mail>/<address>`, with the quota lifted meanwhile (Mailu's usage may
    /// exceed it) and set to Mailu's afterwards.
    async fn mail(&mut self, u: &MailuUser, home: &Path) -> anyhow::Result<()> {
        let item = format!("mail of {}", u.email);
        let user = self.store.user(&u.email).await?;
        let is_maildir = home.join("cur").is_dir();
        if !is_maildir {
            if let Some(user) = &user {
                self.set_quota(user, u.quota_bytes).await?;
            }
            return Ok(());
        }
        let mut warn = |w: String| eprintln!("warning: {w}");
        let folders = sources::maildir_folders(home, &mut warn)
            .with_context(|| format!("reading {}", home.display()))?;
        let Some(user) = user else {
            if self.dry_run {
                let n: usize = folders
                    .iter()
                    .map(|f| maildir::messages(&f.path).map_or(0, |m| m.len()))
                    .sum();
                outln!("{item}: would import {n} message(s)");
                self.messages.imported += n as u64;
            } else {
                outln!("skipped: {item}: the user was not imported");
            }
            return Ok(());
        };
        outln!("{item}:");
        if !self.dry_run && user.quota_bytes != 0 {
            self.store.set_quota(&u.email, 0).await?;
        }
        let options = Options {
            dry_run: self.dry_run,
            quoting: Quoting::Rd,
            max_size: self.max_size,
        };
        let result = import_folders(self.store, &user, &folders, options).await;
        self.set_quota(&user, u.quota_bytes).await?;
        let done = result?;
        self.messages.imported += done.imported;
        self.messages.failed += done.failed;
        Ok(())
    }

    async fn set_quota(&self, user: &User, quota: i64) -> anyhow::Result<()> {
        if !self.dry_run {
            self.store
                .set_quota(&user.address.to_string(), quota.max(0))
                .await?;
        }
        Ok(())
    }

    /// Maildirs of addresses that are not Mailu users (left behind by deleted users).
    fn stray_maildirs(&self, data: &MailuData, mail: &Path) -> anyhow::Result<()> {
        let users: BTreeSet<&str> = data.users.iter().map(|u| u.email.as_str()).collect();
        let Ok(entries) = std::fs::read_dir(mail) else {
            return Ok(());
        };
        let mut stray: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_str().is_none_or(|n| !users.contains(n)))
            .map(|e| e.path())
            .collect();
        stray.sort();
        for path in stray {
            outln!("skipped: {}: no Mailu user of that name", path.display());
        }
        Ok(())
    }
}

/// Reads a small text file (a key) without following a symbolic link.
fn read_small(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut sources::open_no_follow(path)?, &mut text)?;
    Ok(text)
}
