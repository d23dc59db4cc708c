"""URLAUTH (RFC 4467, issue 12): GENURLAUTH only for the user's own mailboxes, URLFETCH of another
user's URL only with that user's valid token and an access identifier that admits the fetcher;
forged, altered, expired and reset tokens give NIL; RESETKEY of one mailbox leaves the others."""
import re

from common import *

ALICE, BOB = "alice@example.test", "bob@example.test"
alice = connect(ALICE)
bob = connect(BOB)
for c in (alice, bob):
    c.sock.settimeout(30)
assert "URLAUTH" in ok(alice.capability())[0].decode().upper().split()
body1 = b"Subject: one\r\nContent-Type: text/plain\r\n\r\nsecret one\r\n"
body2 = (b"Subject: two\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
         b"Content-Type: text/plain\r\n\r\npart one\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
         b"part two\r\n--b--\r\n")
ok(alice.append("INBOX", None, None, body1))
ok(alice.append("INBOX", None, None, body2))
ok(alice.create("Other"))
ok(alice.append("Other", None, None, body1))
ok(bob.append("INBOX", None, None, b"Subject: bob\r\n\r\nbob's\r\n"))
ok(alice.select("INBOX"))
uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", ok(alice.status("INBOX", "(UIDVALIDITY)"))[0]).group(1))
command = tagged


def gen(c, url, mech="INTERNAL"):
    lines, tag = command(c, f'GENURLAUTH "{url}" {mech}')
    if not lines[-1].startswith(f"{tag} OK".encode()):
        return lines[-1]
    got = [l for l in lines if l.startswith(b"* GENURLAUTH ")]
    assert len(got) == 1, lines
    return re.match(rb'\* GENURLAUTH "(.*)"\r\n', got[0]).group(1).decode()


def fetch(c, url):
    """URLFETCH of one URL: its bytes, None for NIL, or the tagged line if it failed."""
    lines, tag = command(c, f'URLFETCH "{url}"')
    if not lines[-1].startswith(f"{tag} OK".encode()):
        return lines[-1]
    data = b"".join(lines[:-1])
    head = f'* URLFETCH "{url}" '.encode()
    assert data.startswith(head), data
    rest = data[len(head):]
    if rest == b"NIL\r\n":
        return None
    size, content = re.match(rb"\{(\d+)\}\r\n(.*)\r\n$", rest, re.S).groups()
    assert int(size) == len(content), (size, content)
    return content


