//! BODY and BODYSTRUCTURE (RFC 3501 §7.4.2) from the MIME tree stored at delivery.

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{IString, Vec1};
use postern_store::{BodyPart, Content};

use crate::envelope::{envelope, header_text};
use crate::response::{istring, nstring};

fn params(list: &[(String, String)], utf8: bool) -> Vec<(IString<'static>, IString<'static>)> {
    list.iter()
        .map(|(k, v)| (istring(k), istring(header_text(v, utf8))))
        .collect()
}

fn disposition(p: &BodyPart, utf8: bool) -> Disposition<'static> {
    Disposition {
        disposition: p
            .disposition
            .as_ref()
            .map(|(d, ps)| (istring(d.to_ascii_uppercase()), params(ps, utf8))),
        tail: Some(Language {
            language: p.language.iter().map(istring).collect(),
            tail: Some(Location {
                location: nstring(p.location.as_deref()),
                extensions: Vec::new(),
            }),
        }),
    }
}

/// The BODYSTRUCTURE of a part; `extended` adds the extension data BODY omits.
pub fn body_structure(p: &BodyPart, extended: bool, utf8: bool) -> BodyStructure<'static> {
    if let Content::Multipart(children) = &p.content {
        let mut bodies: Vec<_> = children
            .iter()
            .map(|c| body_structure(c, extended, utf8))
            .collect();
        if bodies.is_empty() {
            // RFC 3501's body-type-mpart needs at least one part: an empty multipart shows one
            // empty text/plain part, as Dovecot writes it.
            let empty = BodyPart {
                media_type: "text".into(),
                subtype: "plain".into(),
                params: vec![("charset".into(), "us-ascii".into())],
                encoding: "7BIT".into(),
                ..BodyPart::default()
            };
            bodies.push(body_structure(&empty, extended, utf8));
        }
        if let Ok(bodies) = Vec1::try_from(bodies) {
            return BodyStructure::Multi {
                bodies,
                subtype: istring(p.subtype.to_ascii_uppercase()),
                extension_data: extended.then(|| MultiPartExtensionData {
                    parameter_list: params(&p.params, utf8),
                    tail: Some(disposition(p, utf8)),
                }),
            };
        }
    }
    let basic = BasicFields {
        parameter_list: params(&p.params, utf8),
        id: nstring(p.id.as_deref()),
        description: nstring(p.description.as_deref().map(|d| header_text(d, utf8))),
        content_transfer_encoding: istring(&p.encoding),
        size: p.size(),
    };
    let specific = match (&p.content, p.media_type.as_str()) {
        (Content::Message(env, inner), _) => SpecificFields::Message {
            envelope: Box::new(envelope(env, utf8)),
            body_structure: Box::new(body_structure(inner, extended, utf8)),
            number_of_lines: p.lines,
        },
        (_, "text") => SpecificFields::Text {
            subtype: istring(p.subtype.to_ascii_uppercase()),
            number_of_lines: p.lines,
        },
        _ => SpecificFields::Basic {
            r#type: istring(p.media_type.to_ascii_uppercase()),
            subtype: istring(p.subtype.to_ascii_uppercase()),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: nstring(p.md5.as_deref()),
            tail: Some(disposition(p, utf8)),
        }),
    }
}
