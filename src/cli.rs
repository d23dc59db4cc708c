//! Command-line interface (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Postern: split-horizon authoritative DNS and a multi-domain mail server in one process.
#[derive(Debug, Parser)]
#[command(name = "postern", version, about)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "POSTERN_CONFIG",
        default_value = "postern.toml"
    )]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every configured service in this process until SIGTERM (SIGHUP reloads).
    Serve,
    /// Validate the configuration and every zone file, like named-checkconf and named-checkzone.
    Check,
    /// Manage hosted mail domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Manage mail users (passwords are read from stdin or a prompt, never from arguments).
    #[command(subcommand)]
    User(UserCmd),
    /// Manage aliases and catch-alls.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// DNS tools.
    #[command(subcommand)]
    Dns(DnsCmd),
    /// Manage administrators of the web UI and API.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Inspect and manage the outbound mail queue.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Convert a BIND9 named.conf (acl, view, zone, key statements) into Postern's [dns] section.
    ImportBind {
        /// The named.conf to read.
        named_conf: PathBuf,
    },
}

/// `postern domain ...`
#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Host mail for a domain.
    Add {
        /// Domain name, e.g. example.org.
        name: String,
    },
    /// List hosted domains.
    List,
    /// Remove a domain with all its users, mailboxes and aliases.
    Remove {
        /// Domain name.
        name: String,
    },
}

/// `postern user ...`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user; the password is read from stdin (first line) or prompted for.
    Add {
        /// The user's address, e.g. alice@example.org.
        address: String,
        /// Quota: bytes, or with a K/M/G/T suffix (1024-based); 0 is unlimited.
        #[arg(long, default_value = "0")]
        quota: String,
    },
    /// Set a user's password (read from stdin or prompted for).
    Passwd {
        /// The user's address.
        address: String,
    },
    /// List users, optionally of one domain.
    List {
        /// Only this domain.
        domain: Option<String>,
    },
    /// Remove a user with their mailboxes and messages.
    Remove {
        /// The user's address.
        address: String,
    },
}

/// `postern alias ...`
#[derive(Debug, Subcommand)]
pub enum AliasCmd {
    /// Send mail for SOURCE (an address, or @domain for the catch-all) also to DESTINATION.
    Add {
        /// Address in a hosted domain, or @domain.
        source: String,
        /// Any address, local or remote.
        destination: String,
    },
    /// List aliases, optionally of one domain.
    List {
        /// Only this domain.
        domain: Option<String>,
    },
    /// Remove one destination of SOURCE, or all of them.
    Remove {
        /// Address or @domain.
        source: String,
        /// Only this destination.
        destination: Option<String>,
    },
}

/// `postern admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Create an administrator; the password is read from stdin (first line) or prompted for.
    Add {
        /// Login name.
        name: String,
    },
    /// List administrators.
    List,
    /// Create an API bearer token for an administrator and print it (shown once).
    Token {
        /// The administrator's login name.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "")]
        label: String,
    },
}

/// `postern dns ...`
#[derive(Debug, Subcommand)]
pub enum DnsCmd {
    /// Print the mail records published for a hosted domain, as zone-file lines to paste where the
    /// domain's zone lives elsewhere.
    Records {
        /// The hosted domain.
        domain: String,
        /// Only the records of this view (the mail host's addresses differ per view).
        #[arg(long)]
        view: Option<String>,
    },
    /// Rotate a domain's DKIM keys, in two steps: the first run publishes a new key pair, the
    /// second (a day later, once caches have it) signs with it and retires the old pair. Keys
    /// retired more than a week ago are removed.
    RotateDkim {
        /// The hosted domain.
        domain: String,
    },
}

/// `postern queue ...`
#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// List queued deliveries with their attempts, next attempt and last error.
    List,
    /// Make an entry due now (the worker picks it up at its next scan).
    Retry {
        /// The entry's id, from `queue list`.
        id: i64,
    },
    /// Remove an entry without delivering it and without a bounce.
    Delete {
        /// The entry's id, from `queue list`.
        id: i64,
    },
}
