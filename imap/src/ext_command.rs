//! Commands imap-codec 2.0.0-alpha.10 has no types for, read here from the complete command the
//! fragmentizer holds: CANCELUPDATE (RFC 5267 §4.2), GENURLAUTH, RESETKEY and URLFETCH (RFC 4467
//! §7.1-§7.3, URLFETCH's extended form from RFC 5524 §3) and NOTIFY (RFC 5465 §8). Their arguments are atoms, strings
//! (quoted or literal, RFC 3501 §4.3) and parenthesized lists, tokenized by [`tokens`].

use std::ops::Range;

use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::IntoStatic;
use imap_codec::CommandCodec;

/// One parsed extension command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtCommand {
    /// CANCELUPDATE "tag" ... (RFC 5267 §4.2).
    CancelUpdate(Vec<String>),
    /// GENURLAUTH url mechanism ... (RFC 4467 §7.2).
    GenUrlAuth(Vec<(String, String)>),
    /// RESETKEY [mailbox [mechanism ...]] (RFC 4467 §7.1).
    ResetKey(Option<Vec<u8>>),
    /// URLFETCH url ... and `(url item ...)` (RFC 4467 §7.3, RFC 5524 §3).
    UrlFetch(Vec<FetchUrl>),
    /// NOTIFY NONE, or NOTIFY SET [STATUS] with its event groups (RFC 5465 §3).
    Notify(Option<NotifySet>),
}

/// NOTIFY SET's arguments (RFC 5465 §3, §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// `STATUS`: send the current STATUS of the non-selected mailboxes now.
    pub status: bool,
    /// The event groups, in order.
    pub groups: Vec<EventGroup>,
}

/// One `(filter-mailboxes events)` group (RFC 5465 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGroup {
    /// Which mailboxes.
    pub filter: Filter,
    /// The event names, upper case; empty for `NONE`.
    pub events: Vec<String>,
    /// MessageNew's fetch attributes (RFC 5465 §5.2), `selected` and `selected-delayed` only:
    /// what to FETCH of each new message of the selected mailbox.
    pub fetch: Option<Vec<MessageDataItemName<'static>>>,
}

/// A NOTIFY mailbox filter (RFC 5465 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `selected` (or `selected-delayed`: expunges wait for a command that may report them).
    Selected {
        /// `selected-delayed`.
        delayed: bool,
    },
    /// `inboxes`: mailboxes delivery may put mail in (here: INBOX).
    Inboxes,
    /// `personal`: every mailbox of the user.
    Personal,
    /// `subscribed`: the subscribed mailboxes.
    Subscribed,
    /// `subtree name...`: these mailboxes and their children (names as sent).
    Subtree(Vec<Vec<u8>>),
    /// `mailboxes name...`: exactly these (names as sent).
    Mailboxes(Vec<Vec<u8>>),
}

/// One URL of URLFETCH and what to return for it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchUrl {
    /// The URL as the client sent it (it is echoed back).
    pub url: String,
    /// The extended form (RFC 5524 §3): `(url item ...)`, answered with a list of items.
    pub extended: bool,
    /// BODY: the content as stored.
    pub body: bool,
    /// BINARY: the content with its Content-Transfer-Encoding removed.
    pub binary: bool,
    /// BODYPARTSTRUCTURE: the part's structure.
    pub structure: bool,
}

/// A token of a command's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An atom (also `NIL` and numbers).
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    /// A parenthesized list, and where it is in the tokenized input (parentheses included).
    List(Vec<Token>, Range<usize>),
}

impl Token {
    /// The text of an atom or string.
    pub fn text(&self) -> Option<String> {
        match self {
            Token::Atom(a) => Some(a.clone()),
            Token::Str(s) => String::from_utf8(s.clone()).ok(),
            Token::List(..) => None,
        }
    }

    /// The bytes of an atom or string (RFC 3501 `astring`).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Token::Atom(a) => Some(a.clone().into_bytes()),
            Token::Str(s) => Some(s.clone()),
            Token::List(..) => None,
        }
    }
}

/// Most tokens one command may carry (lists count their members).
const MAX_TOKENS: usize = 1000;

