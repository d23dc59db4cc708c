"""MULTIAPPEND (RFC 3502), BINARY (RFC 3516), SEARCHRES (RFC 5182) and CATENATE (RFC 4469), with the hostile cases: sets over quota or too
many messages store nothing, a set past the command size limit or a huge literal8 is refused
without the server holding it, malformed sets are BAD, unknown transfer encodings get UNKNOWN-CTE.
Every refusal leaves the connection usable."""
import base64
import re

from common import *

ALICE = "alice@example.test"  # 1 MiB quota, max_message_size 1 MiB
m = connect(ALICE)
m.sock.settimeout(60)
caps = ok(m.capability())[0].split()
for cap in [b"MULTIAPPEND", b"BINARY", b"SEARCHRES", b"CATENATE"]:
    assert cap in caps, caps
ok(m.create("Multi"))


def command(tag, text):
    """Sends `text` (LITERAL+ literals only) and returns the raw lines up to the tagged reply."""
    send_raw(m, text)
    return read_until_tagged(m, tag)


def count(mailbox):
    typ, data = m.status(mailbox, "(MESSAGES)")
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))


def still_usable():
    assert b" OK " in command("n1", b"n1 NOOP\r\n")[-1]


def append_set(tag, mailbox, *messages):
    """A MULTIAPPEND of `messages` (LITERAL+); the raw reply lines."""
    literals = b"".join(b" {%d+}\r\n%s" % (len(m), m) for m in messages)
    return command(tag, b"%s APPEND %s%s\r\n" % (tag.encode(), mailbox, literals))


def msg(n, body=b"body"):
    return b"From: a@example.test\r\nSubject: m%d\r\n\r\n%s\r\n" % (n, body)


# --- MULTIAPPEND: three messages, options per message, consecutive UIDs in APPENDUID -------------
one, two, three = msg(1), msg(2), msg(3)
lines = command(
    "ma1",
    b"ma1 APPEND Multi (\\Seen) {%d+}\r\n%s (\\Flagged $Work) \"01-Feb-2021 10:00:00 +0000\" {%d+}\r\n%s ~{%d+}\r\n%s\r\n"
    % (len(one), one, len(two), two, len(three), three),
)
status = re.search(rb"ma1 OK \[APPENDUID (\d+) (\S+)\]", lines[-1])
assert status, lines
assert status.group(2) == b"1:3", lines
assert count("Multi") == 3
ok(m.select("Multi"))
fetched = ok(m.fetch("1:3", "(FLAGS INTERNALDATE BODY.PEEK[])"))
bodies = [f[1] for f in fetched if isinstance(f, tuple)]
assert bodies == [one, two, three], bodies
heads = [f[0] for f in fetched if isinstance(f, tuple)]
assert b"\\Seen" in heads[0] and b"\\Flagged" not in heads[0], heads
assert b"\\Flagged" in heads[1] and b"$Work" in heads[1] and b"01-Feb-2021" in heads[1], heads
assert b"\\Seen" not in heads[2], heads
ok(m.unselect())

# --- Malformed sets are BAD and store nothing ---------------------------------------------------
for bad in [
    b"mb1 APPEND Multi {1+}\r\nx {1+}\r\ny junk\r\n",
    b"mb1 APPEND Multi {1+}\r\nx (\\Seen {1+}\r\ny\r\n",
    b"mb1 APPEND Multi {1+}\r\nx{1+}\r\ny\r\n",
]:
    assert b"mb1 BAD" in command("mb1", bad)[-1], bad
assert count("Multi") == 3
still_usable()

# --- A missing mailbox is TRYCREATE ---------------------------------------------------------------
lines = append_set("mc1", b"Nowhere", b"x", b"y")
assert b"mc1 NO [TRYCREATE]" in lines[-1], lines

# --- A set larger than max_message_size as a whole: NO [TOOBIG], nothing stored -----------------
small = msg(4)
big = msg(5, b"x" * 530_000)
lines = append_set("mq1", b"Multi", small, big, big)
assert b"mq1 NO [TOOBIG]" in lines[-1], lines
assert count("Multi") == 3
still_usable()

# --- Over quota as a set: each message would fit, together they do not: nothing is stored ------
ok(m.create("Filler"))
ok(m.append("Filler", None, None, msg(9, b"f" * 600_000)))
quarter = msg(5, b"x" * 250_000)
lines = append_set("mq2", b"Multi", small, quarter, quarter)
assert b"mq2 NO [OVERQUOTA]" in lines[-1], lines
assert count("Multi") == 3
still_usable()

# --- Too many messages in one APPEND: NO [LIMIT], nothing stored ---------------------------------
lines = append_set("ml1", b"Multi", *([b"x"] * 1001))
assert b"ml1 NO [LIMIT]" in lines[-1], lines
assert count("Multi") == 3
still_usable()

