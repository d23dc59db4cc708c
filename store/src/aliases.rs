//! Aliases (one-to-many, to local or external addresses), pattern aliases, per-domain catch-alls,
//! and resolution of an envelope recipient to local users and remote addresses.
//!
//! A pattern alias has `*` (any run of characters, also none) or `?` (exactly one character) in
//! its local part, like `sales-*@example.org`; it applies as the catch-all does, only to an
//! address no user or exact alias has, and the longest matching pattern wins (Mailu's wildcard
//! aliases, which are SQL `LIKE` patterns ordered by length).

use std::collections::BTreeSet;

use crate::address::{normalize_address, normalize_domain, Address};
use crate::db::{get, Store};
use crate::error::{unique_as_exists, Result, StoreError};
use crate::unix_now;

/// Local parts every hosted domain receives even without a user or alias (RFC 5321 §4.5.1,
/// RFC 2142 §2); see [`Store::resolve_role`].
pub const ROLE_LOCAL_PARTS: [&str; 2] = ["postmaster", "abuse"];

/// Alias chains longer than this are treated as a loop (RFC 5321 §6.3 mail loops).
const MAX_ALIAS_DEPTH: usize = 10;

/// What [`Store::first_look`] found for a recipient in a hosted domain.
struct FirstLook {
    /// Destinations of the exact alias.
    aliases: Vec<String>,
    /// The user of the exact local part: (id, enabled).
    user: Option<(i64, bool)>,
    /// That user's quota and use.
    space: Option<UserSpace>,
}

/// The quota of the user whose exact address a recipient is, as read while resolving it
/// ([`Store::resolve_recipient_with_space`]): what the SMTP server checks at RCPT to refuse mail
/// for a full mailbox early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSpace {
    /// The user.
    pub user_id: i64,
    /// Quota in bytes, 0 = unlimited.
    pub quota_bytes: i64,
    /// Bytes stored.
    pub used_bytes: i64,
}

/// Where an address leads: the destinations of its alias, or else the user it names (if any).
enum Lookup {
    Aliases(Vec<String>),
    User(Option<(i64, bool)>),
}

/// One alias row: mail for `source` also goes to `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// Row id.
    pub id: i64,
    /// `local@domain`, or `@domain` for the domain's catch-all; a local part with `*` or `?` is a
    /// pattern (see the module documentation).
    pub source: String,
    /// Where the mail goes: any address, local or external.
    pub destination: String,
}

/// Where mail for one envelope recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The domain is not hosted here: accepting it would be relaying.
    NotHosted,
    /// The domain is hosted but nothing matches the address (RFC 3463 5.1.1).
    Unknown,
    /// Deliver to these local users and forward to these remote addresses.
    Deliver {
        /// Ids of enabled local users.
        local: BTreeSet<i64>,
        /// External addresses reached through aliases.
        remote: BTreeSet<String>,
    },
}

/// Splits `source` into (domain, local part) where `@domain` means the catch-all (`""`).
fn parse_source(source: &str) -> Result<(String, String)> {
    match source.trim().strip_prefix('@') {
        Some(domain) => Ok((normalize_domain(domain)?, String::new())),
        None => {
            let a = normalize_address(source)?;
            Ok((a.domain, a.local))
        }
    }
}

/// Whether `text` matches the glob `pattern` as a whole: `*` any run of characters (also none),
/// `?` exactly one, every other character itself. Greedy with one backtrack point, so linear in
/// practice and never exponential.
fn pattern_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// An alias from a row with `id`, `local_part`, `domain` and `destination`.
pub(crate) fn alias_from_row(r: &sqlx::any::AnyRow) -> Result<Alias> {
    Ok(Alias {
        id: get(r, "id")?,
        source: format!(
            "{}@{}",
            get::<String>(r, "local_part")?,
            get::<String>(r, "domain")?
        ),
        destination: get(r, "destination")?,
    })
}

