//! FETCH responses (RFC 3501 §7.4.2) written straight into the output buffer. The items of a
//! header sync (UID, RFC822.SIZE, FLAGS, MODSEQ and the literal of a BODY[section] or RFC822.*
//! item) are written byte for byte as imap-codec encodes them, without building its structures
//! for every message (Thunderbird's header FETCH of a large mailbox spent a fifth of its CPU
//! there); every other item goes through imap-codec. Every FETCH command's responses are
//! written here.

use std::io::Write;
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::{NString, Vec1};
use imap_codec::imap_types::fetch::{MessageDataItem, Section};
use imap_codec::imap_types::flag::FlagFetch;
use imap_codec::imap_types::response::Data;
use imap_codec::ResponseCodec;
use postern_store::Flags;

use crate::response::data;
use crate::session::flag_items;

/// One `* seq FETCH (...)` response being written at the end of a buffer; [`FetchLine::finish`]
/// closes it (or takes it back if it got no item).
pub(crate) struct FetchLine<'o> {
    out: &'o mut Vec<u8>,
    start: usize,
    items: usize,
    seq: NonZeroU32,
}

/// What `BODY[section]<origin>` is called in a FETCH response, encoded once per command by
/// imap-codec itself (the field names of HEADER.FIELDS as atoms, quoted strings or literals).
pub(crate) fn body_label(section: Option<&Section<'static>>, origin: Option<u32>) -> Vec<u8> {
    let item = MessageDataItem::BodyExt {
        section: section.cloned(),
        origin,
        data: NString(None),
    };
    let mut label = encoded_item(NonZeroU32::MIN, item);
    label.truncate(label.len().saturating_sub(b" NIL".len()));
    label
}

/// One item as imap-codec encodes it inside `* seq FETCH (...)`.
fn encoded_item(seq: NonZeroU32, item: MessageDataItem<'static>) -> Vec<u8> {
    let line = ResponseCodec::default()
        .encode(&data(Data::Fetch {
            seq,
            items: Vec1::from(item),
        }))
        .dump();
    let head = format!("* {seq} FETCH (").len();
    line.get(head..line.len().saturating_sub(b")\r\n".len()))
        .unwrap_or_default()
        .to_vec()
}

impl<'o> FetchLine<'o> {
    /// Starts the FETCH response of message `seq` at the end of `out`.
    pub(crate) fn new(out: &'o mut Vec<u8>, seq: NonZeroU32) -> Self {
        let start = out.len();
        let _ = write!(out, "* {seq} FETCH (");
        FetchLine {
            out,
            start,
            items: 0,
            seq,
        }
    }

    /// The buffer, after the space that separates an item from the one before it.
    fn next(&mut self) -> &mut Vec<u8> {
        if self.items > 0 {
            self.out.push(b' ');
        }
        self.items += 1;
        self.out
    }

    /// `UID n`.
    pub(crate) fn uid(&mut self, uid: NonZeroU32) {
        let _ = write!(self.next(), "UID {uid}");
    }

    /// `RFC822.SIZE n`.
    pub(crate) fn rfc822_size(&mut self, size: u32) {
        let _ = write!(self.next(), "RFC822.SIZE {size}");
    }

    /// `MODSEQ (n)` (RFC 7162 §3.1.4.1).
    pub(crate) fn modseq(&mut self, value: NonZeroU64) {
        let _ = write!(self.next(), "MODSEQ ({value})");
    }

