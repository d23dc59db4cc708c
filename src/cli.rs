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
    /// Import a user's mail from Maildir++, mbox or another IMAP server, or a whole Mailu
    /// installation; a second run skips what it imported before.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Write a consistent backup of the whole store into a new directory under DIR while the
    /// server keeps running (or, with --verify, check every backup in DIR).
    Backup {
        /// The directory of backups (created if missing); each backup is a subdirectory.
        dir: PathBuf,
        /// Dump level: 0 copies every message; N copies only the messages that the newest
        /// backup of a lower level (and the ones it builds on) lack.
        #[arg(long, default_value_t = 0, conflicts_with = "verify")]
        level: u32,
        /// Check every file of every backup in DIR against its SHA-256 instead (no database
        /// needed); names each damaged, truncated or missing item.
        #[arg(long)]
        verify: bool,
    },
    /// Restore the newest backup in DIR (or the backup DIR is) into the configured database,
    /// which must be new and empty; SQLite and PostgreSQL backups restore into either.
    Restore {
        /// The directory of backups, or one backup's directory.
        dir: PathBuf,
    },
    /// Manage users' Sieve filter scripts (RFC 5228); the active one runs at delivery.
    #[command(subcommand)]
    Sieve(SieveCmd),
}

/// `postern sieve ...`
#[derive(Debug, Subcommand)]
pub enum SieveCmd {
    /// List ADDRESS's scripts; the active one is marked.
    List {
        /// The user's address.
        address: String,
    },
    /// Store FILE as ADDRESS's script NAME after checking that it compiles.
    Put {
        /// The user's address.
        address: String,
        /// The script's name.
        name: String,
        /// The script file (`-` for stdin).
        file: PathBuf,
        /// Also make it the active script.
        #[arg(long)]
        activate: bool,
    },
    /// Print ADDRESS's script NAME.
    Get {
        /// The user's address.
        address: String,
        /// The script's name.
        name: String,
    },
    /// Make NAME ADDRESS's active script; without NAME no script is active.
    Activate {
        /// The user's address.
        address: String,
        /// The script's name.
        name: Option<String>,
    },
    /// Delete ADDRESS's script NAME (not the active one).
    Delete {
        /// The user's address.
        address: String,
        /// The script's name.
        name: String,
    },
}

/// `postern import ...`
#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// A Dovecot/Courier Maildir++ tree (INBOX with `.Sent`, `.a.b` ... folders).
    Maildir {
        /// The user's address.
        address: String,
        /// The Maildir root (the directory holding cur/, new/ and the .Folder directories).
        path: PathBuf,
        /// Print what would be imported and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// An mbox file, or a directory of them (one folder per file; `X.sbd/` or `X/` nests).
    Mbox {
        /// The user's address.
        address: String,
        /// The mbox file or directory.
        path: PathBuf,
        /// Print what would be imported and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The files are mboxo (only `>From ` is unquoted) rather than mboxrd.
        #[arg(long)]
        mboxo: bool,
    },
    /// A Mailu installation: domains, users (their password hashes keep working), aliases,
    /// forward and auto-reply settings, Sieve scripts, DKIM keys and every message.
    Mailu(MailuArgs),
    /// Every folder of an account on another IMAP server, with flags and internal dates; the
    /// password is read from standard input. A second run fetches only new messages.
    Imap(ImapArgs),
}

