//! Runs the commands `ext_command` parses by hand (CANCELUPDATE, GENURLAUTH, RESETKEY,
//! URLFETCH, NOTIFY) like any other: changes noticed first, pending updates and the tagged status after.

use imap_codec::imap_types::core::Tag;

use crate::ext_command::ExtCommand;
use crate::mail_store::MailStore;
use crate::session::{ChangeFeed, Reply, Session};

impl ExtCommand {
    /// The command's name, for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            ExtCommand::CancelUpdate(_) => "CANCELUPDATE",
            ExtCommand::GenUrlAuth(_) => "GENURLAUTH",
            ExtCommand::ResetKey(_) => "RESETKEY",
            ExtCommand::UrlFetch(_) => "URLFETCH",
            ExtCommand::Notify(_) => "NOTIFY",
        }
    }
}

impl<S: MailStore> Session<S> {
    /// Handles one command imap-codec has no type for.
    pub async fn ext_command(
        &mut self,
        tag: Tag<'static>,
        cmd: ExtCommand,
        feed: &mut dyn ChangeFeed,
    ) -> Reply {
        self.start_command(feed);
        let outcome = match cmd {
            ExtCommand::CancelUpdate(tags) => self.cancel_update(&tags),
            ExtCommand::GenUrlAuth(urls) => self.genurlauth(&urls).await,
            ExtCommand::ResetKey(mailbox) => self.resetkey(mailbox.as_deref()).await,
            ExtCommand::UrlFetch(urls) => self.urlfetch(&urls).await,
            ExtCommand::Notify(set) => self.notify(set).await,
        };
        self.finish(tag, true, outcome, feed).await
    }
}
