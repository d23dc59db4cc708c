"""Large APPENDs are streamed to storage: a ~5 MiB message with a synchronizing literal and one with
LITERAL+ and a command pipelined behind it read back byte-identical with correct BODYSTRUCTURE and
ENVELOPE; APPENDUID and EXISTS are as for small messages; an over-quota large APPEND gets
NO [OVERQUOTA]; a streamed literal followed by another message (MULTIAPPEND) gets NO [LIMIT], by
junk BAD, and the connection stays usable. tests/imap.rs then checks what the database holds."""
import re

from common import *

BIG = "carol@example.test"      # no quota
SMALL = "dave@example.test"     # 4 MiB quota
SIZE = 5_243_000                # 6 chunks of 1 MiB


def message(seed, size=SIZE):
    """A MIME message of exactly `size` bytes with a base64 attachment."""
    head = (
        "From: Carol <carol@example.test>\r\nTo: dave@example.test\r\n"
        f"Subject: large {seed}\r\nMessage-ID: <large{seed}@example.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n"
        "--b\r\nContent-Type: application/octet-stream; name=\"d.bin\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    tail = b"--b--\r\n"
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = bytearray()
    i = seed
    need = size - len(head) - len(tail)
    while len(body) < need:
        line = bytes(alphabet[(i * 7 + k * 13) % 64] for k in range(76))
        body += line + b"\r\n"
        i += 1
    body = body[:need - 2] + b"\r\n"
    m = head + bytes(body) + tail
    assert len(m) == size, len(m)
    return m


def fetch_body(m, uid):
    data = ok(m.uid("FETCH", str(uid), "(RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE ENVELOPE)"))
    # imaplib splits the response around the literal: (prefix, BODY[] bytes), then the rest.
    prefix, raw = data[0]
    rest = data[1] if len(data) > 1 and isinstance(data[1], bytes) else b""
    return prefix + rest, raw


m = connect(BIG)
ok(m.select("INBOX"))
untagged(m, "EXISTS")

# Synchronizing literal (imaplib waits for the continuation request).
a = message(1)
typ, data = m.append("INBOX", r"(\Seen)", None, a)
assert typ == "OK", (typ, data)
match = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
assert match and match.group(2) == b"1", data
assert untagged(m, "EXISTS") == [b"1"], "EXISTS for the selected mailbox"
meta, raw = fetch_body(m, 1)
assert raw == a, "BODY[] differs from what was appended"
assert b"RFC822.SIZE %d" % SIZE in meta, meta
assert b'"APPLICATION" "OCTET-STREAM"' in meta.upper() and b'"BASE64"' in meta.upper(), meta
assert b'"large 1"' in meta and b'"<large1@example.test>"' in meta, meta
assert b"\\Seen" in ok(m.uid("FETCH", "1", "(FLAGS)"))[0]

# LITERAL+ with a command pipelined right behind it.
b = message(2)
send_raw(m, b"P1 APPEND INBOX {%d+}\r\n" % len(b) + b + b"\r\nP2 NOOP\r\n")
lines = read_until_tagged(m, "P1")
assert lines[-1].startswith(b"P1 OK [APPENDUID ") and b" 2] " in lines[-1], lines
assert b"* 2 EXISTS\r\n" in lines, lines
assert read_until_tagged(m, "P2")[-1].startswith(b"P2 OK")
meta, raw = fetch_body(m, 2)
assert raw == b, "LITERAL+ BODY[] differs"
assert b'"large 2"' in meta, meta

# Streamed but small enough to be stored inline (over 256 KiB, under 1 MiB).
c = message(3, 300_000)
ok(m.append("Drafts", None, None, c))

# After a streamed literal only the end of the command may follow: another message literal
# (MULTIAPPEND sets are held in memory) gets NO [LIMIT] instead of a continuation request ...
d = message(4, 400_000)
send_raw(m, b"Q1 APPEND INBOX {%d}\r\n" % len(d))
assert m.readline().startswith(b"+")
send_raw(m, d + b" {5}\r\n")
line = m.readline()
assert line.startswith(b"Q1 NO [LIMIT]"), line
# ... and trailing junk after a LITERAL+ one gets BAD; the connection carries on.
send_raw(m, b"Q2 APPEND INBOX {%d+}\r\n" % len(d) + d + b" junk\r\nQ3 NOOP\r\n")
assert read_until_tagged(m, "Q2")[-1].startswith(b"Q2 BAD")
assert read_until_tagged(m, "Q3")[-1].startswith(b"Q3 OK")
# Neither was stored.
ok(m.select("INBOX"))
assert ok(m.uid("SEARCH", "ALL"))[0] == b"1 2"
# A streamed APPEND to a missing mailbox gets TRYCREATE.
typ, data = m.append("NoSuchBox", None, None, message(5, 300_000))
assert typ == "NO" and b"TRYCREATE" in data[0], (typ, data)
m.logout()

# Over quota: refused after the literal was read, nothing stored, connection usable.
m = connect(SMALL)
typ, data = m.append("INBOX", None, None, message(6))
assert typ == "NO" and b"[OVERQUOTA]" in data[0], (typ, data)
send_raw(m, b"R1 APPEND INBOX {%d+}\r\n" % SIZE + message(7) + b"\r\nR2 NOOP\r\n")
assert b"[OVERQUOTA]" in read_until_tagged(m, "R1")[-1]
assert read_until_tagged(m, "R2")[-1].startswith(b"R2 OK")
ok(m.select("INBOX"))
assert ok(m.uid("SEARCH", "ALL"))[0] == b""
m.logout()
done()
