//! NAMESPACE (RFC 2342 §5): one personal namespace, the user's own mailboxes, with `/` as the
//! hierarchy delimiter; no other users' or shared namespaces.

use imap_codec::imap_types::extensions::namespace::Namespace;
use imap_codec::imap_types::response::Data;

use super::list::delimiter;
use crate::mail_store::MailStore;
use crate::response::{data, istring};
use crate::session::{Done, Outcome, Session};

impl<S: MailStore> Session<S> {
    /// NAMESPACE: the personal namespace `""`.
    pub(crate) fn namespace(&mut self) -> Outcome {
        self.require_user()?;
        let personal = vec![Namespace::new(istring(""), delimiter())];
        Ok(
            Done::ok("NAMESPACE completed").with(vec![data(Data::Namespace {
                personal,
                other: Vec::new(),
                shared: Vec::new(),
            })]),
        )
    }
}