/// Most nesting of parenthesized lists.
const MAX_DEPTH: usize = 8;

/// Tokenizes `input` (a command without its CRLF); literals are `{n}` or `{n+}` and CRLF then
/// n bytes, as the fragmentizer keeps them.
pub fn tokens(input: &[u8]) -> Result<Vec<Token>, &'static str> {
    let mut pos = 0;
    let mut count = 0;
    let list = parse_list(input, &mut pos, &mut count, 0)?;
    if pos != input.len() {
        return Err("Unbalanced parentheses");
    }
    Ok(list)
}

fn parse_list(
    input: &[u8],
    pos: &mut usize,
    count: &mut usize,
    depth: usize,
) -> Result<Vec<Token>, &'static str> {
    let mut out = Vec::new();
    loop {
        while input.get(*pos) == Some(&b' ') {
            *pos += 1;
        }
        let Some(&c) = input.get(*pos) else {
            return if depth == 0 {
                Ok(out)
            } else {
                Err("Unbalanced parentheses")
            };
        };
        *count += 1;
        if *count > MAX_TOKENS {
            return Err("Too many arguments");
        }
        match c {
            b')' => {
                return if depth == 0 {
                    Err("Unbalanced parentheses")
                } else {
                    *pos += 1;
                    Ok(out)
                };
            }
            b'(' => {
                if depth + 1 > MAX_DEPTH {
                    return Err("Lists nest too deeply");
                }
                let start = *pos;
                *pos += 1;
                let items = parse_list(input, pos, count, depth + 1)?;
                out.push(Token::List(items, start..*pos));
            }
            b'"' => out.push(Token::Str(quoted(input, pos)?)),
            b'{' => out.push(Token::Str(literal(input, pos)?)),
            _ => {
                let start = *pos;
                while input
                    .get(*pos)
                    .is_some_and(|&b| !matches!(b, b' ' | b'(' | b')' | b'"' | b'{') && b > 0x20)
                {
                    *pos += 1;
                }
                if *pos == start {
                    return Err("Unexpected character");
                }
                let atom = String::from_utf8_lossy(&input[start..*pos]).into_owned();
                out.push(Token::Atom(atom));
            }
        }
    }
}

/// A quoted string starting at `pos` (RFC 3501 §4.3: `\"` and `\\` escapes, no CR or LF).
fn quoted(input: &[u8], pos: &mut usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    *pos += 1;
    loop {
        match input.get(*pos) {
            None | Some(b'\r') | Some(b'\n') => return Err("Unterminated string"),
            Some(b'"') => {
                *pos += 1;
                return Ok(out);
            }
            Some(b'\\') => match input.get(*pos + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    out.push(c);
                    *pos += 2;
                }
                _ => return Err("Invalid escape in string"),
            },
            Some(&c) => {
                out.push(c);
                *pos += 1;
            }
        }
    }
}

/// A literal `{n}` / `{n+}` CRLF and n bytes, starting at `pos`.
fn literal(input: &[u8], pos: &mut usize) -> Result<Vec<u8>, &'static str> {
    let close = input[*pos..]
        .iter()
        .position(|&b| b == b'}')
        .ok_or("Invalid literal")?;
    let spec = &input[*pos + 1..*pos + close];
    let digits = spec.strip_suffix(b"+").unwrap_or(spec);
    let n: usize = std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or("Invalid literal")?;
    let start = *pos + close + 1;
    if input.get(start..start + 2) != Some(b"\r\n") {
        return Err("Invalid literal");
    }
    let data = input
        .get(start + 2..start + 2 + n)
        .ok_or("Literal is shorter than announced")?;
    *pos = start + 2 + n;
    Ok(data.to_vec())
}