impl Store {
    /// Adds `source -> destination`. `source` is an address in a hosted domain or `@domain` for the
    /// catch-all; several rows with one source make a one-to-many alias.
    pub async fn add_alias(&self, source: &str, destination: &str) -> Result<Alias> {
        let (domain, local) = parse_source(source)?;
        let destination = normalize_address(destination)?.to_string();
        let source = format!("{local}@{domain}");
        let mut tx = self.write_tx().await?;
        let domain_id: i64 = match sqlx::query("SELECT id FROM domains WHERE name = $1")
            .bind(&domain)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => get(&r, "id")?,
            None => return Err(StoreError::NotFound(format!("domain {domain}"))),
        };
        let row = sqlx::query(
            "INSERT INTO aliases (domain_id, local_part, destination, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(domain_id)
        .bind(&local)
        .bind(&destination)
        .bind(unix_now())
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as_exists(format!("alias {source} -> {destination}")))?;
        let id = get(&row, "id")?;
        self.commit(tx, vec![]).await?;
        Ok(Alias {
            id,
            source,
            destination,
        })
    }

    /// Removes `source -> destination`, or every destination of `source` if `destination` is None.
    pub async fn remove_alias(&self, source: &str, destination: Option<&str>) -> Result<()> {
        let (domain, local) = parse_source(source)?;
        let destination = destination
            .map(normalize_address)
            .transpose()?
            .map(|a| a.to_string());
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "DELETE FROM aliases WHERE local_part = $1 AND domain_id = (SELECT id FROM domains WHERE name = $2) \
             AND ($3 IS NULL OR destination = $3)",
        )
        .bind(&local)
        .bind(&domain)
        .bind(destination)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("alias {local}@{domain}")));
        }
        self.commit(tx, vec![]).await
    }

    /// Aliases of one domain or of all, by source.
    pub async fn list_aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>> {
        let domain = domain.map(normalize_domain).transpose()?;
        let rows = sqlx::query(
            "SELECT a.id, a.local_part, d.name AS domain, a.destination FROM aliases a \
             JOIN domains d ON d.id = a.domain_id WHERE ($1 IS NULL OR d.name = $1) \
             ORDER BY d.name, a.local_part, a.destination",
        )
        .bind(domain)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alias_from_row).collect()
    }

    /// Resolves an envelope recipient (RFC 5321 §4.1.1.3) through aliases, users, plus-addressing
    /// (`user+tag@` reaches `user@` when no exact match exists) and the domain's catch-all, which
    /// applies only when no user or alias matches. Alias chains are followed up to a fixed depth;
    /// an address met twice in one chain ends there (delivered if it is a user).
    pub async fn resolve_recipient(&self, address: &str) -> Result<Resolution> {
        Ok(self.resolve_recipient_with_space(address).await?.0)
    }

    /// [`Store::resolve_recipient`], and the quota of the user whose exact address it is, if
    /// any (read by the same query, not through an alias, a `+tag` or a catch-all).
    pub async fn resolve_recipient_with_space(
        &self,
        address: &str,
    ) -> Result<(Resolution, Option<UserSpace>)> {
        let Ok(address) = normalize_address(address) else {
            // A quoted local part (which no mailbox here has) or an address literal: unknown in a
            // hosted domain, otherwise someone else's.
            let resolution = match address.rsplit_once('@').map(|(_, d)| normalize_domain(d)) {
                Some(Ok(domain)) if self.domain(&domain).await?.is_some() => Resolution::Unknown,
                Some(_) => Resolution::NotHosted,
                None => Resolution::Unknown,
            };
            return Ok((resolution, None));
        };
        let Some(first) = self.first_look(&address).await? else {
            return Ok((Resolution::NotHosted, None));
        };
        let space = first.space;
        let mut first = Some(first);
        let mut local = BTreeSet::new();
        let mut remote = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut todo = vec![(address, 0usize)];
        let mut matched_any = false;
        while let Some((addr, depth)) = todo.pop() {
            let first_visit = seen.insert(addr.to_string());
            // The recipient's own domain (depth 0) was found hosted above: one query less.
            if depth > 0 && self.domain(&addr.domain).await?.is_none() {
                remote.insert(addr.to_string());
                continue;
            }
            // Only the recipient itself (depth 0) was looked at by `first_look`.
            let known = if depth == 0 { first.take() } else { None };
            let user = if first_visit && depth < MAX_ALIAS_DEPTH {
                match self.alias_targets(&addr, known).await? {
                    Lookup::Aliases(targets) => {
                        matched_any = true;
                        for t in targets {
                            if let Ok(a) = normalize_address(&t) {
                                todo.push((a, depth + 1));
                            }
                        }
                        continue;
                    }
                    Lookup::User(user) => user,
                }
            } else {
                self.user_for_delivery(&addr).await?
            };
            match user {
                Some((id, enabled)) => {
                    matched_any = true;
                    if enabled {
                        local.insert(id);
                    }
                }
                None if depth == 0 => {}
                None => {
                    tracing::warn!(address = %addr, "alias destination in a hosted domain matches nothing")
                }
            }
        }
        if !matched_any || (local.is_empty() && remote.is_empty()) {
            return Ok((Resolution::Unknown, space));
        }
        Ok((Resolution::Deliver { local, remote }, space))
    }

    /// Where mail for a role address goes: `postmaster` (RFC 5321 §4.5.1, which every server
    /// must accept, also without a domain: `address` None) and `abuse` (RFC 2142 §2) of a hosted
    /// domain. A user or an exact alias with that address wins; otherwise, and never through a
    /// catch-all, the server's role mailbox `mailbox` (an address, resolved like any recipient),
    /// or when none is configured the first user created.
    pub async fn resolve_role(
        &self,
        address: Option<&str>,
        mailbox: Option<&str>,
    ) -> Result<Resolution> {
        if let Some(address) = address {
            let Ok(addr) = normalize_address(address) else {
                return Ok(Resolution::Unknown);
            };
            if self.domain(&addr.domain).await?.is_none() {
                return Ok(Resolution::NotHosted);
            }
            let exact_alias = !self
                .alias_destinations(&addr.domain, &addr.local)
                .await?
                .is_empty();
            if exact_alias || self.user(&addr.to_string()).await?.is_some() {
                return self.resolve_recipient(&addr.to_string()).await;
            }
        }
        if let Some(mailbox) = mailbox {
            return self.resolve_recipient(mailbox).await;
        }
        let first = sqlx::query("SELECT id FROM users WHERE disabled = 0 ORDER BY id LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match first {
            Some(r) => Resolution::Deliver {
                local: BTreeSet::from([get(&r, "id")?]),
                remote: BTreeSet::new(),
            },
            None => Resolution::Unknown,
        })
    }

    /// Destinations for `addr`: exact alias, else (if tagged) alias of the untagged address, else —
    /// only when no user has the address — a pattern alias or the catch-all; with none of these,
    /// the user the address names (or none). `known` is its [`Store::first_look`], if taken.
    async fn alias_targets(&self, addr: &Address, known: Option<FirstLook>) -> Result<Lookup> {
        let tag = addr.local.split_once('+');
        let looked = known.is_some();
        let (exact, user) = match known {
            Some(k) => (k.aliases, k.user),
            None => (
                self.alias_destinations(&addr.domain, &addr.local).await?,
                None,
            ),
        };
        if !exact.is_empty() {
            return Ok(Lookup::Aliases(exact));
        }
        if let Some((base, _tag)) = tag {
            let by_base = self.alias_destinations(&addr.domain, base).await?;
            if !by_base.is_empty() {
                return Ok(Lookup::Aliases(by_base));
            }
        }
        let user = match user {
            Some(user) => Some(user),
            // The first look found no user of the exact local part, and there is no tag.
            None if looked && tag.is_none() => None,
            None => self.user_for_delivery(addr).await?,
        };
        if user.is_some() {
            return Ok(Lookup::User(user));
        }
        let by_pattern = self.pattern_destinations(addr).await?;
        if !by_pattern.is_empty() {
            return Ok(Lookup::Aliases(by_pattern));
        }
        let catch_all = self.alias_destinations(&addr.domain, "").await?;
        Ok(if catch_all.is_empty() {
            Lookup::User(None)
        } else {
            Lookup::Aliases(catch_all)
        })
    }

    /// The first look at a recipient, in one query: whether its domain is hosted (`None` if
    /// not), the destinations of the exact alias of its local part, and the user of that exact
    /// local part. The rest of the resolution needs more queries only for a `+tag`, a pattern or
    /// a catch-all.
    async fn first_look(&self, addr: &Address) -> Result<Option<FirstLook>> {
        let rows = sqlx::query(
            "SELECT 'a' AS kind, a.destination AS destination, 0 AS id, 0 AS disabled, \
             0 AS quota_bytes, 0 AS used_bytes \
             FROM aliases a JOIN domains d ON d.id = a.domain_id \
             WHERE d.name = $1 AND a.local_part = $2 \
             UNION ALL SELECT 'd', '', id, 0, 0, 0 FROM domains WHERE name = $1 \
             UNION ALL SELECT 'u', '', u.id, u.disabled, u.quota_bytes, u.used_bytes FROM users u \
             JOIN domains d ON d.id = u.domain_id WHERE d.name = $1 AND u.local_part = $2 \
             ORDER BY kind, destination",
        )
        .bind(&addr.domain)
        .bind(&addr.local)
        .fetch_all(&self.pool)
        .await?;
        let mut look = FirstLook {
            aliases: Vec::new(),
            user: None,
            space: None,
        };
        let mut hosted = false;
        for r in &rows {
            match get::<String>(r, "kind")?.as_str() {
                "a" => look.aliases.push(get(r, "destination")?),
                "u" => {
                    let user_id = get(r, "id")?;
                    look.user = Some((user_id, get::<i64>(r, "disabled")? == 0));
                    look.space = Some(UserSpace {
                        user_id,
                        quota_bytes: get(r, "quota_bytes")?,
                        used_bytes: get(r, "used_bytes")?,
                    });
                }
                _ => hosted = true,
            }
        }
        Ok(hosted.then_some(look))
    }

    /// Destinations of the longest pattern alias of the domain matching the local part (or,
    /// failing that, the local part without its `+tag`); the first in order among equally long.
    async fn pattern_destinations(&self, addr: &Address) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT a.local_part, a.destination FROM aliases a JOIN domains d ON d.id = a.domain_id \
             WHERE d.name = $1 AND (a.local_part LIKE '%*%' OR a.local_part LIKE '%?%') \
             ORDER BY a.local_part, a.destination",
        )
        .bind(&addr.domain)
        .fetch_all(&self.pool)
        .await?;
        let patterns = rows
            .iter()
            .map(|r| Ok((get::<String>(r, "local_part")?, get(r, "destination")?)))
            .collect::<Result<Vec<(String, String)>>>()?;
        let mut candidates = vec![addr.local.as_str()];
        if let Some((base, _)) = addr.local.split_once('+') {
            candidates.push(base);
        }
        for local in candidates {
            let best = patterns
                .iter()
                .filter(|(p, _)| pattern_matches(p, local))
                .map(|(p, _)| p)
                .max_by(|a, b| a.chars().count().cmp(&b.chars().count()).then(b.cmp(a)));
            if let Some(best) = best {
                return Ok(patterns
                    .iter()
                    .filter(|(p, _)| p == best)
                    .map(|(_, d)| d.clone())
                    .collect());
            }
        }
        Ok(Vec::new())
    }

    async fn alias_destinations(&self, domain: &str, local: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT a.destination FROM aliases a JOIN domains d ON d.id = a.domain_id \
             WHERE d.name = $1 AND a.local_part = $2 ORDER BY a.destination",
        )
        .bind(domain)
        .bind(local)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| get(r, "destination")).collect()
    }

    /// The user an address delivers to (exact, else without `+tag`): (id, enabled).
    async fn user_for_delivery(&self, addr: &Address) -> Result<Option<(i64, bool)>> {
        let mut candidates = vec![addr.local.as_str()];
        if let Some((base, _)) = addr.local.split_once('+') {
            candidates.push(base);
        }
        for local in candidates {
            let row = sqlx::query(
                "SELECT u.id, u.disabled FROM users u JOIN domains d ON d.id = u.domain_id \
                 WHERE d.name = $1 AND u.local_part = $2",
            )
            .bind(&addr.domain)
            .bind(local)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                return Ok(Some((get(&r, "id")?, get::<i64>(&r, "disabled")? == 0)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn patterns() {
        for (p, t) in [
            ("sales-*", "sales-"),
            ("sales-*", "sales-eu"),
            ("*-sales", "eu-sales"),
            ("a*b", "ab"),
            ("a*b", "axxb"),
            ("a*b", "abab"),
            ("a?b", "axb"),
            ("a?b", "aäb"),
            ("*", ""),
            ("**x*", "yyxzz"),
        ] {
            assert!(pattern_matches(p, t), "{p} {t}");
        }
        for (p, t) in [
            ("sales-*", "sales"),
            ("*-sales", "sales"),
            ("a*b", "abc"),
            ("a?b", "ab"),
            ("a?b", "axxb"),
            ("a", "ab"),
            ("", "a"),
        ] {
            assert!(!pattern_matches(p, t), "{p} {t}");
        }
        let long = "a".repeat(64);
        assert!(!pattern_matches("*a*a*a*a*a*a*a*a*b", &long));
    }
}