# --- A message large enough to be streamed to disk must come alone ------------------------------
large = msg(6, b"y" * 300_000)
send_raw(m, b"ms1 APPEND Multi {%d}\r\n" % len(large))
assert m.readline().startswith(b"+")
send_raw(m, large + b" {1}\r\n")
lines = read_until_tagged(m, "ms1")
assert b"ms1 NO [LIMIT]" in lines[-1], lines
still_usable()
lines = command("ms2", b"ms2 APPEND Multi {%d+}\r\n%s {1+}\r\nz\r\n" % (len(large), large))
assert b"ms2 NO [LIMIT]" in lines[-1], lines
assert count("Multi") == 3
still_usable()

# --- A set past the command size limit is never held: refused, the connection survives or ends --
chunk = msg(7, b"z" * 200_000)
lines = []
try:
    send_raw(m, b"mx1 APPEND Multi" + (b" {%d+}\r\n%s" % (len(chunk), chunk)) * 7 + b"\r\n")
    while True:
        line = m.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(b"mx1 ") or line.startswith(b"* BYE"):
            break
except OSError:
    pass  # the server closed the connection while the client was still sending
assert not lines or b"mx1 NO" in lines[-1] or b"* BYE" in lines[-1], lines
m = connect(ALICE)
m.sock.settimeout(60)
assert count("Multi") == 3

# --- BINARY: decoded parts, sizes, partial windows with their origin ----------------------------
text = b"hello\r\nworld\r\n" * 3
raw = (
    b"From: b@example.test\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(text).replace(b"\n", b"\r\n")
    + b"--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nau lait\r\n"
    b"--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n"
    b"--b--\r\n"
)
ok(m.append("INBOX", None, None, raw))
ok(m.select("INBOX"))
uid = ok(m.search(None, "SUBJECT", "binary"))[0].split()[-1]
lines = command("b1", b"b1 UID FETCH %s (BINARY.SIZE[1] BINARY.PEEK[1] BINARY.PEEK[2])\r\n" % uid)
joined = b"".join(lines)
assert b"BINARY.SIZE[1] %d" % len(text) in joined, joined
assert text in joined and "café au lait".encode() in joined, joined
lines = command("b2", b"b2 UID FETCH %s (BINARY.PEEK[1]<7.5> FLAGS)\r\n" % uid)
joined = b"".join(lines)
assert b"BINARY[1]<7> {5}\r\nworld" in joined or b'BINARY[1]<7> "world"' in joined, joined
assert b"\\Seen" not in joined, joined
lines = command("b3", b"b3 UID FETCH %s (BINARY.PEEK[3])\r\n" % uid)
assert b"b3 NO [UNKNOWN-CTE]" in lines[-1], lines
# BINARY without .PEEK sets \Seen, like BODY[].
lines = command("b4", b"b4 UID FETCH %s (BINARY[1]<0.5>)\r\n" % uid)
assert b"\\Seen" in b"".join(lines), lines

