//! `postern.toml`: one file for every service. Unknown keys and bad values are rejected at start with
//! the file, line and reason; `POSTERN_DATABASE_URL` overrides `database_url` so secrets can stay out
//! of the file.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config_spans::{Spans, Step};

/// Environment variable that overrides `database_url`.
pub const DATABASE_URL_ENV: &str = "POSTERN_DATABASE_URL";

/// Shortest command line `smtp.max_line_length` may allow: RFC 5321 §4.5.3.1.4 (512 octets with
/// CRLF).
pub const MIN_SMTP_LINE: usize = 512;
/// Longest command line the SMTP parser (smtp-proto) accepts.
pub const MAX_SMTP_LINE: usize = 4096;

/// A configuration error, formatted `file:line:column: reason` where the position is known.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite database, generated TLS keys and `listeners.json`; relative paths
    /// are resolved against the config file's directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER:PASS@HOST/DB`; default `sqlite://<data_dir>/postern.db`.
    pub database_url: Option<Spanned<String>>,
    /// Log filter: a level (`info`) or a tracing directive list (`info,postern_dns=debug`).
    #[serde(default = "default_log_level")]
    pub log_level: Spanned<String>,
    /// This server's mail host name (HELO name, certificate name, published MX target).
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Addresses each service listens on; a service with no address is off.
    #[serde(default)]
    pub listeners: Listeners,
    /// Certificate and key in PEM; without them a self-signed pair is created on first start.
    pub tls: Option<TlsFiles>,
    /// Admin web UI and API settings.
    #[serde(default)]
    pub admin: postern_admin_web::AdminConfig,
    /// Authoritative DNS: views, ACLs, TSIG keys and zones (see dns/README.md).
    #[serde(default)]
    pub dns: postern_dns::DnsConfig,
    /// ACME certificates for the host names, validated through our own DNS (DNS-01).
    pub acme: Option<crate::acme::AcmeConfig>,
    /// Mail DNS records and client settings published for every hosted domain.
    #[serde(default)]
    pub mail: crate::mail_dns::MailConfig,
    /// IMAP settings (`[imap]`).
    #[serde(default)]
    pub imap: postern_imap::ImapConfig,
    /// SMTP settings (`[smtp]`).
    #[serde(default)]
    pub smtp: postern_smtp::SmtpConfig,
    /// ManageSieve settings (`[managesieve]`).
    #[serde(default)]
    pub managesieve: postern_sieve::managesieve::ManageSieveConfig,
    /// Connection limits, timeouts and PROXY protocol sources of every TCP listener (`[net]`).
    #[serde(default = "default_net")]
    pub net: Spanned<postern_net::NetConfig>,
    /// Login limits shared by SMTP AUTH, IMAP and the admin UI (`[login]`).
    #[serde(default)]
    pub login: postern_store::LoginConfig,
}

fn default_net() -> Spanned<postern_net::NetConfig> {
    Spanned::new(0..0, postern_net::NetConfig::default())
}

/// Listen addresses per service. Port 0 picks a free port; the ports really bound are written to
/// `<data_dir>/listeners.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    /// DNS over UDP and TCP (same address for both).
    #[serde(default = "no_addrs")]
    pub dns: Addrs,
    /// SMTP MX, normally port 25.
    #[serde(default = "no_addrs")]
    pub smtp: Addrs,
    /// Submission with STARTTLS, normally port 587.
    #[serde(default = "no_addrs")]
    pub submission: Addrs,
    /// Submission over implicit TLS, normally port 465 (RFC 8314).
    #[serde(default = "no_addrs")]
    pub submissions: Addrs,
    /// IMAP with STARTTLS, normally port 143.
    #[serde(default = "no_addrs")]
    pub imap: Addrs,
    /// IMAP over implicit TLS, normally port 993.
    #[serde(default = "no_addrs")]
    pub imaps: Addrs,
    /// Admin web UI and API.
    #[serde(default = "no_addrs")]
    pub admin: Addrs,
    /// ManageSieve with STARTTLS, normally port 4190 (RFC 5804).
    #[serde(default = "no_addrs")]
    pub managesieve: Addrs,
}

/// A list of listen addresses with its position in the file.
pub type Addrs = Spanned<Vec<SocketAddr>>;

