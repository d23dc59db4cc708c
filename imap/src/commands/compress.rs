//! COMPRESS (RFC 4978 §3): after login, `COMPRESS DEFLATE` makes the connection start DEFLATE in
//! both directions right after the tagged OK (the shell's `compress` module does the work); a
//! second one gets `NO [COMPRESSIONACTIVE]`.

use imap_codec::imap_types::response::Code;

use crate::mail_store::MailStore;
use crate::session::{Done, Failure, Next, Outcome, Session};

impl<S: MailStore> Session<S> {
    /// COMPRESS DEFLATE (imap-codec decodes no other algorithm).
    pub(crate) fn compress(&mut self) -> Outcome {
        self.require_user()?;
        if self.compressed {
            return Err(Failure::No(
                Some(Code::CompressionActive),
                "DEFLATE is already active".into(),
            ));
        }
        self.compressed = true;
        let mut done = Done::ok("DEFLATE active");
        done.next = Next::Compress;
        Ok(done)
    }
}