/// `postern import imap`: the source account and where its mail goes.
#[derive(Debug, clap::Args)]
pub struct ImapArgs {
    /// The source account: `imaps://user@host[:port]`, or `imap://...` (STARTTLS when offered).
    #[arg(long)]
    pub from: String,
    /// The Postern user's address.
    pub address: String,
    /// Trust the certificates in this PEM file instead of the Web PKI roots.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Print what would be imported and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `postern import mailu`: where the Mailu data is.
#[derive(Debug, clap::Args)]
pub struct MailuArgs {
    /// Mailu's data root (the `/mailu` of its docker-compose.yml), holding data/main.db, mail/
    /// and dkim/.
    #[arg(required_unless_present_all = ["db", "mail", "dkim"])]
    pub path: Option<PathBuf>,
    /// The configuration database (default: PATH/data/main.db).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// The Maildirs, one per address (default: PATH/mail).
    #[arg(long)]
    pub mail: Option<PathBuf>,
    /// The DKIM keys, `<domain>.<selector>.key` (default: PATH/dkim).
    #[arg(long)]
    pub dkim: Option<PathBuf>,
    /// Print what would be imported and change nothing.
    #[arg(long)]
    pub dry_run: bool,
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
    /// Set a user's quota.
    Quota {
        /// The user's address.
        address: String,
        /// Bytes, or with a K/M/G/T suffix (1024-based); 0 is unlimited.
        size: String,
    },
    /// Disable a user: no login, no mail received (mail is kept).
    Disable {
        /// The user's address.
        address: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user's address.
        address: String,
    },
    /// Addresses a user may send as (MAIL FROM and From:) besides their own, +tag and aliases.
    #[command(subcommand, name = "sendas")]
    SendAs(SendAsCmd),
    /// Show or set a user's vacation reply (without options: show it and the generated Sieve).
    Vacation {
        /// The user's address.
        address: String,
        /// Turn the reply on.
        #[arg(long, conflicts_with = "off")]
        on: bool,
        /// Turn the reply off (its text is kept).
        #[arg(long)]
        off: bool,
        /// The reply's subject.
        #[arg(long)]
        subject: Option<String>,
        /// The reply's text.
        #[arg(long, conflicts_with = "body_file")]
        body: Option<String>,
        /// Read the reply's text from a file (`-`: standard input).
        #[arg(long)]
        body_file: Option<std::path::PathBuf>,
        /// First day of the reply (YYYY-MM-DD; empty: no limit).
        #[arg(long)]
        start: Option<String>,
        /// Last day of the reply (YYYY-MM-DD; empty: no limit).
        #[arg(long)]
        end: Option<String>,
    },
    /// Show or set a user's forwarding (without options: show it and the generated Sieve).
    Forward {
        /// The user's address.
        address: String,
        /// Forward to this address, or these separated by commas (turns forwarding on).
        #[arg(long, conflicts_with = "off")]
        to: Option<String>,
        /// Turn forwarding off (the address is kept).
        #[arg(long)]
        off: bool,
        /// Keep a copy in the mailbox (the default).
        #[arg(long, conflicts_with = "no_keep")]
        keep: bool,
        /// Keep no copy: mail only goes to the forwarding address.
        #[arg(long)]
        no_keep: bool,
    },
}

/// `postern user sendas ...`
#[derive(Debug, Subcommand)]
pub enum SendAsCmd {
    /// Let USER send as ADDRESS.
    Add {
        /// The user's address.
        user: String,
        /// The address they may use as sender.
        address: String,
    },
    /// Take ADDRESS off USER's list.
    Remove {
        /// The user's address.
        user: String,
        /// The address.
        address: String,
    },
    /// List the addresses USER may send as (besides their own and their aliases).
    List {
        /// The user's address.
        user: String,
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
    /// Set an administrator's password (read from stdin or prompted for); ends their browser
    /// sessions.
    Passwd {
        /// Login name.
        name: String,
    },
    /// Remove an administrator with their sessions and tokens (not the last one).
    Remove {
        /// Login name.
        name: String,
    },
    /// Manage API bearer tokens: `add`, `list`, `revoke`. `admin token NAME --label L` (without a
    /// subcommand) creates a full-rights token, as `admin token add NAME --label L` does.
    #[command(args_conflicts_with_subcommands = true)]
    Token {
        /// What to do.
        #[command(subcommand)]
        cmd: Option<TokenCmd>,
        /// The administrator's login name (short form of `add`).
        name: Option<String>,
        /// What the token is for.
        #[arg(long, default_value = "")]
        label: String,
    },
}

/// `postern admin token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create an API bearer token for an administrator and print it (shown once).
    Add {
        /// The administrator's login name.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "")]
        label: String,
        /// `admin` (everything), `read` (GET requests only) or `metrics` (only /metrics).
        #[arg(long, default_value = "admin")]
        scope: String,
        /// Lifetime, e.g. `30d`, `12h`, `2w`; without it the token never expires.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens: id, administrator, scope, created, last used, expiry, label (never the secret).
    List,
    /// Revoke a token by its id (from `admin token list`).
    Revoke {
        /// The token's id.
        id: String,
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
    /// Print the DS records of a signed zone for its parent zone (creating the zone's first key
    /// if it has none yet).
    Ds {
        /// The signed zone.
        zone: String,
    },
    /// Manage a signed zone's DNSSEC keys (kept in the store, shared by every view and node).
    #[command(subcommand)]
    Key(DnsKeyCmd),
}

/// `postern dns key ...`
#[derive(Debug, Subcommand)]
pub enum DnsKeyCmd {
    /// List a zone's keys: tag, role, algorithm, state, creation time and DNSKEY record.
    List {
        /// The signed zone.
        zone: String,
    },
    /// Add a key to a zone.
    Generate {
        /// The signed zone.
        zone: String,
        /// `ecdsa` (ECDSA P-256, algorithm 13) or `ed25519` (algorithm 15).
        #[arg(long, default_value = "ecdsa")]
        algorithm: String,
        /// `csk` (signs everything), `ksk` (signs the DNSKEY RRset) or `zsk` (signs the data).
        #[arg(long, default_value = "csk")]
        role: String,
        /// Publish the key in the DNSKEY RRset without signing with it yet.
        #[arg(long)]
        publish_only: bool,
    },
    /// Roll the keys of a role over, one step per run: publish a new key; sign with it and
    /// retire the old one; remove the old one. Wait for caches (DNSKEY TTL; for a KSK or CSK also
    /// the parent's DS TTL, after adding the new DS there) between runs.
    Rollover {
        /// The signed zone.
        zone: String,
        /// `zsk` (pre-publication), `ksk` or `csk` (double DS).
        #[arg(long, default_value = "csk")]
        role: String,
    },
    /// Remove a key from the zone at once (no rollover).
    Remove {
        /// The signed zone.
        zone: String,
        /// The key's tag, from `dns key list`.
        tag: u16,
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
