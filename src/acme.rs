//! ACME (RFC 8555) certificates for the mail and admin host names, obtained with the DNS-01
//! challenge (RFC 8555 §8.4) answered by Postern's own DNS: the challenge TXT record is added as a
//! managed record of the configured view, so no port 80 is needed. Certificates are written to
//! `<data_dir>/acme/<name>/` and swapped into every TLS listener without a restart; a background
//! task renews them before they expire.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use postern_store::Store;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::tls::Certificates;

/// The `[acme]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The ACME directory URL, e.g. `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory: String,
    /// Contact URLs for the account, e.g. `["mailto:hostmaster@example.org"]`.
    #[serde(default)]
    pub contact: Vec<String>,
    /// Names on the certificate; default: `hostname`.
    #[serde(default)]
    pub names: Vec<String>,
    /// The DNS view that answers the CA's validation queries (the public one).
    #[serde(default = "default_view")]
    pub view: String,
    /// A PEM root to trust for the ACME server (for test CAs); default: the public web roots.
    pub ca_root: Option<PathBuf>,
    /// Renew when the certificate expires within this many days.
    #[serde(default = "default_renew_days")]
    pub renew_before_days: u32,
}

fn default_view() -> String {
    "external".to_owned()
}

fn default_renew_days() -> u32 {
    30
}

/// How long to wait for our DNS to serve a freshly stored challenge record.
const PUBLISH_WAIT: Duration = Duration::from_secs(2);

/// Directory holding the certificate for `names` (named after the first name).
pub fn cert_dir(data_dir: &Path, names: &[String]) -> PathBuf {
    data_dir
        .join("acme")
        .join(names.first().map(String::as_str).unwrap_or("default"))
}

async fn account(cfg: &AcmeConfig, data_dir: &Path) -> anyhow::Result<Account> {
    let builder = || -> anyhow::Result<_> {
        Ok(match &cfg.ca_root {
            Some(root) => Account::builder_with_root(root)?,
            None => Account::builder()?,
        })
    };
    let path = data_dir.join("acme").join("account.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let creds: AccountCredentials =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        return Ok(builder()?.from_credentials(creds).await?);
    }
    let contact: Vec<&str> = cfg.contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contact,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, creds) = builder()?.create(&new, cfg.directory.clone(), None).await?;
    std::fs::create_dir_all(path.parent().unwrap_or(data_dir))?;
    crate::tls::write_private(&path, serde_json::to_string(&creds)?.as_bytes())?;
    tracing::info!(directory = %cfg.directory, "created ACME account");
    Ok(account)
}

/// Obtains a certificate for `names` and installs it. Challenge records are removed afterwards,
/// whether the order succeeded or not.
pub async fn obtain(
    store: &Store,
    certs: &Certificates,
    cfg: &AcmeConfig,
    names: &[String],
    data_dir: &Path,
) -> anyhow::Result<()> {
    let account = account(cfg, data_dir).await?;
    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut published = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => bail!("authorization is {other:?}"),
            }
            let mut challenge = authz
                .challenge(ChallengeType::Dns01)
                .context("the CA offers no dns-01 challenge")?;
            let name = format!("_acme-challenge.{}", challenge.identifier());
            let value = challenge.key_authorization().dns_value();
            let record = store
                .add_dns_record(&cfg.view, &name, "TXT", 60, &format!("\"{value}\""))
                .await?;
            published.push(record.id);
            tokio::time::sleep(PUBLISH_WAIT).await;
            challenge.set_ready().await?;
        }
        let retry = RetryPolicy::default().timeout(Duration::from_secs(120));
        let status = order.poll_ready(&retry).await?;
        if status != OrderStatus::Ready {
            bail!("the ACME order is {status:?}, not ready");
        }
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key)?;
        order.finalize_csr(csr.der()).await?;
        let chain = order.poll_certificate(&retry).await?;
        Ok((chain, key.serialize_pem()))
    }
    .await;
    for id in published {
        if let Err(e) = store.remove_dns_record(id).await {
            tracing::warn!(error = %e, "could not remove an ACME challenge record");
        }
    }
    let (chain, key) = result?;
    let dir = cert_dir(data_dir, names);
    std::fs::create_dir_all(&dir)?;
    crate::tls::write_private(&dir.join("key.pem"), key.as_bytes())?;
    std::fs::write(dir.join("cert.pem"), chain)?;
    certs.reload_acme(data_dir)?;
    tracing::info!(names = ?names, "installed a certificate from ACME");
    Ok(())
}

/// Keeps the certificate current: obtains it if missing or expiring within
/// `renew_before_days`, checks twice a day, retries hourly after a failure.
pub async fn run(
    store: Store,
    certs: Certificates,
    cfg: AcmeConfig,
    names: Vec<String>,
    data_dir: PathBuf,
    shutdown: CancellationToken,
) {
    let renew_before = i64::from(cfg.renew_before_days) * 86400;
    loop {
        let expiry = crate::tls::expiry(&cert_dir(&data_dir, &names).join("cert.pem"));
        let due = expiry.is_none_or(|t| t - postern_store::unix_now() < renew_before);
        let wait = if !due {
            Duration::from_secs(12 * 3600)
        } else {
            match obtain(&store, &certs, &cfg, &names, &data_dir).await {
                Ok(()) => Duration::from_secs(12 * 3600),
                Err(e) => {
                    tracing::error!(
                        "ACME certificate for {names:?} failed, retrying in an hour: {e:#}"
                    );
                    Duration::from_secs(3600)
                }
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
