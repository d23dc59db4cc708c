//! Positions in `postern.toml` for errors found after deserialization: values serde accepted but a
//! later check refuses (`hostname`, `[mail]` enumerations, `smtp.max_line_length`), references
//! between tables (`[mail.views]` naming `[[dns.view]]`s), and `[dns]` errors reported by the DNS
//! crate by name (`view `internal` match_clients: ...`). The text is parsed a second time into
//! toml's spanned document tree; a path that does not exist falls back to its deepest existing
//! prefix (the table that lacks the key), so an error always gets the closest position known.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step of a path into the document: a table key or an array index.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// A key of a table.
    Key(&'a str),
    /// An element of an array (or array of tables).
    Index(usize),
}

/// The spanned document tree of a configuration text.
pub struct Spans<'i> {
    root: Option<Spanned<DeTable<'i>>>,
}

impl<'i> Spans<'i> {
    /// Parses `text`; a text that does not parse gives no positions.
    pub fn new(text: &'i str) -> Spans<'i> {
        Spans {
            root: DeTable::parse(text).ok(),
        }
    }

    /// The span of the value at `path`, or of its deepest existing prefix.
    pub fn value(&self, path: &[Step<'_>]) -> Option<Range<usize>> {
        let root = self.root.as_ref()?;
        let mut table = root.get_ref();
        let mut span = None;
        let mut current: Option<&Spanned<DeValue<'i>>> = None;
        for step in path {
            let next = match (step, current.map(Spanned::get_ref)) {
                (Step::Key(k), None) => table.get(*k),
                (Step::Key(k), Some(DeValue::Table(t))) => {
                    table = t;
                    table.get(*k)
                }
                (Step::Index(i), Some(DeValue::Array(a))) => a.get(*i),
                _ => None,
            };
            let Some(next) = next else { break };
            span = Some(next.span());
            current = Some(next);
        }
        span
    }

    /// The span of the key `key` of the table at the key path `table` (e.g. a `[mail.views]`
    /// entry's name), or of the table itself.
    pub fn key(&self, table: &[&str], key: &str) -> Option<Range<usize>> {
        let mut t = self.root.as_ref()?.get_ref();
        for k in table {
            match t.get(*k).map(Spanned::get_ref) {
                Some(DeValue::Table(inner)) => t = inner,
                _ => return None,
            }
        }
        let steps: Vec<Step<'_>> = table.iter().map(|k| Step::Key(k)).collect();
        t.iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, _)| k.span())
            .or_else(|| self.value(&steps))
    }

    /// The index of the last entry of the array of tables at `array` whose `name` is `name` (the
    /// last, so that a duplicate points at the repetition).
    fn named(&self, array: &[Step<'_>], name: &str) -> Option<usize> {
        let root = self.root.as_ref()?;
        let mut value: Option<&Spanned<DeValue<'i>>> = None;
        for step in array {
            value = match (step, value.map(Spanned::get_ref)) {
                (Step::Key(k), None) => root.get_ref().get(*k),
                (Step::Key(k), Some(DeValue::Table(t))) => t.get(*k),
                (Step::Index(i), Some(DeValue::Array(a))) => a.get(*i),
                _ => None,
            };
        }
        let DeValue::Array(entries) = value?.get_ref() else {
            return None;
        };
        entries.iter().rposition(|e| match e.get_ref() {
            DeValue::Table(t) => t
                .get("name")
                .is_some_and(|n| matches!(n.get_ref(), DeValue::String(s) if s.as_ref() == name)),
            _ => false,
        })
    }

    /// The position of a `[dns]` configuration error from the names in its message, as the DNS
    /// crate words them: "view `v` zone `z` allow_transfer: ...", "tsig_key `k`: ...",
    /// "duplicate acl `a`".
    pub fn dns_error(&self, message: &str) -> Option<Range<usize>> {
        let mut path = vec![Step::Key("dns")];
        let (array, name) = ["view", "tsig_key", "acl"]
            .iter()
            .find_map(|a| ticked(message, a).map(|n| (*a, n)))?;
        path.push(Step::Key(array));
        let i = self.named(&path, name)?;
        path.push(Step::Index(i));
        if array == "view" {
            if let Some(zone) = ticked(message, "zone") {
                path.push(Step::Key("zone"));
                match self.named(&path, zone) {
                    Some(j) => path.push(Step::Index(j)),
                    None => {
                        path.pop();
                    }
                }
            }
        }
        const FIELDS: [&str; 8] = [
            "match_clients",
            "match_destinations",
            "allow_transfer",
            "also_notify",
            "in_view",
            "secret",
            "algorithm",
            "match",
        ];
        if let Some(field) = FIELDS.iter().find(|f| {
            message
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|w| w == **f)
        }) {
            path.push(Step::Key(field));
        }
        self.value(&path)
    }
}

/// The name in backticks after the word `word` ("view `internal`" gives `internal`).
fn ticked<'m>(message: &'m str, word: &str) -> Option<&'m str> {
    let start = message
        .match_indices(&format!("{word} `"))
        .find(|(i, _)| {
            *i == 0 || !message[..*i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })?
        .0
        + word.len()
        + 2;
    let rest = &message[start..];
    rest.find('`').map(|end| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "hostname = \"x\"\n\
        [mail.views.inside]\naddresses = []\n\
        [[dns.tsig_key]]\nname = \"k\"\nsecret = \"a b\"\n\
        [[dns.view]]\nname = \"a\"\n\
        [[dns.view]]\nname = \"b\"\nmatch_clients = [\"nosuch\"]\n\
        [[dns.view.zone]]\nname = \"z.test\"\nin_view = \"a\"\n";

    fn line(span: Option<Range<usize>>) -> usize {
        TEXT[..span.expect("a position").start]
            .matches('\n')
            .count()
            + 1
    }

    #[test]
    fn values_keys_and_dns_errors_are_located() {
        let s = Spans::new(TEXT);
        assert_eq!(line(s.value(&[Step::Key("hostname")])), 1);
        assert_eq!(line(s.key(&["mail", "views"], "inside")), 2);
        assert_eq!(
            line(s.dns_error("view `b` match_clients: unknown acl `nosuch`")),
            11
        );
        assert_eq!(
            line(s.dns_error("tsig_key `k`: the secret must be base64")),
            6
        );
        assert_eq!(
            line(s.dns_error("view `b` zone `z.test`: in_view `a` has no such zone")),
            14
        );
        assert_eq!(line(s.dns_error("duplicate view `b`")), 9);
        assert_eq!(s.dns_error("something else"), None);
        assert_eq!(ticked("view `a` zone `b`", "zone"), Some("b"));
        assert_eq!(ticked("in_view `a`", "view"), None);
    }
}