# --- APPEND with a literal8: NUL bytes survive in BINARY, and never leak into BODY ----------------
payload = b"\x00\x01\xff-binary-\x00"
raw8 = (
    b"From: c@example.test\r\nSubject: nul\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + payload
)
lines = command("b5", b"b5 APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(raw8), raw8))
assert b"b5 OK" in lines[-1], lines
uid8 = re.search(rb"APPENDUID \d+ (\d+)", lines[-1]).group(1)
lines = command("b6", b"b6 UID FETCH %s (BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1])\r\n" % uid8)
joined = b"".join(lines)
assert b"BINARY[1] ~{%d}\r\n%s" % (len(payload), payload) in joined, joined
assert b"BINARY.SIZE[1] %d" % len(payload) in joined, joined
body = joined.split(b"BODY[1] ", 1)[1]
assert b"\x00" not in body, joined

# --- A huge literal8 is refused before it is sent -------------------------------------------------
send_raw(m, b"b7 APPEND INBOX ~{4000000000}\r\n")
line = m.readline()
assert line.startswith(b"b7 NO [TOOBIG]"), line
still_usable()
# --- CATENATE: TEXT and URL parts from the user's own messages; every other URL is BADURL --------
ok(m.select("Multi"))
uidv = re.search(rb"UIDVALIDITY (\d+)", b"".join(command("c0", b"c0 STATUS Multi (UIDVALIDITY)\r\n"))).group(1)
ok(m.create("Cat"))
lines = command(
    "c1",
    b'c1 APPEND Cat (\\Seen) CATENATE (URL "/Multi;UIDVALIDITY=%s/;UID=1/;SECTION=HEADER" TEXT {5+}\r\nnew\r\n URL "/Multi/;uid=2/;section=text")\r\n'
    % uidv,
)
assert re.search(rb"c1 OK \[APPENDUID \d+ 1\]", lines[-1]), lines
ok(m.select("Cat"))
lines = command("c2", b"c2 FETCH 1 BODY.PEEK[]\r\n")
joined = b"".join(lines)
assert b"Subject: m1\r\n\r\nnew\r\nbody\r\n" in joined, joined
for url in [
    b"imap://alice%40example.test@localhost/Multi/;uid=1",  # absolute form: refused
    b"/Multi;UIDVALIDITY=1/;uid=1",  # wrong UIDVALIDITY
    b"/Multi/;uid=999",  # no such message
    b"/NoSuchMailbox/;uid=1",  # none of alice's mailboxes
    b"/Multi/;uid=1/;urlauth=anonymous:internal:0123",  # URLAUTH is not offered
    b"/Multi/;uid=1/;section=bogus",
]:
    lines = command("c3", b'c3 APPEND Cat CATENATE (TEXT {3+}\r\nabc URL "%s" TEXT {3+}\r\nxyz)\r\n' % url)
    assert b"c3 NO [BADURL" in lines[-1], (url, lines)
assert count("Cat") == 1
# A missing target mailbox is TRYCREATE, even with a bad URL.
lines = command("c4", b'c4 APPEND Nowhere CATENATE (URL "/Multi/;uid=999")\r\n')
assert b"c4 NO [TRYCREATE]" in lines[-1], lines
# A message built past max_message_size from URL parts is refused, and nothing is held past it.
appended = ok(m.append("Multi", None, None, msg(8, b"w" * 2000)))[0]
uid4 = re.search(rb"APPENDUID \d+ (\d+)", appended).group(1)
parts = b" ".join([b'URL "/Multi/;uid=%s"' % uid4] * 600)
lines = command("c5", b"c5 APPEND Cat CATENATE (%s)\r\n" % parts)
assert b"c5 NO [TOOBIG]" in lines[-1], lines
# Too many parts in one APPEND.
parts = b" ".join([b'URL "/Multi/;uid=1"'] * 1001)
lines = command("c6", b"c6 APPEND Cat CATENATE (%s)\r\n" % parts)
assert b"c6 NO [LIMIT]" in lines[-1], lines
# Malformed lists are BAD.
for bad in [b"c7 APPEND Cat CATENATE ()\r\n", b"c7 APPEND Cat CATENATE (TEXT {1+}\r\nx FOO)\r\n"]:
    assert b"c7 BAD" in command("c7", bad)[-1], bad
assert count("Cat") == 1
ok(m.unselect())
ok(m.delete("Cat"))

# --- SEARCHRES: SEARCH RETURN (SAVE) and $ ------------------------------------------------------
ok(m.select("Multi"))  # UIDs 1:4; 1 is \Seen, 2 is \Flagged
lines = command("s0", b"s0 FETCH $ (FLAGS)\r\n")  # nothing saved yet: an empty set
assert len(lines) == 1 and b"s0 OK" in lines[0], lines
lines = command("s1", b"s1 SEARCH RETURN (SAVE) UNSEEN\r\n")
assert len(lines) == 1 and b"s1 OK" in lines[0], lines  # SAVE alone: no ESEARCH
lines = command("s2", b"s2 UID FETCH $ (FLAGS)\r\n")
assert sorted(re.findall(rb"UID (\d+)", b"".join(lines))) == [b"2", b"3", b"4"], lines
lines = command("s3", b"s3 SEARCH $ FLAGGED\r\n")
assert b"* SEARCH 2\r\n" in lines, lines
lines = command("s4", b"s4 UID SEARCH OR UID $ SUBJECT \"$\"\r\n")
assert b"* SEARCH 2 3 4\r\n" in lines, lines
lines = command("s5", b"s5 STORE $ +FLAGS (\\Answered)\r\n")
assert b"s5 OK" in lines[-1], lines
lines = command("s6", b"s6 SEARCH ANSWERED\r\n")
assert b"* SEARCH 2 3 4\r\n" in lines, lines
ok(m.create("Saved"))
lines = command("s7", b"s7 COPY $ Saved\r\n")
assert b"COPYUID" in lines[-1] and count("Saved") == 3, lines
# With MIN and MAX only, the saved result is those two messages; ESEARCH is still sent.
lines = command("s8", b"s8 SEARCH RETURN (SAVE MIN MAX) ALL\r\n")
assert b"* ESEARCH (TAG \"s8\") MIN 1 MAX 4\r\n" in lines, lines
lines = command("s9", b"s9 SEARCH $\r\n")
assert b"* SEARCH 1 4\r\n" in lines, lines
# A failed SEARCH ... RETURN (SAVE) empties $.
lines = command("sa", b"sa SEARCH RETURN (SAVE) CHARSET BOGUS ALL\r\n")
assert b"sa NO" in lines[-1], lines
lines = command("sb", b"sb SEARCH $\r\n")
assert b"* SEARCH\r\n" in lines, lines
# The saved result ends with the selection.
lines = command("sc", b"sc SEARCH RETURN (SAVE) ALL\r\n")
ok(m.select("Multi"))
lines = command("sd", b"sd SEARCH $\r\n")
assert b"* SEARCH\r\n" in lines, lines
assert b"BAD" in command("se", b"se FETCH 1:$ (FLAGS)\r\n")[-1]
m.logout()
done()
