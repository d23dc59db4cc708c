//! ENABLE (RFC 5161 §3.1): CONDSTORE (RFC 7162 §3.1), QRESYNC (RFC 7162 §3.2.3, which implies
//! CONDSTORE) and UTF8=ACCEPT (RFC 6855 §3); other capabilities are not enabled and not listed.

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::utf8::Utf8Kind;
use imap_codec::imap_types::response::Data;

use crate::mail_store::MailStore;
use crate::response::data;
use crate::session::{Done, Outcome, Session};

impl<S: MailStore> Session<S> {
    /// ENABLE: turns the extensions on and lists those it enabled in an untagged ENABLED.
    pub(crate) fn enable(&mut self, caps: Vec1<CapabilityEnable<'_>>) -> Outcome {
        self.require_user()?;
        let mut enabled = Vec::new();
        for c in caps.as_ref() {
            match c {
                CapabilityEnable::CondStore => {
                    self.condstore = true;
                    enabled.push(CapabilityEnable::CondStore);
                }
                CapabilityEnable::Utf8(Utf8Kind::Accept) => {
                    self.utf8 = true;
                    enabled.push(CapabilityEnable::Utf8(Utf8Kind::Accept));
                }
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                CapabilityEnable::Other(_) if c.to_string().eq_ignore_ascii_case("QRESYNC") => {
                    self.condstore = true;
                    self.qresync = true;
                    enabled.push(CapabilityEnable::from(crate::response::atom("QRESYNC")));
                }
                _ => {}
            }
        }
        Ok(Done::ok("ENABLE completed").with(vec![data(Data::Enabled {
            capabilities: enabled,
        })]))
    }
}
