//! The `postern` binary: command-line entry point and the wiring of every service into one process.

mod acme;
mod cli;
mod config;
mod events;
mod logging;
mod mail_dns;
mod manage;
mod serve;
mod tls;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let loaded = load_config(&cli.config)?;
    match cli.command {
        Command::Serve => {
            let recent = events::RecentEvents::default();
            let log = logging::init(loaded.config.log_level.get_ref(), recent.clone());
            serve::run(loaded, log, recent).await?;
        }
        Command::Check => {
            println!("{}: configuration OK", loaded.path.display());
        }
        Command::Domain(cmd) => manage::domain(&open_store(&loaded).await?, cmd).await?,
        Command::User(cmd) => manage::user(&open_store(&loaded).await?, cmd).await?,
        Command::Alias(cmd) => manage::alias(&open_store(&loaded).await?, cmd).await?,
        Command::Admin(cmd) => manage::admin(&open_store(&loaded).await?, cmd).await?,
        Command::Dns(cmd) => manage::dns(&open_store(&loaded).await?, &loaded, cmd).await?,
        Command::Queue(cmd) => manage::queue(&open_store(&loaded).await?, cmd).await?,
        Command::ImportBind { named_conf } => {
            anyhow::bail!(
                "{}: importing BIND configuration needs the DNS service",
                named_conf.display()
            )
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_config(path: &Path) -> anyhow::Result<config::Loaded> {
    Ok(config::load(path)?)
}

async fn open_store(loaded: &config::Loaded) -> anyhow::Result<postern_store::Store> {
    std::fs::create_dir_all(&loaded.config.data_dir)
        .with_context(|| format!("creating data_dir {}", loaded.config.data_dir.display()))?;
    Ok(postern_store::Store::open(&loaded.database_url()).await?)
}
