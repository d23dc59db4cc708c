//! CAPABILITY (RFC 3501 §7.2.1): what the greeting, CAPABILITY and a successful login announce.

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::response::Capability;

use super::Session;
use crate::mail_store::MailStore;
use crate::response::atom;

impl<S: MailStore> Session<S> {
    /// CAPABILITY (RFC 3501 §7.2.1), depending on TLS and authentication state.
    pub(crate) fn capabilities(&self) -> Vec1<Capability<'static>> {
        let mut caps = vec!["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"];
        if self.user.is_none() {
            if !self.tls {
                caps.push("STARTTLS");
            }
            if self.login_disabled() {
                caps.push("LOGINDISABLED");
            } else {
                caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"]);
            }
        } else {
            caps.extend([
                "NAMESPACE",
                "UNSELECT",
                "UIDPLUS",
                "BINARY",
                "MULTIAPPEND",
                "CATENATE",
                "COMPRESS=DEFLATE",
                "MOVE",
                "CHILDREN",
                "SPECIAL-USE",
                "LIST-EXTENDED",
                "LIST-STATUS",
                "CONDSTORE",
                "QRESYNC",
                "QUOTA",
                "QUOTA=RES-STORAGE",
                "STATUS=SIZE",
                "UTF8=ACCEPT",
                "ESEARCH",
                "SEARCHRES",
                "ESORT",
                "CONTEXT=SEARCH",
                "CONTEXT=SORT",
                "URLAUTH",
                "URLAUTH=BINARY",
                "NOTIFY",
                "SORT",
                "SORT=DISPLAY",
                "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES",
            ]);
        }
        let caps: Vec<Capability<'static>> = caps
            .into_iter()
            .map(|c| Capability::from(atom(c)))
            .collect();
        Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
    }
}