/// If `message` is one of the commands this module reads, its tag and the command, or BAD's text.
pub fn parse(message: &[u8]) -> Option<Result<(Tag<'static>, ExtCommand), &'static str>> {
    let line = message.strip_suffix(b"\r\n").unwrap_or(message);
    let mut words = line.splitn(3, |&b| b == b' ');
    let tag = words.next()?;
    let verb = String::from_utf8_lossy(words.next()?).to_ascii_uppercase();
    if !matches!(
        verb.as_str(),
        "CANCELUPDATE" | "GENURLAUTH" | "RESETKEY" | "URLFETCH" | "NOTIFY"
    ) {
        return None;
    }
    let tag = Tag::try_from(String::from_utf8_lossy(tag).into_owned()).ok()?;
    let input = words.next().unwrap_or_default();
    let args = match tokens(input) {
        Ok(args) => args,
        Err(why) => return Some(Err(why)),
    };
    Some(command(&verb, args, input).map(|cmd| (tag, cmd)))
}

/// The command `verb` with its arguments `args`, tokenized from `input`.
fn command(verb: &str, args: Vec<Token>, input: &[u8]) -> Result<ExtCommand, &'static str> {
    match verb {
        "CANCELUPDATE" => args
            .iter()
            .map(|t| match t {
                Token::Str(_) => t.text().ok_or("Tag is not UTF-8"),
                _ => Err("CANCELUPDATE takes quoted tags"),
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|tags| {
                if tags.is_empty() {
                    Err("CANCELUPDATE needs a tag")
                } else {
                    Ok(ExtCommand::CancelUpdate(tags))
                }
            }),
        "GENURLAUTH" => {
            if args.is_empty() || !args.len().is_multiple_of(2) {
                return Err("GENURLAUTH takes pairs of URL and mechanism");
            }
            args.chunks(2)
                .map(|pair| match (&pair[0], &pair[1]) {
                    (u @ (Token::Atom(_) | Token::Str(_)), Token::Atom(mech)) => {
                        Ok((url(u)?, mech.to_ascii_uppercase()))
                    }
                    _ => Err("GENURLAUTH takes pairs of URL and mechanism"),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(ExtCommand::GenUrlAuth)
        }
        "NOTIFY" => notify(&args, input).map(ExtCommand::Notify),
        "RESETKEY" => {
            let mailbox = match args.first() {
                None => None,
                Some(t) => Some(t.bytes().ok_or("RESETKEY takes a mailbox name")?),
            };
            if args.iter().skip(1).any(|t| !matches!(t, Token::Atom(_))) {
                return Err("RESETKEY takes mechanism names");
            }
            Ok(ExtCommand::ResetKey(mailbox))
        }
        _ => {
            if args.is_empty() {
                return Err("URLFETCH needs a URL");
            }
            args.iter()
                .map(fetch_url)
                .collect::<Result<Vec<_>, _>>()
                .map(ExtCommand::UrlFetch)
        }
    }
}

/// NOTIFY's arguments, tokenized from `input`: `NONE`, or `SET [STATUS] group...` (RFC 5465 §8).
fn notify(args: &[Token], input: &[u8]) -> Result<Option<NotifySet>, &'static str> {
    let word =
        |t: Option<&Token>, w: &str| matches!(t, Some(Token::Atom(a)) if a.eq_ignore_ascii_case(w));
    if word(args.first(), "NONE") && args.len() == 1 {
        return Ok(None);
    }
    if !word(args.first(), "SET") {
        return Err("NOTIFY takes SET or NONE");
    }
    let status = word(args.get(1), "STATUS");
    let rest = &args[if status { 2 } else { 1 }..];
    if rest.is_empty() {
        return Err("NOTIFY SET needs an event group");
    }
    let groups = rest
        .iter()
        .map(|g| match g {
            Token::List(items, _) => event_group(items, input),
            _ => Err("An event group is a list"),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(NotifySet { status, groups }))
}

/// `(filter-mailboxes events)`, tokenized from `input`.
fn event_group(items: &[Token], input: &[u8]) -> Result<EventGroup, &'static str> {
    let bad = "Invalid event group";
    let Some(Token::Atom(name)) = items.first() else {
        return Err(bad);
    };
    let names = |t: Option<&Token>| -> Result<Vec<Vec<u8>>, &'static str> {
        match t {
            Some(Token::List(list, _)) if !list.is_empty() => {
                list.iter().map(|t| t.bytes().ok_or(bad)).collect()
            }
            Some(t @ (Token::Atom(_) | Token::Str(_))) => Ok(vec![t.bytes().ok_or(bad)?]),
            _ => Err(bad),
        }
    };
    let (filter, events_at) = match name.to_ascii_lowercase().as_str() {
        "selected" => (Filter::Selected { delayed: false }, 1),
        "selected-delayed" => (Filter::Selected { delayed: true }, 1),
        "inboxes" => (Filter::Inboxes, 1),
        "personal" => (Filter::Personal, 1),
        "subscribed" => (Filter::Subscribed, 1),
        "subtree" => (Filter::Subtree(names(items.get(1))?), 2),
        "mailboxes" => (Filter::Mailboxes(names(items.get(1))?), 2),
        _ => return Err(bad),
    };
    if items.len() != events_at + 1 {
        return Err(bad);
    }
    let mut fetch = None;
    let events = match &items[events_at] {
        Token::Atom(a) if a.eq_ignore_ascii_case("NONE") => Vec::new(),
        Token::List(list, _) if !list.is_empty() => {
            let mut events = Vec::new();
            for (i, t) in list.iter().enumerate() {
                match t {
                    Token::Atom(a) => events.push(a.to_ascii_uppercase()),
                    // MessageNew's fetch attributes (RFC 5465 §5.2, §8): only the selected
                    // mailbox's new messages are fetched, so other filters may not carry them
                    // (a BAD, as Dovecot answers).
                    Token::List(_, span)
                        if i > 0
                            && fetch.is_none()
                            && events.last().is_some_and(|e| e == "MESSAGENEW") =>
                    {
                        if !matches!(filter, Filter::Selected { .. }) {
                            return Err("Fetch attributes are for the selected mailbox only");
                        }
                        let raw = input.get(span.clone()).ok_or(bad)?;
                        fetch = Some(fetch_attributes(raw)?);
                    }
                    _ => return Err(bad),
                }
            }
            events
        }
        _ => return Err(bad),
    };
    Ok(EventGroup {
        filter,
        events,
        fetch,
    })
}

/// MessageNew's `(fetch-att ...)` (RFC 5465 §8), read by imap-codec's own FETCH parser as the
/// items of `FETCH 1 (fetch-att ...)`: exactly what FETCH accepts, macros (ALL, FAST, FULL)
/// excepted, as the grammar has `fetch-att` only.
fn fetch_attributes(list: &[u8]) -> Result<Vec<MessageDataItemName<'static>>, &'static str> {
    let bad = "Invalid fetch attributes";
    let mut command = b"n FETCH 1 ".to_vec();
    command.extend_from_slice(list);
    command.extend_from_slice(b"\r\n");
    let (rest, command) = CommandCodec::default().decode(&command).map_err(|_| bad)?;
    match command.body {
        CommandBody::Fetch {
            macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(names),
            modifiers,
            ..
        } if rest.is_empty() && !names.is_empty() && modifiers.is_empty() => {
            Ok(names.into_iter().map(IntoStatic::into_static).collect())
        }
        _ => Err(bad),
    }
}

/// A URL: an atom or string of printable ASCII (it is echoed in a quoted string).
fn url(token: &Token) -> Result<String, &'static str> {
    match token {
        Token::Atom(_) | Token::Str(_) => token
            .text()
            .filter(|t| t.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .ok_or("A URL is printable ASCII"),
        Token::List(..) => Err("Expected a URL"),
    }
}

/// One URLFETCH argument: a URL, or `(url item ...)` with BODY, BINARY and BODYPARTSTRUCTURE.
fn fetch_url(token: &Token) -> Result<FetchUrl, &'static str> {
    let Token::List(items, _) = token else {
        return Ok(FetchUrl {
            url: url(token)?,
            ..FetchUrl::default()
        });
    };
    let (first, rest) = items.split_first().ok_or("Empty URLFETCH list")?;
    let mut out = FetchUrl {
        url: url(first)?,
        extended: true,
        ..FetchUrl::default()
    };
    for item in rest {
        match item {
            Token::Atom(a) if a.eq_ignore_ascii_case("BODY") => out.body = true,
            Token::Atom(a) if a.eq_ignore_ascii_case("BINARY") => out.binary = true,
            Token::Atom(a) if a.eq_ignore_ascii_case("BODYPARTSTRUCTURE") => out.structure = true,
            _ => return Err("Unknown URLFETCH item"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_commands() {
        assert_eq!(
            tokens(b"a \"b\\\"c\" (d {2}\r\nxy) NIL").unwrap(),
            vec![
                Token::Atom("a".into()),
                Token::Str(b"b\"c".to_vec()),
                Token::List(
                    vec![Token::Atom("d".into()), Token::Str(b"xy".to_vec())],
                    9..20
                ),
                Token::Atom("NIL".into()),
            ]
        );
        assert!(tokens(b"(a").is_err());
        assert!(tokens(b"a)").is_err());
        assert!(tokens(b"{5}\r\nab").is_err());
        assert!(tokens(&b"(".repeat(20)).is_err());
        let (tag, cmd) = parse(b"t1 cancelupdate \"a\" \"b\"\r\n").unwrap().unwrap();
        assert_eq!(tag.as_ref(), "t1");
        assert_eq!(cmd, ExtCommand::CancelUpdate(vec!["a".into(), "b".into()]));
        assert!(parse(b"t CANCELUPDATE\r\n").unwrap().is_err());
        assert!(parse(b"t CANCELUPDATE a\r\n").unwrap().is_err());
        assert!(parse(b"t SEARCH ALL\r\n").is_none());
        let (_, cmd) =
            parse(b"t GENURLAUTH \"imap://u@h/INBOX/;uid=1;urlauth=anonymous\" internal\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            cmd,
            ExtCommand::GenUrlAuth(vec![(
                "imap://u@h/INBOX/;uid=1;urlauth=anonymous".into(),
                "INTERNAL".into()
            )])
        );
        assert!(parse(b"t GENURLAUTH \"x\"\r\n").unwrap().is_err());
        let (_, cmd) = parse(b"t URLFETCH x (\"y\" binary bodypartstructure)\r\n")
            .unwrap()
            .unwrap();
        let ExtCommand::UrlFetch(urls) = cmd else {
            panic!("URLFETCH");
        };
        assert!(!urls[0].extended && urls[0].url == "x");
        assert!(urls[1].extended && urls[1].binary && urls[1].structure && !urls[1].body);
        assert!(parse(b"t URLFETCH (y bogus)\r\n").unwrap().is_err());
        assert!(parse(b"t URLFETCH ()\r\n").unwrap().is_err());
        assert!(parse(b"t URLFETCH {3}\r\na\r\n\r\n").unwrap().is_err());
        assert_eq!(
            parse(b"t RESETKEY\r\n").unwrap().unwrap().1,
            ExtCommand::ResetKey(None)
        );
        assert_eq!(
            parse(b"t NOTIFY NONE\r\n").unwrap().unwrap().1,
            ExtCommand::Notify(None)
        );
        let (_, cmd) = parse(
            b"t NOTIFY SET STATUS (selected (MessageNew (uid) MessageExpunge)) \
(subtree (a \"b c\") (FlagChange)) (personal NONE)\r\n",
        )
        .unwrap()
        .unwrap();
        let ExtCommand::Notify(Some(set)) = cmd else {
            panic!("NOTIFY");
        };
        assert!(set.status);
        assert_eq!(set.groups[0].filter, Filter::Selected { delayed: false });
        assert_eq!(set.groups[0].events, vec!["MESSAGENEW", "MESSAGEEXPUNGE"]);
        assert_eq!(set.groups[0].fetch, Some(vec![MessageDataItemName::Uid]));
        assert_eq!(set.groups[1].fetch, None);
        assert_eq!(
            set.groups[1].filter,
            Filter::Subtree(vec![b"a".to_vec(), b"b c".to_vec()])
        );
        assert!(set.groups[2].events.is_empty());
        for bad in [
            "NOTIFY",
            "NOTIFY SET",
            "NOTIFY SET (bogus (MessageNew))",
            "NOTIFY SET (mailboxes (MessageNew))",
            "NOTIFY SET (personal)",
            "NOTIFY SET (personal ())",
            "NOTIFY SET personal",
            "NOTIFY NONE extra",
        ] {
            let cmd = format!("t {bad}\r\n");
            assert!(parse(cmd.as_bytes()).unwrap().is_err(), "{bad}");
        }
    }
}
