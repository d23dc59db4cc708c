//! `postern sieve ...`: users' Sieve scripts from the command line (the same store API the
//! ManageSieve server uses); scripts are compile-checked before they are stored.

use std::io::Read;

use anyhow::{bail, Context};
use postern_store::Store;

use crate::cli::SieveCmd;
use crate::output::{out, outln};

/// Runs `postern sieve ...`.
pub async fn run(store: &Store, cmd: SieveCmd) -> anyhow::Result<()> {
    match cmd {
        SieveCmd::List { address } => {
            let user = user_id(store, &address).await?;
            for s in store.list_sieve_scripts(user).await? {
                let mark = if s.active { "  (active)" } else { "" };
                outln!("{}{mark}", s.name);
            }
        }
        SieveCmd::Put {
            address,
            name,
            file,
            activate,
        } => {
            let user = user_id(store, &address).await?;
            let mut content = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut content)?;
            } else {
                content = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
            }
            if let Err(e) = postern_sieve::compile(&content) {
                bail!("{}: {e}", file.display());
            }
            store.put_sieve_script(user, &name, &content).await?;
            if activate {
                store.set_active_sieve_script(user, Some(&name)).await?;
            }
            outln!(
                "stored script {name} for {address}{}",
                if activate { " (active)" } else { "" }
            );
        }
        SieveCmd::Get { address, name } => {
            let user = user_id(store, &address).await?;
            match store.sieve_script(user, &name).await? {
                Some(s) => out!("{}", s.content),
                None => bail!("{address} has no script {name}"),
            }
        }
        SieveCmd::Activate { address, name } => {
            let user = user_id(store, &address).await?;
            store.set_active_sieve_script(user, name.as_deref()).await?;
            match name {
                Some(name) => outln!("{name} is the active script of {address}"),
                None => outln!("{address} has no active script"),
            }
        }
        SieveCmd::Delete { address, name } => {
            let user = user_id(store, &address).await?;
            store.delete_sieve_script(user, &name).await?;
            outln!("deleted script {name} of {address}");
        }
    }
    Ok(())
}

async fn user_id(store: &Store, address: &str) -> anyhow::Result<i64> {
    match store.user(address).await? {
        Some(user) => Ok(user.id),
        None => bail!("no user {address}"),
    }
}
