//! The words a message is judged by: lower-cased words of its decoded text parts (HTML as text),
//! link host names, tagged words of selected headers (`Subject`, the `From` address and domain,
//! the mailer, the content types), as SpamBayes and mox tokenise, and the SPF/DKIM/DMARC results
//! of the receiving server's own `Authentication-Results` (RFC 8601), so the filter learns how far
//! to trust them. Pure: no I/O.

use std::collections::HashSet;

use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};

/// Most distinct tokens taken from one message, so training and scoring stay bounded.
pub const MAX_TOKENS: usize = 2000;

/// Shortest and longest body word kept as a token; longer words become a `skip:` token.
const WORD_LEN: std::ops::RangeInclusive<usize> = 3..=24;

/// Most bytes of decoded text read from one message.
const MAX_TEXT: usize = 256 * 1024;

/// The distinct tokens of a message, in order of first appearance, at most [`MAX_TOKENS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens(Vec<String>);

impl Tokens {
    /// Tokenises a raw RFC 5322 message; an unparseable one yields no tokens.
    pub fn of(raw: &[u8]) -> Tokens {
        let mut out = Collector::default();
        let Some(message) = MessageParser::default().parse(raw) else {
            return Tokens(out.tokens);
        };
        if let Some(subject) = message.subject() {
            out.words("subject:", subject);
        }
        for (tag, addresses) in [("from", message.from()), ("reply-to", message.reply_to())] {
            for addr in addresses.into_iter().flat_map(|a| a.iter()) {
                if let Some(address) = addr.address() {
                    let address = address.to_ascii_lowercase();
                    if let Some((_, domain)) = address.rsplit_once('@') {
                        out.push(format!("{tag}-domain:{domain}"));
                    }
                    out.push(format!("{tag}:{address}"));
                }
                if let Some(name) = addr.name() {
                    out.words(&format!("{tag}-name:"), name);
                }
            }
        }
        if let Some((_, results)) = message
            .headers_raw()
            .find(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        {
            out.auth_results(results);
        }
        for header in ["X-Mailer", "User-Agent"] {
            if let Some(HeaderValue::Text(t)) = message.header(header) {
                out.words("mailer:", t);
            }
        }
        let mut text = 0;
        for part in &message.parts {
            if let Some(ct) = part.content_type() {
                let sub = ct.subtype().unwrap_or("");
                out.push(format!("ct:{}/{sub}", ct.ctype()).to_ascii_lowercase());
            }
            if let Some(name) = part.attachment_name() {
                if let Some((_, ext)) = name.rsplit_once('.') {
                    out.push(format!("attachment:.{}", ext.to_ascii_lowercase()));
                }
            }
            let body = match &part.body {
                PartType::Text(t) => t.to_string(),
                PartType::Html(h) => mail_parser::decoders::html::html_to_text(h),
                _ => continue,
            };
            if let PartType::Html(h) = &part.body {
                out.links(h);
            } else {
                out.links(&body);
            }
            let take = floor_boundary(&body, MAX_TEXT.saturating_sub(text));
            text += take;
            out.words("", &body[..take]);
        }
        Tokens(out.tokens)
    }

    /// The tokens.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The largest index ≤ `max` that is a char boundary of `s`.
fn floor_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Default)]
struct Collector {
    tokens: Vec<String>,
    seen: HashSet<String>,
}

impl Collector {
    fn push(&mut self, token: String) {
        if self.tokens.len() < MAX_TOKENS && !self.seen.contains(&token) {
            self.seen.insert(token.clone());
            self.tokens.push(token);
        }
    }

    /// Lower-cased words of `text`, each with `prefix`.
    fn words(&mut self, prefix: &str, text: &str) {
        for word in text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '$' | '\'' | '-'))) {
            let word = word.trim_matches(|c| c == '\'' || c == '-');
            let len = word.chars().count();
            if WORD_LEN.contains(&len) {
                self.push(format!("{prefix}{}", word.to_lowercase()));
            } else if len > *WORD_LEN.end() {
                // SpamBayes: a long word tells its first letter and rough length only.
                let first = word.chars().next().unwrap_or('_').to_lowercase();
                self.push(format!("{prefix}skip:{first} {}", len / 10 * 10));
            }
        }
    }

    /// `auth:METHOD=RESULT` for each SPF, DKIM, DMARC and ARC result of the topmost
    /// `Authentication-Results` field, the one this server added (RFC 8601 §2.2).
    fn auth_results(&mut self, field: &str) {
        for resinfo in field.split(';').skip(1) {
            let Some((method, result)) = resinfo
                .split_whitespace()
                .next()
                .and_then(|r| r.split_once('='))
            else {
                continue;
            };
            let method = method.to_ascii_lowercase();
            if ["spf", "dkim", "dmarc", "arc"].contains(&method.as_str())
                && !result.is_empty()
                && result.chars().all(|c| c.is_ascii_alphabetic())
            {
                self.push(format!("auth:{method}={}", result.to_ascii_lowercase()));
            }
        }
    }

    /// The host of every `http(s)://` link in `text`.
    fn links(&mut self, text: &str) {
        let lower = text.to_ascii_lowercase();
        for (i, _) in lower.match_indices("://") {
            let scheme = &lower[..i];
            if !(scheme.ends_with("http") || scheme.ends_with("https")) {
                continue;
            }
            let host: String = lower[i + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
                .collect();
            if !host.is_empty() {
                self.push(format!("url:{host}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_body_links_and_bounds() {
        let raw = b"From: \"Cheap Pills\" <Sales@Pharma.Example>\r\nSubject: Buy NOW\r\n\
            X-Mailer: MassMailer 5\r\nContent-Type: text/html\r\n\r\n\
            <p>Click <a href=\"http://Pills.Example/x\">here</a> for pills, pills!</p>\r\n";
        let t = Tokens::of(raw);
        let t = t.as_slice();
        for want in [
            "subject:buy",
            "subject:now",
            "from:sales@pharma.example",
            "from-domain:pharma.example",
            "from-name:cheap",
            "mailer:massmailer",
            "ct:text/html",
            "url:pills.example",
            "pills",
            "click",
        ] {
            assert!(t.contains(&want.to_owned()), "{want} in {t:?}");
        }
        assert_eq!(t.iter().filter(|w| *w == "pills").count(), 1, "distinct");
        let long = format!("Subject: x\r\n\r\n{}\r\n", "a".repeat(60));
        assert_eq!(Tokens::of(long.as_bytes()).as_slice(), ["skip:a 60"]);
        let many: String = (0..5000).map(|i| format!("word{i} ")).collect();
        let raw = format!("Subject: x\r\n\r\n{many}\r\n");
        assert_eq!(Tokens::of(raw.as_bytes()).as_slice().len(), MAX_TOKENS);
        assert!(Tokens::of(b"").is_empty());
        assert!(Tokens::of(b"\xff\xfe\r\n\r\n\xff").as_slice().len() <= MAX_TOKENS);
        assert_eq!(floor_boundary("é", 1), 0);
        let raw = b"Authentication-Results: mx.example; spf=fail smtp.mailfrom=a@b;\r\n \
            dkim=pass header.d=b; dmarc=FAIL (p=none); x=\"q\"; iprev=pass\r\n\
            Authentication-Results: other.example; spf=pass\r\nSubject: s\r\n\r\nbody\r\n";
        let t = Tokens::of(raw);
        let auth: Vec<&String> = t
            .as_slice()
            .iter()
            .filter(|w| w.starts_with("auth:"))
            .collect();
        assert_eq!(auth, ["auth:spf=fail", "auth:dkim=pass", "auth:dmarc=fail"]);
    }
}
