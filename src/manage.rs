//! The management commands (`domain`, `user`, `alias`): thin wrappers over the store that print
//! results for humans and never take a password from the command line.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use postern_store::Store;

use crate::cli::{AdminCmd, AliasCmd, DnsCmd, DomainCmd, QueueCmd, SendAsCmd, TokenCmd, UserCmd};
use crate::output::outln;

/// Runs `postern domain ...`.
pub async fn domain(store: &Store, cmd: DomainCmd) -> anyhow::Result<()> {
    match cmd {
        DomainCmd::Add { name } => {
            let d = store.add_domain(&name).await?;
            outln!("added domain {}", d.name);
        }
        DomainCmd::List => {
            for d in store.list_domains().await? {
                outln!("{}", d.name);
            }
        }
        DomainCmd::Remove { name } => {
            store.remove_domain(&name).await?;
            outln!("removed domain {name}");
        }
    }
    Ok(())
}

/// Runs `postern user ...`.
pub async fn user(store: &Store, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add { address, quota } => {
            let quota = postern_store::parse_quota(&quota)?;
            let password = read_password()?;
            let u = store.add_user(&address, &password, quota).await?;
            outln!("added user {}", u.address);
        }
        UserCmd::Passwd { address } => {
            let password = read_password()?;
            store.set_password(&address, &password).await?;
            outln!("password changed for {address}");
        }
        UserCmd::List { domain } => {
            for u in store.list_users(domain.as_deref()).await? {
                let quota = if u.quota_bytes == 0 {
                    "unlimited".to_owned()
                } else {
                    u.quota_bytes.to_string()
                };
                let state = if u.disabled { " disabled" } else { "" };
                outln!(
                    "{}\tused {} of {quota} bytes{state}",
                    u.address,
                    u.used_bytes
                );
            }
        }
        UserCmd::Remove { address } => {
            store.remove_user(&address).await?;
            outln!("removed user {address}");
        }
        UserCmd::Quota { address, size } => {
            store
                .set_quota(&address, postern_store::parse_quota(&size)?)
                .await?;
            outln!("quota of {address} set to {size}");
        }
        UserCmd::Disable { address } => {
            store.set_disabled(&address, true).await?;
            outln!("disabled user {address}");
        }
        UserCmd::Enable { address } => {
            store.set_disabled(&address, false).await?;
            outln!("enabled user {address}");
        }
        UserCmd::SendAs(SendAsCmd::Add { user, address }) => {
            store.add_send_as(&user, &address).await?;
            outln!("{user} may send as {address}");
        }
        UserCmd::SendAs(SendAsCmd::Remove { user, address }) => {
            store.remove_send_as(&user, &address).await?;
            outln!("{user} may no longer send as {address}");
        }
        UserCmd::SendAs(SendAsCmd::List { user }) => {
            for address in store.list_send_as(&user).await? {
                outln!("{address}");
            }
        }
        UserCmd::Vacation {
            address,
            on,
            off,
            subject,
            body,
            body_file,
            start,
            end,
        } => {
            let (id, mut s) = account_settings(store, &address).await?;
            let body = match body_file {
                Some(path) if path.as_os_str() == "-" => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
                    Some(text)
                }
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                ),
                None => body,
            };
            let changed = on || off || subject.is_some() || body.is_some();
            let changed = changed || start.is_some() || end.is_some();
            if on || off {
                s.reply_enabled = on;
            }
            if let Some(v) = subject {
                s.reply_subject = v;
            }
            if let Some(v) = body {
                s.reply_body = v;
            }
            if let Some(v) = start {
                s.reply_startdate = Some(v);
            }
            if let Some(v) = end {
                s.reply_enddate = Some(v);
            }
            if changed {
                s = store.set_account_settings(id, &s).await?;
            }
            let window = match (&s.reply_startdate, &s.reply_enddate) {
                (None, None) => String::new(),
                (a, b) => format!(
                    " from {} to {}",
                    a.as_deref().unwrap_or("now"),
                    b.as_deref().unwrap_or("further notice")
                ),
            };
            let state = if s.reply_enabled { "on" } else { "off" };
            outln!("vacation reply of {address}: {state}{window}");
            outln!("subject: {}", s.reply_subject);
            outln!("{}", s.reply_body.replace("\r\n", "\n"));
            print_script(&s)?;
        }
        UserCmd::Forward {
            address,
            to,
            off,
            keep,
            no_keep,
        } => {
            let (id, mut s) = account_settings(store, &address).await?;
            let changed = to.is_some() || off || keep || no_keep;
            if let Some(to) = to {
                s.forward_destination = to;
                s.forward_enabled = true;
            }
            if off {
                s.forward_enabled = false;
            }
            if keep || no_keep {
                s.forward_keep = keep;
            }
            if changed {
                s = store.set_account_settings(id, &s).await?;
            }
            let state = if s.forward_enabled { "on" } else { "off" };
            let copy = if s.forward_keep {
                "keeping a copy"
            } else {
                "keeping no copy"
            };
            outln!(
                "forwarding of {address}: {state}, to {} ({copy})",
                if s.forward_destination.is_empty() {
                    "nobody"
                } else {
                    &s.forward_destination
                }
            );
            print_script(&s)?;
        }
    }
    Ok(())
}

