//! The `postern` binary: command-line entry point and the wiring of every service into one process.

mod acme;
mod backup;
mod cli;
mod config;
mod config_spans;
mod dns_service;
mod dnssec_keys;
mod events;
mod import;
mod logging;
mod mail_dns;
mod manage;
mod metrics;
mod node_id;
mod output;
mod reload;
mod serve;
mod sieve_cli;
mod tls;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Command};
use output::{out, outln};

fn main() -> ExitCode {
    return_large_allocations_to_the_os();
    postern_dns::limit_allocator_arenas();
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
        // The reader of our output is gone (`| head`): nothing is wrong, stop quietly.
        Err(e) if e.is::<output::StdoutClosed>() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc keeps freed memory in per-thread arenas and raises its mmap threshold as it goes, so each
/// thread that ever ran an Argon2 hash (19 MiB work area) would keep that much resident: hundreds of
/// MiB after a burst of logins. Serving every allocation of 128 KiB or more from mmap, with the
/// threshold fixed, returns such blocks to the OS when freed.
fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = || load_config(&cli.config);
    match cli.command {
        Command::Serve => {
            let signals = serve::Signals::install()?;
            let loaded = config()?;
            let recent = events::RecentEvents::default();
            let log = logging::init(loaded.config.log_level.get_ref(), recent.clone());
            serve::run(loaded, log, recent, signals).await?;
        }
        Command::Check => {
            let loaded = config()?;
            let report = postern_dns::check(&loaded.config.dns, &loaded.base_dir)
                .map_err(|e| loaded.locate_dns_error(e))?;
            outln!("{report}");
            if !report.is_ok() {
                let (errors, warnings) = report.counts();
                eprintln!(
                    "{}: {errors} error(s), {warnings} warning(s) in zones",
                    loaded.path.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            outln!("{}: configuration OK", loaded.path.display());
        }
        Command::ImportBind { named_conf } => {
            let text = std::fs::read_to_string(&named_conf)
                .with_context(|| format!("reading {}", named_conf.display()))?;
            let (toml, warnings) = postern_dns::import_bind(&text)?;
            for w in &warnings {
                eprintln!("{}: {w}", named_conf.display());
            }
            out!("{toml}");
        }
        Command::Domain(cmd) => manage::domain(&open_store(&config()?).await?, cmd).await?,
        Command::User(cmd) => manage::user(&open_store(&config()?).await?, cmd).await?,
        Command::Alias(cmd) => manage::alias(&open_store(&config()?).await?, cmd).await?,
        Command::Admin(cmd) => manage::admin(&open_store(&config()?).await?, cmd).await?,
        Command::Import(cmd) => {
            let config = config()?;
            let max_size = u64::from(config.config.imap.max_message_size);
            import::run(&open_store(&config).await?, cmd, max_size).await?
        }
        Command::Backup {
            dir, verify: true, ..
        } => return backup::verify(&dir),
        Command::Backup { dir, level, .. } => {
            return backup::backup(&open_store(&config()?).await?, &dir, level).await
        }
        Command::Restore { dir } => {
            return backup::restore(&open_store(&config()?).await?, &dir).await
        }
        Command::Queue(cmd) => manage::queue(&open_store(&config()?).await?, cmd).await?,
        Command::Sieve(cmd) => sieve_cli::run(&open_store(&config()?).await?, cmd).await?,
        Command::Dns(cmd) => {
            let loaded = config()?;
            manage::dns(&open_store(&loaded).await?, &loaded, cmd).await?
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
