//! ESEARCH (RFC 4731) and ESORT (RFC 5267 §3.2): `SEARCH RETURN (MIN MAX ALL COUNT) ...`, the
//! same for SORT, CONTEXT=SEARCH's UPDATE and PARTIAL (RFC 5267 §4.1, §4.4), and the untagged
//! ESEARCH response. imap-codec 2.0.0-alpha.10 has none of them, so the result options are taken
//! off here (the rest is a plain SEARCH or SORT) and the response is written here.

use std::num::NonZeroU32;

/// The result options of one `SEARCH RETURN (...)` (RFC 4731 §3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// The command's tag, echoed in the response's `(TAG "...")`.
    pub tag: String,
    /// MIN: the lowest matching number.
    pub min: bool,
    /// MAX: the highest matching number.
    pub max: bool,
    /// ALL: every matching number, as a sequence set (also what `RETURN ()` means).
    pub all: bool,
    /// COUNT: how many matched.
    pub count: bool,
    /// SAVE (SEARCHRES, RFC 5182 §2.1): keep the result for `$`.
    pub save: bool,
    /// UPDATE (RFC 5267 §4.1): keep the client's copy of the result current with ADDTO and
    /// REMOVEFROM until CANCELUPDATE or the mailbox is closed.
    pub update: bool,
    /// PARTIAL low:high (RFC 5267 §4.4): only these 1-based positions of the result.
    pub partial: Option<(u32, u32)>,
}

impl SearchReturn {
    /// SAVE is the only option: no ESEARCH response is sent (RFC 5182 §2.1).
    pub fn save_only(&self) -> bool {
        self.save && !(self.min || self.max || self.all || self.count)
    }

    /// Which of the matches (ascending) SAVE keeps: all of them, or with only MIN and/or MAX,
    /// just the messages those return (RFC 5182 §2.1).
    pub fn saved<T: Copy>(&self, matches: &[T]) -> Vec<T> {
        if self.all || self.count || !(self.min || self.max) {
            return matches.to_vec();
        }
        let mut out: Vec<T> = Vec::new();
        if let (true, Some(&first)) = (self.min, matches.first()) {
            out.push(first);
        }
        if let (true, Some(&last)) = (self.max, matches.last()) {
            if matches.len() > 1 || !self.min {
                out.push(last);
            }
        }
        out
    }
}

/// Whether `message` at `pos` starts with `word`, ignoring ASCII case (command names and
/// keywords are case-insensitive, RFC 3501 §9).
pub(crate) fn starts_word(message: &[u8], pos: usize, word: &[u8]) -> bool {
    message
        .get(pos..pos + word.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(word))
}

/// If `message` is a `[UID] SEARCH RETURN (...)` or `[UID] SORT RETURN (...)`, returns the plain
/// command and the options; an unknown option is an error (BAD).
pub fn split(message: &[u8]) -> Option<Result<(Vec<u8>, SearchReturn), &'static str>> {
    let space = message.iter().position(|&b| b == b' ')?;
    let mut pos = space + 1;
    if starts_word(message, pos, b"UID ") {
        pos += 4;
    }
    let verb = [&b"SEARCH "[..], b"SORT "]
        .into_iter()
        .find(|v| starts_word(message, pos, v))?;
    let search_end = pos + verb.len();
    if !starts_word(message, search_end, b"RETURN (") {
        return None;
    }
    let open = search_end + 7;
    let Some(close) = message[open..].iter().position(|&b| b == b')') else {
        return Some(Err("Syntax error in RETURN"));
    };
    let close = open + close;
    let mut options = SearchReturn {
        tag: String::from_utf8_lossy(&message[..space]).into_owned(),
        ..SearchReturn::default()
    };
    let mut words = message[open + 1..close].split(|&b| b == b' ');
    while let Some(word) = words.next() {
        match word.to_ascii_uppercase().as_slice() {
            b"" => {}
            b"MIN" => options.min = true,
            b"MAX" => options.max = true,
            b"ALL" => options.all = true,
            b"COUNT" => options.count = true,
            b"SAVE" => options.save = true,
            b"UPDATE" => options.update = true,
            b"PARTIAL" => match words.next().and_then(partial_range) {
                Some(range) => options.partial = Some(range),
                None => return Some(Err("Invalid PARTIAL range")),
            },
            _ => return Some(Err("Unknown SEARCH result option")),
        }
    }
    let other = options.min || options.max || options.count || options.save;
    if !(other || options.partial.is_some()) {
        options.all = true;
    }
    if message.get(close + 1) != Some(&b' ') {
        return Some(Err("Syntax error in RETURN"));
    }
    let mut plain = message[..search_end].to_vec();
    plain.extend_from_slice(&message[close + 2..]);
    Some(Ok((plain, options)))
}

/// A PARTIAL range `low:high` of two positions (RFC 5267 §4.4: `partial-range`, no `*`), put in
/// ascending order.
fn partial_range(word: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(word).ok()?;
    let (a, b) = text.split_once(':')?;
    let number = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse::<NonZeroU32>().ok())
            .flatten()
    };
    let (a, b) = (number(a)?.get(), number(b)?.get());
    Some((a.min(b), a.max(b)))
}

