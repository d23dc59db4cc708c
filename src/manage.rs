//! The management commands (`domain`, `user`, `alias`): thin wrappers over the store that print
//! results for humans and never take a password from the command line.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use postern_store::Store;

use crate::cli::{AliasCmd, DomainCmd, UserCmd};

/// Runs `postern domain ...`.
pub async fn domain(store: &Store, cmd: DomainCmd) -> anyhow::Result<()> {
    match cmd {
        DomainCmd::Add { name } => {
            let d = store.add_domain(&name).await?;
            println!("added domain {}", d.name);
        }
        DomainCmd::List => {
            for d in store.list_domains().await? {
                println!("{}", d.name);
            }
        }
        DomainCmd::Remove { name } => {
            store.remove_domain(&name).await?;
            println!("removed domain {name}");
        }
    }
    Ok(())
}

/// Runs `postern user ...`.
pub async fn user(store: &Store, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add { address, quota } => {
            let quota = parse_size(&quota)?;
            let password = read_password()?;
            let u = store.add_user(&address, &password, quota).await?;
            println!("added user {}", u.address);
        }
        UserCmd::Passwd { address } => {
            let password = read_password()?;
            store.set_password(&address, &password).await?;
            println!("password changed for {address}");
        }
        UserCmd::List { domain } => {
            for u in store.list_users(domain.as_deref()).await? {
                let quota = if u.quota_bytes == 0 {
                    "unlimited".to_owned()
                } else {
                    u.quota_bytes.to_string()
                };
                let state = if u.disabled { " disabled" } else { "" };
                println!(
                    "{}\tused {} of {quota} bytes{state}",
                    u.address, u.used_bytes
                );
            }
        }
        UserCmd::Remove { address } => {
            store.remove_user(&address).await?;
            println!("removed user {address}");
        }
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
            println!("added alias {} -> {}", a.source, a.destination);
        }
        AliasCmd::List { domain } => {
            for a in store.list_aliases(domain.as_deref()).await? {
                println!("{}\t{}", a.source, a.destination);
            }
        }
        AliasCmd::Remove {
            source,
            destination,
        } => {
            store.remove_alias(&source, destination.as_deref()).await?;
            println!("removed alias {source}");
        }
    }
    Ok(())
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

/// Parses `1024`, `500K`, `20M`, `2G`, `1T` (1024-based) into bytes.
fn parse_size(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => bail!("size {s:?}: unknown unit {c:?} (use K, M, G or T)"),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: i64 = digits
        .parse()
        .with_context(|| format!("size {s:?} is not a number"))?;
    n.checked_mul(1 << shift)
        .filter(|v| *v >= 0)
        .with_context(|| format!("size {s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("1500").unwrap(), 1500);
        assert_eq!(parse_size("2k").unwrap(), 2048);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        for bad in ["", "G", "1X", "-1", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
