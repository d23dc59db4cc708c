"""ENVELOPE and BODYSTRUCTURE of real-world-shaped messages (tests/fixtures/mail, delivered in file
name order with Store::accept), checked against RFC 3501 §7.4.2 by structure, not by text."""
import email.header
import os
import re

from common import *

FIXTURES = sorted(os.listdir(os.environ["FIXTURES"]))
RAW = [open(os.path.join(os.environ["FIXTURES"], f), "rb").read() for f in FIXTURES]


def parse(s):
    """Parses an IMAP parenthesised list (no literals) into nested Python lists."""
    tokens = re.findall(rb'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+', s)
    stack = [[]]
    for t in tokens:
        if t == b"(":
            stack.append([])
        elif t == b")":
            inner = stack.pop()
            stack[-1].append(inner)
        elif t.startswith(b'"'):
            stack[-1].append(re.sub(rb"\\(.)", rb"\1", t[1:-1]).decode())
        elif t.upper() == b"NIL":
            stack[-1].append(None)
        elif t.isdigit():
            stack[-1].append(int(t))
        else:
            stack[-1].append(t.decode())
    return stack[0]


def item(seq, name):
    data = ok(m.fetch(str(seq), f"({name})"))[0]
    data = data if isinstance(data, bytes) else data[0]
    body = data[data.index(b"(") + 1:data.rindex(b")")]
    parsed = parse(body)
    return parsed[parsed.index(name) + 1]


def decode(word):
    return str(email.header.make_header(email.header.decode_header(word)))


def body_of(raw):
    return raw[raw.index(b"\r\n\r\n") + 4:]


m = connect("alice@example.test")
ok(m.select("INBOX"))
assert int(m.untagged_responses["EXISTS"][0]) == len(RAW)

# 01: encoded words in From and Subject; single text part, quoted-printable.
env = item(1, "ENVELOPE")
assert env[0] == "Tue, 14 Nov 2023 10:00:00 +0100", env
assert decode(env[1]) == "Grüße aus München", env
assert decode(env[2][0][0]) == "José Muñoz" and env[2][0][2:] == ["jose", "example.org"], env
assert env[3] == env[2] and env[4] == env[2], "sender and reply-to default to from"
assert env[5] == [["Alice", None, "alice", "example.test"]], env
assert env[6] is None and env[7] is None and env[8] is None and env[9] == "<utf8-1@example.org>"
bs = item(1, "BODYSTRUCTURE")
assert bs[:6] == ["TEXT", "PLAIN", ["charset", "utf-8"], None, None, "QUOTED-PRINTABLE"], bs
assert bs[6] == len(body_of(RAW[0])) and bs[7] == 2, bs

# 02: multipart/alternative.
bs = item(2, "BODYSTRUCTURE")
assert bs[0][:2] == ["TEXT", "PLAIN"] and bs[1][:2] == ["TEXT", "HTML"], bs
assert bs[0][5] == "7BIT" and bs[1][5] == "QUOTED-PRINTABLE", bs
assert bs[2] == "ALTERNATIVE" and bs[3] == ["boundary", "=_alt_boundary"], bs
assert ok(m.fetch("2", "(BODY.PEEK[2])"))[0][1] == b"<html><body><p>Offers of the week.</p></body></html>"

# 03: mixed with nested alternative and two attachments (one RFC 2231 file name).
env = item(3, "ENVELOPE")
assert env[5] == [["Alice", None, "alice", "example.test"], [None, None, "carol", "example.net"]], env
assert env[6] == [["Dave, the Boss", None, "dave", "example.net"]], env
assert env[4] == [[None, None, "team", "example.net"]] and env[8] == "<alt-2@shop.example>", env
bs = item(3, "BODYSTRUCTURE")
alt, pdf, png = bs[0], bs[1], bs[2]
assert "ALTERNATIVE" in alt and alt[0][:2] == ["TEXT", "PLAIN"] and alt[1][:2] == ["TEXT", "HTML"], alt
assert pdf[:6] == ["APPLICATION", "PDF", ["name", "report.pdf"], "<pdf1@example.net>", None, "BASE64"], pdf
assert pdf[8] == ["ATTACHMENT", ["filename", "report.pdf"]], pdf
assert png[:2] == ["IMAGE", "PNG"] and png[8][0] == "ATTACHMENT", png
assert decode(png[8][1][1]) == "übersicht.png", png
assert bs[3] == "MIXED", bs
assert ok(m.fetch("3", "(BODY.PEEK[1.2])"))[0][1] == b"<p>See attached.</p>"
mime = ok(m.fetch("3", "(BODY.PEEK[2.MIME])"))[0][1]
assert mime.startswith(b"Content-Type: application/pdf") and mime.endswith(b"\r\n\r\n"), mime

# 04: message/rfc822 with its own envelope and body structure.
bs = item(4, "BODYSTRUCTURE")
fwd = bs[1]
assert fwd[:2] == ["MESSAGE", "RFC822"], fwd
inner_env, inner_bs, lines = fwd[7], fwd[8], fwd[9]
assert inner_env[1] == "original" and inner_env[2] == [["Eve", None, "eve", "example.com"]], inner_env
assert inner_bs[:3] == ["TEXT", "PLAIN", ["charset", "iso-8859-1"]], inner_bs
assert lines == 7, fwd
assert ok(m.fetch("4", "(BODY.PEEK[2.TEXT])"))[0][1] == b"The original text."
assert ok(m.fetch("4", "(BODY.PEEK[2.1])"))[0][1] == b"The original text."
hdr = ok(m.fetch("4", "(BODY.PEEK[2.HEADER.FIELDS (SUBJECT)])"))[0][1]
assert hdr == b"Subject: original\r\n\r\n", hdr

# 05: groups, Sender distinct from From, no MIME headers (text/plain us-ascii default).
env = item(5, "ENVELOPE")
assert env[3] == [[None, None, "bounces", "example.org"]], env
assert env[5] == [[None, None, "undisclosed-recipients", None], [None, None, None, None]], env
assert env[6] == [[None, None, "Friends", None], [None, None, "frank", "example.org"],
                  ["Gina G", None, "gina", "example.org"], [None, None, None, None]], env
bs = item(5, "BODYSTRUCTURE")
assert bs[:6] == ["TEXT", "PLAIN", ["charset", "us-ascii"], None, None, "7BIT"], bs

# 06: multipart/related with an inline image and Content-Language.
bs = item(6, "BODYSTRUCTURE")
html, gif = bs[0], bs[1]
assert html[:2] == ["TEXT", "HTML"] and html[10] in ("en-US", ["en-US"]), html
assert gif[:2] == ["IMAGE", "GIF"] and gif[3] == "<img1>" and gif[8][0] == "INLINE", gif
assert bs[2] == "RELATED" and "type" in bs[3], bs
body = item(6, "BODY")
assert len(body[0]) == 8 and body[2] == "RELATED", body  # BODY has no extension data

# SEARCH on stored, decoded header values.
m.literal = "München".encode()
assert ok(m.search("UTF-8", "SUBJECT"))[0] == b"1"
assert ok(m.search(None, "FROM", "eve"))[0] == b""
assert ok(m.search(None, "BODY", "original"))[0] == b"4"
done()
