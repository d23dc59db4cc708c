"""SEARCH text keys and header FETCHes answered from the search index (issue 12): SUBJECT, FROM,
TO, BODY and TEXT match decoded text (quoted-printable, a base64 text attachment, charsets, HTML)
and never the base64 of a binary part; BODY.PEEK[HEADER.FIELDS (...)], BODY.PEEK[HEADER] and
RFC822.HEADER return the same bytes whether FETCH reads only the header block or the message."""
import time

from common import connect, done, ok

MIXED = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.test>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
    b"X-Custom: tracking-7731\r\n"
    b"Date: Tue, 14 Nov 2023 22:13:20 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Die Cr=C3=A8me br=C3=BBl=C3=A9e kostet 50% heute.\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8; name=notes.txt\r\n"
    b"Content-Disposition: attachment; filename=notes.txt\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"U2VjcmV0IHBsYW46IG1lZXQgYXQgdGhlIGxpZ2h0aG91c2Uu\r\n"
    b"--b1\r\n"
    b"Content-Type: application/octet-stream; name=blob.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"SGVsbG9Xb3JsZC1iaW5hcnk=\r\n"
    b"--b1--\r\n"
)
HTML = (
    b"From: Bob <bob@example.test>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: Newsletter\r\n"
    b"Content-Type: text/html; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<html><body><p>Sch=F6nes <b>Wochenende</b></p></body></html>\r\n"
)
PLAIN = (
    b"From: carol@example.test\r\nTo: alice@example.test\r\nSubject: lunch\r\n"
    b"Message-ID: <lunch@example.test>\r\nX-Long: one\r\n two\r\n\r\nSee you at noon.\r\n"
)

m = connect("alice@example.test")
ok(m.select("INBOX"))
for raw in (MIXED, HTML, PLAIN):
    ok(m.append("INBOX", None, None, raw))


def search(*criteria, charset=None):
    return ok(m.uid("SEARCH", *(["CHARSET", charset] if charset else []), *criteria))[0].decode().split()


def search_utf8(key, text):
    m.literal = text.encode()
    return ok(m.uid("SEARCH", "CHARSET", "UTF-8", key))[0].decode().split()


assert search("BODY", "lighthouse") == ["1"], "base64 text attachment, decoded"
assert search("TEXT", "LIGHTHOUSE") == ["1"]
assert search("BODY", "U2VjcmV0") == [], "base64 of a text part is not text"
assert search("BODY", "SGVsbG9Xb3JsZC1iaW5hcnk") == [], "base64 of a binary part is not text"
assert search("TEXT", "SGVsbG9") == []
assert search_utf8("BODY", "CRÈME BRÛLÉE") == ["1"], "quoted-printable UTF-8, case-folded"
assert search_utf8("BODY", "schönes wochenende") == ["2"], "HTML as text, from ISO-8859-1"
assert search("BODY", "<b>") == []
assert search("BODY", '"50% heute"') == ["1"]
assert search("BODY", "oo") == ["3"], "shorter than a trigram"
assert search("TEXT", "tracking-7731") == ["1"] and search("BODY", "tracking-7731") == []
assert search("TEXT", "noon") == ["3"]
assert search_utf8("SUBJECT", "GRÜßE AUS") == ["1"]
assert search("SUBJECT", "l") == ["1", "2", "3"]
assert search_utf8("FROM", "jürgen") == ["1"]
assert search("FROM", "carol") == ["3"]
assert search("TO", "alice") == ["1", "2", "3"]
assert search("HEADER", "Subject", "lunch") == ["3"]
assert search("HEADER", "X-Long", "two") == ["3"]
assert search("OR", "BODY", "lighthouse", "FROM", "bob") == ["1", "2"]
assert search("NOT", "BODY", "lighthouse", "TEXT", "example") == ["2", "3"]
assert search("BODY", '""') == ["1", "2", "3"]

# A message appended after a search is found by the next one.
ok(m.append("INBOX", None, None, PLAIN.replace(b"noon", b"midnight")))
assert search("BODY", "midnight") == ["4"]

# Header FETCHes: the header-only path (nothing else asks for the message) and the full path
# (BODYSTRUCTURE in the same FETCH) return the same bytes, which are the header block's.
FIELDS = "BODY.PEEK[HEADER.FIELDS (From Subject X-Long Message-ID)]"
ITEMS = f"(UID RFC822.SIZE FLAGS {FIELDS} BODY.PEEK[HEADER] RFC822.HEADER BODY.PEEK[HEADER.FIELDS.NOT (To)])"


def literals(items):
    data = ok(m.uid("FETCH", "1:*", items))
    return [p[1] for p in data if isinstance(p, tuple)]


fast = literals(ITEMS)
full = literals(ITEMS[:-1] + " BODYSTRUCTURE)")
assert fast == full and len(fast) == 16, (fast, full)
for i, raw in enumerate((MIXED, HTML, PLAIN, PLAIN.replace(b"noon", b"midnight"))):
    header = raw[: raw.index(b"\r\n\r\n") + 4]
    assert fast[4 * i + 1] == header and fast[4 * i + 2] == header, (i, fast[4 * i + 1])
assert fast[8] == (
    b"From: carol@example.test\r\nSubject: lunch\r\nMessage-ID: <lunch@example.test>\r\n"
    b"X-Long: one\r\n two\r\n\r\n"
), fast[8]
assert b"To:" not in fast[11] and b"Subject: lunch" in fast[11], fast[11]
# A header fetch does not set \Seen.
assert b"\\Seen" not in ok(m.fetch("1:*", "(FLAGS)"))[0]
m.logout()
done()