fn no_addrs() -> Addrs {
    Spanned::new(0..0, Vec::new())
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            dns: no_addrs(),
            smtp: no_addrs(),
            submission: no_addrs(),
            submissions: no_addrs(),
            imap: no_addrs(),
            imaps: no_addrs(),
            admin: no_addrs(),
            managesieve: no_addrs(),
        }
    }
}

impl Listeners {
    /// (service name, addresses) for every TCP service, in a fixed order.
    pub fn tcp_services(&self) -> [(&'static str, &Addrs); 8] {
        [
            ("dns", &self.dns),
            ("smtp", &self.smtp),
            ("submission", &self.submission),
            ("submissions", &self.submissions),
            ("imap", &self.imap),
            ("imaps", &self.imaps),
            ("admin", &self.admin),
            ("managesieve", &self.managesieve),
        ]
    }
}

/// PEM files of the server certificate chain and its private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_log_level() -> Spanned<String> {
    Spanned::new(0..0, "info".to_owned())
}

fn default_hostname() -> String {
    "localhost".to_owned()
}

/// A loaded configuration: the parsed file plus where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The parsed file, with relative paths resolved.
    pub config: Config,
    /// The file it came from.
    pub path: PathBuf,
    /// Directory relative paths in the file are resolved against (also `dns.zones_dir`).
    pub base_dir: PathBuf,
    /// The file's text, for positions of errors found later (`[dns]` cross-references).
    pub text: String,
}

impl Loaded {
    /// `error` with the file, line and column of what it is about, when it is a `[dns]`
    /// configuration error the file's text can place (a view, key or ACL named in it).
    pub fn locate_dns_error(&self, error: postern_dns::DnsError) -> anyhow::Error {
        match &error {
            postern_dns::DnsError::Config(message) => {
                match Spans::new(&self.text).dns_error(message) {
                    Some(span) => {
                        let (line, col) = line_col(&self.text, span.start);
                        ConfigError(format!("{}:{line}:{col}: {error}", self.path.display())).into()
                    }
                    None => error.into(),
                }
            }
            _ => error.into(),
        }
    }

    /// What mail clients are told: this configuration's host name and the public ports (from
    /// `mail`) of the services it has listening. A reload passes the new `[mail]` table to the
    /// running configuration, whose host name and listeners only a restart changes.
    pub fn client_settings(
        &self,
        mail: &crate::mail_dns::MailConfig,
    ) -> postern_admin_web::ClientSettings {
        let c = &self.config;
        let on = |addrs: &Addrs, port: u16| if addrs.get_ref().is_empty() { 0 } else { port };
        postern_admin_web::ClientSettings {
            hostname: c.hostname.clone(),
            imaps_port: on(&c.listeners.imaps, mail.ports.imaps),
            imap_port: on(&c.listeners.imap, mail.ports.imap),
            submissions_port: on(&c.listeners.submissions, mail.ports.submissions),
            submission_port: on(&c.listeners.submission, mail.ports.submission),
            mta_sts_mode: mail.mta_sts_mode.clone(),
            mta_sts_max_age: mail.mta_sts_max_age,
        }
    }

    /// The database URL in force: environment override, then the file, then the SQLite default.
    pub fn database_url(&self) -> String {
        if let Ok(url) = std::env::var(DATABASE_URL_ENV) {
            return url;
        }
        match &self.config.database_url {
            Some(url) => url.get_ref().clone(),
            None => format!(
                "sqlite://{}",
                self.config.data_dir.join("postern.db").display()
            ),
        }
    }
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
    parse(&text, path)
}

