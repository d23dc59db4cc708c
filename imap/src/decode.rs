//! Decoding one complete command for the session. imap-codec 2.0.0-alpha.10 decodes RFC 3501
//! and the extensions it knows; the parts it does not read are taken off first, each by its own
//! module: LIST-EXTENDED options (`list_extended`), SEARCH/SORT RETURN options (`esearch`), `$`
//! (`searchres`), the commands imap-codec has no type for (`ext_command`), deep search programs (`search_program`), APPENDs with several messages or
//! CATENATE (`commands::multiappend`) and the UTF8 APPEND wrapper (`stream`).

use imap_codec::decode::Decoder;
use imap_codec::fragmentizer::Fragmentizer;
use imap_codec::imap_types::IntoStatic;
use imap_codec::CommandCodec;

use crate::commands::multiappend;
use crate::esearch;
use crate::ext_command;
use crate::list_extended;
use crate::search_program::{self, ProgramError, MAX_SEARCH_DEPTH, MAX_SEARCH_KEYS};
use crate::searchres;
use crate::session::{ChangeFeed, Extras, Next, Reply, Session};
use crate::stream::{unwrap_utf8_append, Input};
use crate::telemetry::timed;

/// A reply of one untagged or tagged response.
fn reply(response: imap_codec::imap_types::response::Response<'static>) -> Reply {
    Reply {
        raw: Vec::new(),
        responses: vec![response],
        next: Next::Continue,
    }
}

/// Decodes `bytes` with imap-codec (nothing may follow the command) and runs it with `extras`;
/// BAD with `why` if it does not decode.
async fn run(
    session: &mut Session,
    frag: &Fragmentizer,
    bytes: &[u8],
    extras: Extras,
    feed: &mut dyn ChangeFeed,
) -> Reply {
    match CommandCodec::default().decode(bytes) {
        Ok((b"", cmd)) => timed(cmd.name(), session.command_with(cmd, extras, feed)).await,
        _ => reply(Session::syntax_error(
            frag.decode_tag().as_ref(),
            "Syntax error",
        )),
    }
}

/// Decodes the command the fragmentizer holds (its literals at `input`'s places) and hands it to
/// the session. Syntax errors get BAD with the tag when one can be read (RFC 3501 §7.1.3);
/// oversized messages get NO [TOOBIG].
pub(crate) async fn command(
    session: &mut Session,
    frag: &Fragmentizer,
    input: &Input,
    feed: &mut dyn ChangeFeed,
) -> Reply {
    use imap_codec::fragmentizer::DecodeMessageError as E;
    let bad = |why: &str| reply(Session::syntax_error(frag.decode_tag().as_ref(), why));
    if frag.is_max_message_size_exceeded() || frag.is_message_poisoned() {
        return reply(Session::literal_too_big(frag.decode_tag().as_ref()));
    }
    if let Some(ext) = ext_command::parse(frag.message_bytes()) {
        return match ext {
            Ok((tag, cmd)) => timed(cmd.name(), session.ext_command(tag, cmd, feed)).await,
            Err(why) => bad(why),
        };
    }
    if let Some(list) = list_extended::split(frag.message_bytes()) {
        return match list {
            Ok((plain, list)) => {
                let extras = Extras {
                    list,
                    ..Extras::default()
                };
                run(session, frag, &plain, extras, feed).await
            }
            Err(why) => bad(why),
        };
    }
    // SEARCHRES (RFC 5182): `$` as a command's set, or among search keys.
    if let Some(plain) = searchres::saved_argument(frag.message_bytes()) {
        let extras = Extras {
            saved_set: true,
            ..Extras::default()
        };
        return run(session, frag, &plain, extras, feed).await;
    }
    let saved_keys = searchres::search_keys(frag.message_bytes(), || session.saved_uids());
    if let Some(reply) = search(session, frag, saved_keys.as_deref(), feed).await {
        return reply;
    }
    match multiappend::parse(frag.message_bytes(), input.literals()) {
        Some(Ok(set)) => return timed("APPEND", session.multiappend(set, feed)).await,
        Some(Err(failure)) => {
            return session
                .refuse(
                    frag.decode_tag().map(IntoStatic::into_static),
                    failure,
                    feed,
                )
                .await
        }
        None => {}
    }
    if let Some(plain) = unwrap_utf8_append(frag.message_bytes()) {
        return run(session, frag, &plain, Extras::default(), feed).await;
    }
    match frag.decode_message(&CommandCodec::default()) {
        Ok(cmd) => timed(cmd.name(), session.command(cmd, feed)).await,
        Err(E::DecodingFailure(_)) | Err(E::DecodingRemainder { .. }) => bad("Syntax error"),
        Err(_) => reply(Session::literal_too_big(frag.decode_tag().as_ref())),
    }
}

/// SEARCH (through `search_program`), and SEARCH/SORT with RETURN options or a replaced `$`
/// (`rewritten`: the command with `$` replaced); `None` for any other command.
async fn search(
    session: &mut Session,
    frag: &Fragmentizer,
    rewritten: Option<&[u8]>,
    feed: &mut dyn ChangeFeed,
) -> Option<Reply> {
    let bytes = rewritten.unwrap_or(frag.message_bytes());
    let bad = |why: &str| reply(Session::syntax_error(frag.decode_tag().as_ref(), why));
    let (plain, search_return) = match esearch::split(bytes) {
        Some(Ok((plain, options))) => (Some(plain), Some(options)),
        Some(Err(why)) => return Some(bad(why)),
        None => (None, None),
    };
    let message = plain.as_deref().unwrap_or(bytes);
    let extras = Extras {
        search_return,
        ..Extras::default()
    };
    if let Some(search) = search_program::decode(message) {
        return Some(match search {
            Ok(cmd) => timed(cmd.name(), session.command_with(cmd, extras, feed)).await,
            Err(ProgramError::Syntax) => bad("Syntax error in SEARCH"),
            Err(ProgramError::TooDeep) => bad(&format!(
                "Search programs may nest at most {MAX_SEARCH_DEPTH} levels"
            )),
            Err(ProgramError::TooMany) => reply(Session::search_limit(
                frag.decode_tag().as_ref(),
                &format!("Search programs are limited to {MAX_SEARCH_KEYS} keys"),
            )),
        });
    }
    if extras.search_return.is_some() || rewritten.is_some() {
        // SORT RETURN (...), or a SORT or THREAD whose `$` was replaced: the rest is a plain
        // command for imap-codec.
        return Some(run(session, frag, message, extras, feed).await);
    }
    None
}
