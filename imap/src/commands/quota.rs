//! GETQUOTA and GETQUOTAROOT (RFC 9208 §4.2-4.3): one quota root `""` per user, with the STORAGE
//! resource in KiB. Users without a limit have no quota root.

use imap_codec::imap_types::core::{AString, Vec1};
use imap_codec::imap_types::extensions::quota::{QuotaGet, Resource};
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::response::{Data, Response};

use crate::mail_store::MailStore;
use crate::response::data;
use crate::session::{no, Done, Outcome, Session};

impl<S: MailStore> Session<S> {
    async fn quota_data(&self) -> Result<Option<Response<'static>>, crate::session::Failure> {
        let address = self.require_user()?.address.to_string();
        let Some(user) = self.store.user(&address).await? else {
            return Ok(None);
        };
        if user.quota_bytes == 0 {
            return Ok(None);
        }
        let q = QuotaGet::new(
            Resource::Storage,
            (user.used_bytes.max(0) as u64).div_ceil(1024),
            (user.quota_bytes as u64) / 1024,
        );
        Ok(Some(data(Data::Quota {
            root: AString::try_from("")
                .unwrap_or_else(|_| AString::from(crate::response::atom("X"))),
            quotas: Vec1::from(q),
        })))
    }

    pub(crate) async fn get_quota(&mut self, root: &AString<'_>) -> Outcome {
        if !root.as_ref().is_empty() {
            return Err(no("No such quota root"));
        }
        match self.quota_data().await? {
            Some(q) => Ok(Done::ok("GETQUOTA completed").with(vec![q])),
            None => Err(no("No quota")),
        }
    }

    pub(crate) async fn get_quota_root(&mut self, m: &WireMailbox<'_>) -> Outcome {
        let mailbox = self.find_mailbox(m, false).await?;
        let quota = self.quota_data().await?;
        let roots = if quota.is_some() {
            vec![AString::try_from("").unwrap_or_else(|_| AString::from(crate::response::atom("X")))]
        } else {
            Vec::new()
        };
        let mut out = vec![data(Data::QuotaRoot {
            mailbox: self.wire_name(&mailbox.name),
            roots,
        })];
        out.extend(quota);
        Ok(Done::ok("GETQUOTAROOT completed").with(out))
    }
}