    /// `FLAGS (...)`, in the order of [`flag_items`].
    pub(crate) fn flags(&mut self, flags: &Flags, recent: bool) {
        let out = self.next();
        out.extend_from_slice(b"FLAGS (");
        for (i, flag) in flag_items(flags, recent).iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            match flag {
                FlagFetch::Recent => out.extend_from_slice(b"\\Recent"),
                FlagFetch::Flag(flag) => {
                    let _ = write!(out, "{flag}");
                }
            }
        }
        out.push(b')');
    }

    /// `label {n}` and the `n` bytes (a synchronizing literal, RFC 3501 §4.3, as imap-codec writes
    /// it for a server), NUL bytes, which a literal cannot carry, as spaces.
    pub(crate) fn literal(&mut self, label: &[u8], bytes: &[u8]) {
        let out = self.next();
        out.extend_from_slice(label);
        let _ = write!(out, " {{{}}}\r\n", bytes.len());
        let from = out.len();
        out.extend_from_slice(bytes);
        for b in &mut out[from..] {
            if *b == 0 {
                *b = b' ';
            }
        }
    }

    /// Any other item, as imap-codec encodes it. imap-codec's `MessageDataItem::Binary` has no
    /// origin, so a partial BINARY item gets the `<origin>` RFC 3516 §4.2 requires
    /// (`BINARY[section]<origin>`) spliced after its section.
    pub(crate) fn item(&mut self, item: MessageDataItem<'static>, origin: Option<u32>) {
        let body = encoded_item(self.seq, item);
        let out = self.next();
        match origin {
            Some(origin) => {
                let close = body.iter().position(|&b| b == b']').map_or(0, |p| p + 1);
                out.extend_from_slice(&body[..close]);
                let _ = write!(out, "<{origin}>");
                out.extend_from_slice(&body[close..]);
            }
            None => out.extend_from_slice(&body),
        }
    }

    /// Ends the response; one without items is not written at all.
    pub(crate) fn finish(self) {
        if self.items == 0 {
            self.out.truncate(self.start);
        } else {
            self.out.extend_from_slice(b")\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use imap_codec::imap_types::core::{AString, Literal, LiteralMode, NString8};
    use imap_codec::imap_types::extensions::binary::Literal8;
    use imap_codec::imap_types::fetch::Part;

    use super::*;
    use crate::commands::binary::binary_value;
    use crate::commands::fetch::literal;
    use crate::response::{encode_all, modseq, nz};

    /// What imap-codec writes for `items` of message `seq`.
    fn codec(seq: u32, items: Vec<MessageDataItem<'static>>) -> Vec<u8> {
        encode_all(&[data(Data::Fetch {
            seq: nz(seq.into()),
            items: Vec1::try_from(items).unwrap(),
        })])
    }

    fn flags(system: i64, keywords: &[&str]) -> Flags {
        let mut f = Flags::system(system);
        f.keywords = keywords.iter().map(|k| k.to_string()).collect();
        f
    }

    fn names(list: &[&str]) -> Vec1<AString<'static>> {
        let v: Vec<AString<'static>> = list
            .iter()
            .map(|n| AString::try_from(n.to_string()).unwrap())
            .collect();
        Vec1::try_from(v).unwrap()
    }

    /// A header-sync response written directly is byte-identical to imap-codec's.
    #[test]
    fn header_sync_matches_imap_codec() {
        let sections = [
            None,
            Some(Section::Header(None)),
            Some(Section::Text(None)),
            Some(Section::HeaderFields(
                None,
                names(&[
                    "From",
                    "To",
                    "Cc",
                    "Bcc",
                    "Subject",
                    "Date",
                    "Message-ID",
                    "Priority",
                    "X-Priority",
                    "References",
                    "Newsgroups",
                    "In-Reply-To",
                    "Content-Type",
                    "Reply-To",
                ]),
            )),
            // Names that are not atoms: quoted, and a literal.
            Some(Section::HeaderFieldsNot(
                None,
                names(&["x y", "a\"b", "ü-field"]),
            )),
            Some(Section::HeaderFields(
                Some(Part(Vec1::from(NonZeroU32::new(2).unwrap()))),
                names(&["Subject"]),
            )),
            Some(Section::Mime(Part(
                Vec1::try_from(vec![NonZeroU32::MIN, NonZeroU32::new(3).unwrap()]).unwrap(),
            ))),
        ];
        let bodies: [&[u8]; 6] = [
            b"",
            b"\r\n",
            b"Subject: hi\r\n\r\n",
            b"Subject: caf\xc3\xa9 \xff\xfe 8-bit\r\n\r\n",
            b"a\0b\0",
            b"{5}\r\n) \"quoted\" \\ NIL\r\n",
        ];
        let flag_sets = [
            (flags(0, &[]), false),
            (flags(0, &[]), true),
            (flags(Flags::SEEN, &[]), false),
            (
                flags(
                    Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED | Flags::DELETED | Flags::DRAFT,
                    &["$Forwarded", "$label1", "NonJunk"],
                ),
                true,
            ),
            (flags(0, &["$MDNSent"]), false),
        ];
        let mut cases = 0;
        for (s, section) in sections.iter().enumerate() {
            for origin in [None, Some(0), Some(17)] {
                let label = body_label(section.as_ref(), origin);
                for (b, body) in bodies.iter().enumerate() {
                    let (flags, recent) = &flag_sets[(s + b) % flag_sets.len()];
                    let seq = (s * 1000 + b) as u32 + 1;
                    let uid = 4_000_000_000 - seq as i64;
                    let mut out = b"before".to_vec();
                    let mut line = FetchLine::new(&mut out, nz(seq.into()));
                    line.uid(nz(uid));
                    line.rfc822_size(123_456 + seq);
                    line.flags(flags, *recent);
                    line.literal(&label, body);
                    line.modseq(modseq(7 + seq as i64));
                    line.finish();
                    let mut expected = b"before".to_vec();
                    expected.extend(codec(
                        seq,
                        vec![
                            MessageDataItem::Uid(nz(uid)),
                            MessageDataItem::Rfc822Size(123_456 + seq),
                            MessageDataItem::Flags(flag_items(flags, *recent)),
                            MessageDataItem::BodyExt {
                                section: section.clone(),
                                origin,
                                data: literal(body.to_vec()),
                            },
                            MessageDataItem::ModSeq(modseq(7 + seq as i64)),
                        ],
                    ));
                    assert_eq!(
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&expected)
                    );
                    assert_eq!(out, expected);
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 7 * 3 * 6);
    }

    /// RFC822, RFC822.HEADER and RFC822.TEXT, a single item, and items through imap-codec.
    #[test]
    fn other_items_match_imap_codec() {
        for (label, make) in [
            (
                &b"RFC822"[..],
                MessageDataItem::Rfc822 as fn(NString<'static>) -> MessageDataItem<'static>,
            ),
            (b"RFC822.HEADER", MessageDataItem::Rfc822Header),
            (b"RFC822.TEXT", MessageDataItem::Rfc822Text),
        ] {
            let body = b"Subject: x\r\n\r\nbody \xe2\x82\xac\r\n";
            let mut out = Vec::new();
            let mut line = FetchLine::new(&mut out, NonZeroU32::MIN);
            line.literal(label, body);
            line.finish();
            assert_eq!(out, codec(1, vec![make(literal(body.to_vec()))]));
        }
        let binary = MessageDataItem::Binary {
            section: vec![NonZeroU32::MIN],
            value: NString8::Literal8(Literal8 {
                data: b"a\0b".to_vec().into(),
                mode: LiteralMode::Sync,
            }),
        };
        let size = MessageDataItem::BinarySize {
            section: vec![],
            size: 42,
        };
        let mut out = Vec::new();
        let mut line = FetchLine::new(&mut out, nz(9));
        line.item(binary.clone(), None);
        line.item(size.clone(), None);
        line.uid(nz(5));
        line.finish();
        assert_eq!(
            out,
            codec(9, vec![binary.clone(), size, MessageDataItem::Uid(nz(5))])
        );
        let text = MessageDataItem::BodyExt {
            section: None,
            origin: None,
            data: NString(Some(Literal::try_from(b"x".to_vec()).unwrap().into())),
        };
        let mut out = Vec::new();
        let mut line = FetchLine::new(&mut out, nz(3));
        line.item(text.clone(), None);
        line.finish();
        assert_eq!(out, codec(3, vec![text]));
    }

    /// A partial BINARY item gets its origin after the section (a `]` in its value stays); a
    /// response without items is not written.
    #[test]
    fn binary_origin_and_empty_response() {
        let mut out = b"x".to_vec();
        let line = FetchLine::new(&mut out, nz(4));
        line.finish();
        assert_eq!(out, b"x");
        let mut line = FetchLine::new(&mut out, nz(3));
        line.uid(nz(7));
        line.item(
            MessageDataItem::Binary {
                section: vec![NonZeroU32::MIN, NonZeroU32::new(2).unwrap()],
                value: binary_value(b"x]y\0".to_vec()),
            },
            Some(10),
        );
        line.finish();
        assert_eq!(out, b"x* 3 FETCH (UID 7 BINARY[1.2]<10> ~{4}\r\nx]y\0)\r\n");
    }
}