/// The user's id and vacation/forwarding settings.
async fn account_settings(
    store: &Store,
    address: &str,
) -> anyhow::Result<(i64, postern_store::AccountSettings)> {
    let Some(user) = store.user(address).await? else {
        bail!("user {address} not found");
    };
    Ok((user.id, store.account_settings(user.id).await?))
}

/// Prints the Sieve script generated from `settings` (what delivery runs first).
fn print_script(settings: &postern_store::AccountSettings) -> anyhow::Result<()> {
    match postern_sieve::account_script(settings) {
        Some(script) => {
            outln!("generated Sieve script:");
            outln!("{}", script.replace("\r\n", "\n").trim_end());
        }
        None => outln!("no generated Sieve script (vacation and forwarding are off)"),
    }
    Ok(())
}

/// Runs `postern alias ...`.
pub async fn alias(store: &Store, cmd: AliasCmd) -> anyhow::Result<()> {
    match cmd {
        AliasCmd::Add {
            source,
            destination,
        } => {
            let a = store.add_alias(&source, &destination).await?;
            outln!("added alias {} -> {}", a.source, a.destination);
        }
        AliasCmd::List { domain } => {
            for a in store.list_aliases(domain.as_deref()).await? {
                outln!("{}\t{}", a.source, a.destination);
            }
        }
        AliasCmd::Remove {
            source,
            destination,
        } => {
            store.remove_alias(&source, destination.as_deref()).await?;
            outln!("removed alias {source}");
        }
    }
    Ok(())
}

/// Runs `postern dns ...`.
pub async fn dns(store: &Store, loaded: &crate::config::Loaded, cmd: DnsCmd) -> anyhow::Result<()> {
    match cmd {
        DnsCmd::Records { domain, view } => {
            let Some(d) = store.domain(&domain).await? else {
                bail!("{domain} is not a hosted domain");
            };
            let publish = crate::mail_dns::Publish::from_config(
                loaded,
                loaded,
                crate::mail_dns::PolicyHttps::Assumed,
            );
            for (v, records) in publish
                .records_by_view(store, &d.name, view.as_deref())
                .await?
            {
                match &v {
                    Some(name) => outln!("; view {name}"),
                    None => outln!("; mail records of {}", d.name),
                }
                for r in records {
                    outln!("{r}");
                }
            }
        }
        DnsCmd::RotateDkim { domain } => rotate_dkim(store, &domain).await?,
        DnsCmd::Ds { zone } => crate::dnssec_keys::ds(store, &loaded.config.dns, &zone).await?,
        DnsCmd::Key(cmd) => crate::dnssec_keys::key(store, &loaded.config.dns, cmd).await?,
    }
    Ok(())
}

/// Runs `postern dns rotate-dkim`.
async fn rotate_dkim(store: &Store, domain: &str) -> anyhow::Result<()> {
    const WEEK: i64 = 7 * 86400;
    if store.rotate_dkim(domain).await? {
        outln!("{domain}: now signing with the new keys; the old ones stay published for a week");
    } else {
        outln!("{domain}: new keys published; run this again in a day to start signing with them");
    }
    let purged = store
        .purge_retired_dkim(postern_store::unix_now() - WEEK)
        .await?;
    if purged > 0 {
        outln!("removed {purged} keys retired more than a week ago");
    }
    Ok(())
}

