//! Canonical line endings for mail data. RFC 5321 §2.3.8 allows CR and LF in mail data only as the
//! CRLF pair, yet receivers disagree on what a bare LF or bare CR means: one that ends DATA at
//! `<LF>.<CR><LF>` takes whatever follows as new commands, so relaying bare line endings byte for
//! byte lets a sender smuggle a second, forged message out of this server's address
//! (CVE-2023-51764 and relatives). Mail is therefore made canonical when it is received (or
//! refused, by configuration) and again when it is sent, whatever was stored.

#[cfg(test)]
use std::borrow::Cow;

use serde::Deserialize;

/// What the server does with mail data holding a bare CR or LF (the `[smtp] bare_line_endings`
/// key), as Postfix's `smtpd_forbid_bare_newline`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BareLineEndings {
    /// Turn every bare CR and bare LF into CRLF before storing the message.
    #[default]
    Normalize,
    /// Refuse the message with 550 5.5.2.
    Reject,
}

/// Whether `data` holds a CR not followed by LF or an LF not preceded by CR.
#[cfg(test)]
pub(crate) fn has_bare(data: &[u8]) -> bool {
    data.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => data.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || data[i - 1] != b'\r',
        _ => false,
    })
}

/// `data` with every bare CR and every bare LF replaced by CRLF; borrowed when already canonical
/// (what [`Canonicalizer`] makes of data in pieces, as the tests check).
#[cfg(test)]
pub(crate) fn canonical(data: &[u8]) -> Cow<'_, [u8]> {
    if !has_bare(data) {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut canon = Canonicalizer::default();
    canon.push(data, &mut out);
    canon.finish(&mut out);
    Cow::Owned(out)
}

/// [`canonical`] for data that arrives in pieces: a CR at the end of one piece is matched with
/// an LF at the start of the next, so the output is the same however the data is split.
#[derive(Debug, Default)]
pub(crate) struct Canonicalizer {
    /// The last byte seen was a CR, not yet written.
    cr: bool,
    /// A bare CR or LF was seen.
    bare: bool,
}

impl Canonicalizer {
    /// Appends `data`, its bare line endings made CRLF, to `out` (a final CR is held back).
    pub(crate) fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            if self.cr {
                self.cr = false;
                out.extend_from_slice(b"\r\n");
                if data[0] == b'\n' {
                    data = &data[1..];
                    continue;
                }
                self.bare = true;
            }
            let Some(i) = data.iter().position(|&b| b == b'\r' || b == b'\n') else {
                out.extend_from_slice(data);
                return;
            };
            out.extend_from_slice(&data[..i]);
            if data[i] == b'\r' {
                self.cr = true;
            } else {
                out.extend_from_slice(b"\r\n");
                self.bare = true;
            }
            data = &data[i + 1..];
        }
    }

    /// Ends the data: a CR held back is written as CRLF.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.cr) {
            out.extend_from_slice(b"\r\n");
            self.bare = true;
        }
    }

    /// Whether the data so far held a bare CR or LF (a final CR counts once [`finish`] ran).
    ///
    /// [`finish`]: Self::finish
    pub(crate) fn saw_bare(&self) -> bool {
        self.bare
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bare_line_endings() {
        assert!(!has_bare(b""));
        assert!(!has_bare(b"a\r\nb\r\n"));
        assert!(has_bare(b"\n"));
        assert!(has_bare(b"a\nb"));
        assert!(has_bare(b"a\rb"));
        assert!(has_bare(b"a\r"));
        assert!(has_bare(b"a\r\r\n"));
        assert!(has_bare(b"a\r\n\n"));
    }

    #[test]
    fn makes_every_line_end_crlf() {
        assert!(matches!(canonical(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        let cases: [(&[u8], &[u8]); 7] = [
            (b"outer\n.\nMAIL", b"outer\r\n.\r\nMAIL"),
            (b"outer\n.\r\nMAIL", b"outer\r\n.\r\nMAIL"),
            (b"outer\r.\r\nMAIL", b"outer\r\n.\r\nMAIL"),
            (b"outer\r\n.\rMAIL", b"outer\r\n.\r\nMAIL"),
            (b"a\r\r\nb", b"a\r\n\r\nb"),
            (b"\n\r", b"\r\n\r\n"),
            (b"a\n\nb\r", b"a\r\n\r\nb\r\n"),
        ];
        for (input, want) in cases {
            let got = canonical(input);
            assert_eq!(&*got, want, "{:?}", String::from_utf8_lossy(input));
            assert!(!has_bare(&got));
        }
    }

    #[test]
    fn pieces_give_the_same_output_at_every_split() {
        let input: &[u8] = b"a\r\nb\rc\n\r\n.\r\r\n\n\rz\r";
        let want = canonical(input).into_owned();
        for split in 0..=input.len() {
            for second in split..=input.len() {
                let mut canon = Canonicalizer::default();
                let mut out = Vec::new();
                canon.push(&input[..split], &mut out);
                canon.push(&input[split..second], &mut out);
                canon.push(&input[second..], &mut out);
                canon.finish(&mut out);
                assert_eq!(out, want, "split at {split} and {second}");
                assert!(canon.saw_bare());
            }
        }
        let mut canon = Canonicalizer::default();
        let mut out = Vec::new();
        canon.push(b"a\r", &mut out);
        canon.push(b"\nb\r\n", &mut out);
        canon.finish(&mut out);
        assert_eq!(out, b"a\r\nb\r\n");
        assert!(!canon.saw_bare());
    }
}