/// Parses and validates configuration text that came from `path`.
pub fn parse(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    let at = |span: Option<std::ops::Range<usize>>, msg: &str| {
        let pos = span
            .map(|s| line_col(text, s.start))
            .map(|(l, c)| format!(":{l}:{c}"))
            .unwrap_or_default();
        ConfigError(format!("{}{pos}: {msg}", path.display()))
    };
    let mut config: Config = toml::from_str(text).map_err(|e| at(e.span(), e.message()))?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_dir = if base_dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base_dir
    };

    if let Err(e) = tracing_subscriber::EnvFilter::try_new(config.log_level.get_ref()) {
        return Err(at(
            Some(config.log_level.span()),
            &format!("invalid log_level: {e}"),
        ));
    }
    if let Some(url) = &config.database_url {
        if url.get_ref().parse::<postern_store::Backend>().is_err() {
            return Err(at(
                Some(url.span()),
                "database_url must start with sqlite:// or postgres://",
            ));
        }
    }
    let spans = Spans::new(text);
    if config.hostname.is_empty() || postern_store::normalize_domain(&config.hostname).is_err() {
        return Err(at(
            spans.value(&[Step::Key("hostname")]),
            &format!("hostname {:?} is not a valid host name", config.hostname),
        ));
    }
    if let Err((key, e)) = config.mail.validate() {
        return Err(at(spans.value(&[Step::Key("mail"), Step::Key(key)]), &e));
    }
    let line = config.smtp.max_line_length;
    if !(MIN_SMTP_LINE..=MAX_SMTP_LINE).contains(&line) {
        return Err(at(
            spans.value(&[Step::Key("smtp"), Step::Key("max_line_length")]),
            &format!(
                "smtp.max_line_length = {line}: must be {MIN_SMTP_LINE} to {MAX_SMTP_LINE} bytes \
                 (RFC 5321 §4.5.3.1.4 needs 512 for commands; AUTH lines need more)"
            ),
        ));
    }
    // `[mail.views]` names DNS views; a typo would silently publish no host addresses there.
    if !config.dns.view.is_empty() {
        for name in config.mail.views.keys() {
            if !config.dns.view.iter().any(|v| &v.name == name) {
                let known: Vec<&str> = config.dns.view.iter().map(|v| v.name.as_str()).collect();
                return Err(at(
                    spans.key(&["mail", "views"], name),
                    &format!(
                        "mail.views.{name}: there is no [[dns.view]] named {name:?} (views: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    for service in config.net.get_ref().proxy_protocol.keys() {
        if !postern_net::NetConfig::SERVICES.contains(&service.as_str()) {
            return Err(at(
                Some(config.net.span()),
                &format!(
                    "net.proxy_protocol: unknown service {service:?} (one of {})",
                    postern_net::NetConfig::SERVICES.join(", ")
                ),
            ));
        }
    }
    let mut seen: HashMap<SocketAddr, &str> = HashMap::new();
    for (service, addrs) in config.listeners.tcp_services() {
        for addr in addrs.get_ref() {
            if addr.port() == 0 {
                continue;
            }
            if let Some(other) = seen.insert(*addr, service) {
                return Err(at(
                    Some(addrs.span()),
                    &format!("listeners.{service}: {addr} is already used by listeners.{other}"),
                ));
            }
        }
    }
    config.data_dir = base_dir.join(&config.data_dir);
    if let Some(tls) = &mut config.tls {
        tls.cert = base_dir.join(&tls.cert);
        tls.key = base_dir.join(&tls.key);
    }
    if let Some(ca) = &mut config.smtp.outbound_ca_file {
        *ca = base_dir.join(&*ca);
    }
    Ok(Loaded {
        config,
        path: path.to_path_buf(),
        base_dir,
        text: text.to_owned(),
    })
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, Path::new("/etc/postern.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn minimal_config_has_defaults() {
        let l = parse("", Path::new("/srv/postern.toml")).unwrap();
        assert_eq!(l.config.data_dir, PathBuf::from("/srv/data"));
        assert_eq!(l.config.log_level.get_ref(), "info");
        assert!(l.config.listeners.smtp.get_ref().is_empty());
        assert!(l.config.tls.is_none());
        assert_eq!(l.config.login, postern_store::LoginConfig::default());
    }

    #[test]
    fn login_limits_are_one_table() {
        let l = parse(
            "[login]\nfailures_per_address = 5\naccount_attempts_per_minute = 2\n",
            Path::new("/srv/p.toml"),
        )
        .unwrap();
        assert_eq!(l.config.login.failures_per_address, 5);
        assert_eq!(l.config.login.account_attempts_per_minute, 2);
        assert_eq!(l.config.login.window_secs, 900);
        // The old per-service keys are gone.
        let e = err("[smtp]\nauth_max_failures_per_address = 3\n");
        assert!(e.contains("auth_max_failures_per_address"), "{e}");
        let e = err("[imap]\nauth_failures_per_address = 3\n");
        assert!(e.contains("auth_failures_per_address"), "{e}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let l = parse(
            "data_dir = \"var\"\n[tls]\ncert = \"c.pem\"\nkey = \"/abs/k.pem\"\n",
            Path::new("/srv/p.toml"),
        )
        .unwrap();
        assert_eq!(l.config.data_dir, PathBuf::from("/srv/var"));
        let tls = l.config.tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("/srv/c.pem"));
        assert_eq!(tls.key, PathBuf::from("/abs/k.pem"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_line() {
        let e = err("log_level = \"info\"\n\n[listeners]\nsmtpp = [\"127.0.0.1:25\"]\n");
        assert!(
            e.starts_with("/etc/postern.toml:4:1: unknown field `smtpp`"),
            "{e}"
        );
        let e = err("colour = 1\n");
        assert!(
            e.starts_with("/etc/postern.toml:1:1: unknown field `colour`"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_rejected_with_line() {
        let e = err("\n[listeners]\nsmtp = [\"127.0.0.1:99999\"]\n");
        assert!(e.starts_with("/etc/postern.toml:3:"), "{e}");
        assert!(e.contains("invalid socket address"), "{e}");
        let e = err("log_level = \"loud[\"\n");
        assert!(
            e.starts_with("/etc/postern.toml:1:13: invalid log_level"),
            "{e}"
        );
        let e = err("\n\ndatabase_url = \"mysql://x\"\n");
        assert!(
            e.starts_with("/etc/postern.toml:3:16: database_url must start with"),
            "{e}"
        );
        let e = err("\nhostname = \"not a host\"\n");
        assert!(
            e.starts_with(
                "/etc/postern.toml:2:12: hostname \"not a host\" is not a valid host name"
            ),
            "{e}"
        );
        let e = err("[listeners]\nsmtp = [\"127.0.0.1:2525\"]\nimap = [\"127.0.0.1:2525\"]\n");
        assert!(e.starts_with("/etc/postern.toml:3:8: listeners.imap: 127.0.0.1:2525 is already used by listeners.smtp"), "{e}");
        let e = err("[tls]\ncert = \"c.pem\"\n");
        assert!(e.contains("missing field `key`"), "{e}");
    }

    #[test]
    fn checks_after_parsing_have_positions() {
        let e = err("[mail]\nspf = \"v=spf1 mx -all\"\ndmarc_policy = \"drop\"\n");
        assert!(
            e.starts_with("/etc/postern.toml:3:16: mail.dmarc_policy \"drop\""),
            "{e}"
        );
        let e = err("[mail]\nmta_sts_mode = \"on\"\n");
        assert!(
            e.starts_with("/etc/postern.toml:2:16: mail.mta_sts_mode"),
            "{e}"
        );
        let e = err("[mail]\n\ntls_rpt_rua = \"x@y\"\n");
        assert!(
            e.starts_with("/etc/postern.toml:3:15: mail.tls_rpt_rua"),
            "{e}"
        );
        for bad in [100, 511, 4097] {
            let e = err(&format!("[smtp]\nmax_line_length = {bad}\n"));
            assert!(
                e.starts_with(&format!(
                    "/etc/postern.toml:2:19: smtp.max_line_length = {bad}: must be 512 to 4096"
                )),
                "{e}"
            );
        }
        for good in [512, 1000, 4096] {
            parse(
                &format!("[smtp]\nmax_line_length = {good}\n"),
                Path::new("p.toml"),
            )
            .unwrap();
        }
        let views = "[[dns.view]]\nname = \"inside\"\n[mail.views.inside]\naddresses = []\n";
        parse(views, Path::new("p.toml")).unwrap();
        let e = err(&format!("{views}[mail.views.outside]\naddresses = []\n"));
        assert!(
            e.starts_with("/etc/postern.toml:5:13: mail.views.outside: there is no [[dns.view]] named \"outside\" (views: inside)"),
            "{e}"
        );
    }

    #[test]
    fn port_zero_may_repeat() {
        parse(
            "[listeners]\nsmtp = [\"127.0.0.1:0\"]\nimap = [\"127.0.0.1:0\"]\n",
            Path::new("p.toml"),
        )
        .unwrap();
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