/// Runs `postern admin ...`.
pub async fn admin(store: &Store, cmd: AdminCmd) -> anyhow::Result<()> {
    match cmd {
        AdminCmd::Add { name } => {
            let password = read_password()?;
            let a = store.add_admin(&name, &password).await?;
            outln!("added administrator {}", a.username);
        }
        AdminCmd::List => {
            for a in store.list_admins().await? {
                outln!("{}", a.username);
            }
        }
        AdminCmd::Passwd { name } => {
            let password = read_password()?;
            store.set_admin_password(&name, &password).await?;
            outln!("password of administrator {name} changed");
        }
        AdminCmd::Remove { name } => {
            store.remove_admin(&name).await?;
            outln!("removed administrator {name}");
        }
        AdminCmd::Token { cmd, name, label } => match (cmd, name) {
            (Some(cmd), _) => token(store, cmd).await?,
            (None, Some(name)) => {
                let cmd = TokenCmd::Add {
                    name,
                    label,
                    scope: "admin".to_owned(),
                    expires: None,
                };
                token(store, cmd).await?;
            }
            (None, None) => bail!("name an administrator, or use `admin token add|list|revoke`"),
        },
    }
    Ok(())
}

/// Runs `postern admin token ...`.
async fn token(store: &Store, cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Add {
            name,
            label,
            scope,
            expires,
        } => {
            let scope: postern_store::TokenScope = scope.parse()?;
            let lifetime = expires
                .as_deref()
                .map(postern_store::parse_lifetime)
                .transpose()?;
            let Some(admin) = store
                .list_admins()
                .await?
                .into_iter()
                .find(|a| a.username == name)
            else {
                bail!("no administrator named {name:?}");
            };
            let token = store
                .create_token(admin.id, &label, scope, lifetime)
                .await?;
            outln!("{token}");
        }
        TokenCmd::List => {
            let time = |t: Option<i64>, none: &str| t.map_or(none.to_owned(), rfc3339);
            for t in store.list_tokens().await? {
                outln!(
                    "{}\t{}\t{}\tcreated {}\tused {}\texpires {}\t{}",
                    t.id,
                    t.admin,
                    t.scope,
                    rfc3339(t.created_at),
                    time(t.last_used_at, "never"),
                    time(t.expires_at, "never"),
                    t.label
                );
            }
        }
        TokenCmd::Revoke { id } => {
            store.revoke_token(&id).await?;
            outln!("revoked token {id}");
        }
    }
    Ok(())
}

/// Runs `postern queue ...`.
pub async fn queue(store: &Store, cmd: QueueCmd) -> anyhow::Result<()> {
    match cmd {
        QueueCmd::List => {
            let entries = store.list_queue().await?;
            if entries.is_empty() {
                outln!("queue is empty");
            }
            for e in entries {
                let sender = if e.sender.is_empty() { "<>" } else { &e.sender };
                outln!(
                    "{}\t{sender}\t{}\t{} bytes\tattempts {}\tnext {}\texpires {}\t{}",
                    e.id,
                    e.recipient,
                    e.size,
                    e.attempts,
                    rfc3339(e.next_attempt),
                    rfc3339(e.expires_at),
                    e.last_error.as_deref().unwrap_or("-"),
                );
            }
        }
        QueueCmd::Retry { id } => {
            store.retry_queue(id).await?;
            outln!("queue entry {id} is due now");
        }
        QueueCmd::Delete { id } => {
            store.remove_queue(id).await?;
            outln!("deleted queue entry {id}");
        }
    }
    Ok(())
}

/// Unix seconds as an RFC 3339 UTC time.
pub(crate) fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Creates the first administrator, `admin` with a random password printed once, if there is none.
pub async fn ensure_admin(store: &Store) -> anyhow::Result<()> {
    if !store.list_admins().await?.is_empty() {
        return Ok(());
    }
    let password = hex_secret()?;
    store.add_admin("admin", &password).await?;
    // Printed straight to stderr, not logged: the password must not linger in log files or in
    // the dashboard's list of recent events.
    eprintln!(
        "\n  First administrator created: name \"admin\", password \"{password}\"\n  \
         It is shown only now; change it with `postern admin passwd admin`.\n"
    );
    tracing::warn!(
        "created the first administrator \"admin\"; its password was printed once on stderr"
    );
    Ok(())
}

/// 24 random hex digits from the operating system's generator.
pub fn hex_secret() -> anyhow::Result<String> {
    use std::fmt::Write;
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// Reads a password: prompted twice on a terminal, else the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}