/// `numbers` (ascending) as a sequence set: `1:3,5,7:8`.
pub(crate) fn sequence_set(numbers: &[NonZeroU32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i].get();
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1].get() == end + 1 {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The untagged ESEARCH response (RFC 4731 §3.1, MODSEQ from RFC 7162 §3.1.5) for the matching
/// `numbers` in ascending order (in sort order for ESORT: MIN and MAX are then the first and last,
/// and ALL keeps the order, RFC 5267 §3.2); MIN, MAX and ALL are left out when nothing matched.
pub fn response(
    options: &SearchReturn,
    uid: bool,
    numbers: &[NonZeroU32],
    modseq: Option<u64>,
) -> Vec<u8> {
    let mut line = format!("* ESEARCH (TAG \"{}\")", options.tag);
    if uid {
        line.push_str(" UID");
    }
    if let (Some(first), Some(last)) = (numbers.first(), numbers.last()) {
        if options.min {
            line.push_str(&format!(" MIN {first}"));
        }
        if options.max {
            line.push_str(&format!(" MAX {last}"));
        }
        if options.all {
            line.push_str(&format!(" ALL {}", sequence_set(numbers)));
        }
    }
    if options.count {
        line.push_str(&format!(" COUNT {}", numbers.len()));
    }
    if let Some((low, high)) = options.partial {
        let from = (low as usize - 1).min(numbers.len());
        let to = (high as usize).min(numbers.len());
        let part = &numbers[from..to.max(from)];
        let set = if part.is_empty() {
            "NIL".to_owned()
        } else {
            sequence_set(part)
        };
        line.push_str(&format!(" PARTIAL ({low}:{high} {set})"));
    }
    if let Some(m) = modseq.filter(|_| !numbers.is_empty()) {
        line.push_str(&format!(" MODSEQ {m}"));
    }
    line.push_str("\r\n");
    line.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: &[u32]) -> Vec<NonZeroU32> {
        v.iter().map(|&x| NonZeroU32::new(x).unwrap()).collect()
    }

    #[test]
    fn options_come_off() {
        let (plain, o) = split(b"t1 UID SEARCH RETURN (MIN count) SEEN\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(plain, b"t1 UID SEARCH SEEN\r\n");
        assert!(o.min && o.count && !o.max && !o.all && o.tag == "t1");
        let (_, o) = split(b"t SEARCH RETURN () ALL\r\n").unwrap().unwrap();
        assert!(o.all);
        assert!(split(b"t SEARCH RETURN (BOGUS) ALL\r\n").unwrap().is_err());
        assert!(split(b"t SEARCH RETURN (MIN\r\n").unwrap().is_err());
        assert!(split(b"t SEARCH ALL\r\n").is_none());
        let (_, o) = split(b"t SEARCH RETURN (SAVE) ALL\r\n").unwrap().unwrap();
        assert!(o.save_only());
        let (_, o) = split(b"t SEARCH RETURN (SAVE MIN MAX) ALL\r\n")
            .unwrap()
            .unwrap();
        assert!(!o.save_only());
        assert_eq!(o.saved(&[2, 5, 9]), vec![2, 9]);
        assert_eq!(o.saved(&[5]), vec![5]);
        let (_, o) = split(b"t SEARCH RETURN (SAVE COUNT) ALL\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(o.saved(&[2, 5, 9]), vec![2, 5, 9]);
        let (plain, o) = split(b"t UID SORT RETURN (ALL) (ARRIVAL) UTF-8 ALL\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(plain, b"t UID SORT (ARRIVAL) UTF-8 ALL\r\n");
        assert!(o.all);
    }

    #[test]
    fn partial_ranges() {
        let (_, o) = split(b"t SEARCH RETURN (PARTIAL 4:2) ALL\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(o.partial, Some((2, 4)));
        assert!(!o.all);
        for bad in ["1", "1:*", "*:1", "0:3", "-1:2", ""] {
            let cmd = format!("t SEARCH RETURN (PARTIAL {bad}) ALL\r\n");
            assert!(split(cmd.as_bytes()).unwrap().is_err(), "{bad}");
        }
        let (_, o) = split(b"t SEARCH RETURN (UPDATE) ALL\r\n").unwrap().unwrap();
        assert!(o.update && o.all);
        let options = SearchReturn {
            tag: "p".into(),
            partial: Some((2, 10)),
            ..SearchReturn::default()
        };
        assert_eq!(
            response(&options, false, &n(&[1, 2, 4, 5]), None),
            b"* ESEARCH (TAG \"p\") PARTIAL (2:10 2,4:5)\r\n"
        );
        let options = SearchReturn {
            partial: Some((6, 6)),
            ..options
        };
        assert_eq!(
            response(&options, false, &n(&[1, 2]), None),
            b"* ESEARCH (TAG \"p\") PARTIAL (6:6 NIL)\r\n"
        );
    }

    #[test]
    fn responses() {
        let all = SearchReturn {
            tag: "a".into(),
            all: true,
            ..SearchReturn::default()
        };
        assert_eq!(
            response(&all, true, &n(&[1, 2, 3, 5, 7, 8]), None),
            b"* ESEARCH (TAG \"a\") UID ALL 1:3,5,7:8\r\n"
        );
        assert_eq!(
            response(&all, false, &n(&[3, 2, 1, 4, 5]), None),
            b"* ESEARCH (TAG \"a\") ALL 3,2,1,4:5\r\n"
        );
        let count = SearchReturn {
            tag: "a".into(),
            min: true,
            count: true,
            ..SearchReturn::default()
        };
        assert_eq!(
            response(&count, false, &[], Some(4)),
            b"* ESEARCH (TAG \"a\") COUNT 0\r\n"
        );
        assert_eq!(
            response(&count, false, &n(&[4, 9]), Some(12)),
            b"* ESEARCH (TAG \"a\") MIN 4 COUNT 2 MODSEQ 12\r\n"
        );
    }
}