base = "imap://alice@example.test/INBOX/;uid=1"
authuser = gen(alice, base + ";urlauth=authuser")
assert authuser.startswith(base + ";urlauth=authuser:INTERNAL:"), authuser
token = authuser.rsplit(":", 1)[1]
assert re.fullmatch(r"[0-9a-f]{64}", token), token
only_alice = gen(alice, base + ";urlauth=user+alice@example.test")
only_bob = gen(alice, base + ";urlauth=user+bob@example.test")
anonymous = gen(alice, base + ";urlauth=anonymous")
# Owner and other users by access identifier.
assert fetch(alice, authuser) == body1
assert fetch(bob, authuser) == body1
assert fetch(bob, anonymous) == body1
assert fetch(bob, only_bob) == body1
assert fetch(alice, only_bob) is None
assert fetch(bob, only_alice) is None
# Forged and altered: a flipped digit, another rump with the same token, a made-up token,
# another access identifier, another mechanism, no token at all.
flipped = authuser[:-1] + ("0" if authuser[-1] != "0" else "1")
assert fetch(bob, flipped) is None
assert fetch(bob, authuser.replace(";uid=1;", ";uid=2;")) is None
assert fetch(bob, authuser.replace("/INBOX/", "/Other/")) is None
assert fetch(bob, authuser.replace("authuser", "anonymous")) is None
assert fetch(bob, base + ";urlauth=authuser:INTERNAL:" + "0" * 64) is None
assert fetch(bob, base + ";urlauth=authuser:INTERNAL:" + token[:32]) is None
assert fetch(bob, base + ";urlauth=authuser:OTHER:" + token) is None
assert fetch(bob, base + ";urlauth=authuser") is None
assert fetch(bob, base) is None
assert fetch(bob, "garbage") is None
# UIDVALIDITY and sections, partials and expiry are part of what is signed.
with_validity = f"imap://alice@example.test/INBOX;UIDVALIDITY={uidvalidity}/;uid=2/;section=1;urlauth=authuser"
part = gen(alice, with_validity)
assert fetch(bob, part) == b"part one", fetch(bob, part)
assert fetch(bob, part.replace(f"UIDVALIDITY={uidvalidity}", f"UIDVALIDITY={uidvalidity + 1}")) is None
wrong_validity = with_validity.replace(f"UIDVALIDITY={uidvalidity}", f"UIDVALIDITY={uidvalidity + 1}")
assert b"NO" in gen(alice, wrong_validity)
partial = gen(alice, "imap://alice@example.test/INBOX/;uid=2/;section=2/;partial=1.3;urlauth=authuser")
assert fetch(bob, partial) == b"art", fetch(bob, partial)
expired = gen(alice, base + ";expire=2001-01-01T00:00:00Z;urlauth=authuser")
assert fetch(bob, expired) is None
future = gen(alice, base + ";expire=2999-01-01T00:00:00Z;urlauth=authuser")
assert fetch(bob, future) == body1
assert fetch(bob, future.replace("2999", "2998")) is None
# A message that is gone is NIL.
gone = gen(alice, "imap://alice@example.test/INBOX/;uid=99;urlauth=authuser")
assert fetch(alice, gone) is None
# Only one's own mailboxes: another user's, as a user of another name, a missing mailbox.
assert b"NO" in gen(alice, "imap://bob@example.test/INBOX/;uid=1;urlauth=anonymous")
assert b"NO" in gen(alice, "imap://alice@example.test/Missing/;uid=1;urlauth=anonymous")
assert b"NO" in gen(bob, base + ";urlauth=anonymous")
# Malformed GENURLAUTH: a token already, no URLAUTH, another mechanism, odd arguments.
assert b"BAD" in gen(alice, authuser)
assert b"BAD" in gen(alice, base)
assert b"NO" in gen(alice, base + ";urlauth=authuser", "XSHA1")
lines, tag = command(alice, "GENURLAUTH")
assert lines[-1].startswith(f"{tag} BAD".encode()), lines
# A URL with CR LF (in a literal) is refused before anything is echoed; too many URLs are BAD.
send_raw(alice, b"x900 URLFETCH {7}\r\n")
assert alice.readline().startswith(b"+")
send_raw(alice, b"a\r\n* OK\r\n")
lines = read_until_tagged(alice, "x900")
assert lines[-1].startswith(b"x900 BAD"), lines
lines, tag = command(alice, "URLFETCH " + " ".join(["x"] * 101))
assert lines[-1].startswith(f"{tag} BAD".encode()), lines
# CATENATE takes an authorized URL of another user's message, not a forged one (RFC 4469 §5).
lines, tag = command(bob, f'APPEND INBOX CATENATE (URL "{authuser}")')
assert lines[-1].startswith(f"{tag} OK [APPENDUID ".encode()), lines
new_uid = re.search(rb"APPENDUID \d+ (\d+)", lines[-1]).group(1).decode()
ok(bob.select("INBOX"))
assert ok(bob.uid("FETCH", new_uid, "(BODY.PEEK[])"))[0][1] == body1
lines, tag = command(bob, f'APPEND INBOX CATENATE (URL "{flipped}")')
assert lines[-1].startswith(f"{tag} NO [BADURL ".encode()), lines
lines, tag = command(bob, f'APPEND INBOX CATENATE (URL "{only_alice}")')
assert lines[-1].startswith(f"{tag} NO [BADURL ".encode()), lines
# RESETKEY of INBOX voids its URLs only; RESETKEY without a mailbox voids all.
other = gen(alice, "imap://alice@example.test/Other/;uid=1;urlauth=authuser")
assert fetch(bob, other) == body1
lines, tag = command(alice, "RESETKEY INBOX")
assert lines[-1].startswith(f"{tag} OK".encode()), lines
for url in (authuser, only_bob, anonymous, part, future):
    assert fetch(bob, url) is None, url
assert fetch(bob, other) == body1
renewed = gen(alice, base + ";urlauth=authuser")
assert renewed != authuser
assert fetch(bob, renewed) == body1
lines, tag = command(bob, "RESETKEY Missing")
assert lines[-1].startswith(f"{tag} NO".encode()), lines
# Bob resetting his own keys changes nothing of Alice's.
lines, tag = command(bob, "RESETKEY")
assert fetch(bob, renewed) == body1
lines, tag = command(alice, "RESETKEY")
assert lines[-1].startswith(f"{tag} OK".encode()), lines
assert fetch(bob, other) is None
assert fetch(bob, renewed) is None
alice.logout()
bob.logout()
done()
