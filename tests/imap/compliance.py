"""Smaller RFC 3501 points from imaptest (issue 12): names that are not modified UTF-7 get NO,
EXAMINE reports the RECENT count STATUS does, a new keyword brings FLAGS; LIST-STATUS and several
LIST patterns; APPEND UTF8 (~{n}...) after ENABLE UTF8=ACCEPT (RFC 6855 §4)."""
import re

from common import *

ALICE = "alice@example.test"
m = connect(ALICE)

# A name that is not valid modified UTF-7 is a well-formed argument naming no mailbox: NO.
for name in ["&Jjo", "a&b", "&Jjo-x&"]:
    for call in [m.select, lambda n: m.select(n, readonly=True), m.create]:
        typ, data = call(name)
        assert typ == "NO" and b"CANNOT" in data[0], (name, typ, data)
typ, data = m.status("&Jjo", "(MESSAGES)")
assert typ == "NO", (typ, data)

# EXAMINE sees the same RECENT as STATUS and claims nothing; SELECT then claims them.
ok(m.create("Recent"))
for i in range(2):
    ok(m.append("Recent", None, None, f"Subject: r{i}\r\n\r\nbody\r\n".encode()))


def status_recent():
    line = ok(m.status("Recent", "(RECENT)"))[0]
    return int(re.search(rb"RECENT (\d+)", line).group(1))


assert status_recent() == 2
ok(m.select("Recent", readonly=True))
assert untagged(m, "RECENT") == [b"2"]
flags = b"".join(ok(m.fetch("1:*", "(FLAGS)")))
assert flags.count(b"\\Recent") == 2, flags
assert status_recent() == 2
ok(m.select("Recent"))
assert untagged(m, "RECENT") == [b"2"]
assert status_recent() == 0
ok(m.select("Recent", readonly=True))
assert untagged(m, "RECENT") == [b"0"]

# A keyword's first appearance brings an untagged FLAGS (RFC 3501 §7.2.6), in this session's STORE
# and, through NOOP, in another session that has the mailbox selected.
ok(m.select("Recent"))
untagged(m, "FLAGS")
other = connect(ALICE)
ok(other.select("Recent"))
ok(m.store("1", "+FLAGS", "($Fresh)"))
flags = untagged(m, "FLAGS")
assert flags and b"$Fresh" in flags[-1], flags
ok(m.store("2", "+FLAGS", "($Fresh)"))
assert untagged(m, "FLAGS") == [], "FLAGS only when a keyword is new"
untagged(other, "FLAGS")
flags = []
for _ in range(200):  # the change reaches the other session through the change bus: poll
    ok(other.noop())
    flags = untagged(other, "FLAGS")
    if flags:
        break
assert flags and b"$Fresh" in flags[-1], flags
ok(other.noop())
assert untagged(other, "FLAGS") == []
other.logout()

# LIST with several patterns and RETURN (STATUS ...) (RFC 5258 §3, RFC 5819): each listed
# mailbox followed by its STATUS; unknown options are BAD.
ok(m.create("Other"))
send_raw(m, b'L1 LIST "" (Recent Other Nothing*) RETURN (STATUS (MESSAGES UIDNEXT))\r\n')
lines = read_until_tagged(m, "L1")
assert b"L1 OK" in lines[-1], lines
text = b"".join(lines)
assert text.count(b"* LIST ") == 2 and text.count(b"* STATUS ") == 2, lines
assert b'* STATUS Recent (MESSAGES 2 UIDNEXT 3)' in text, lines
send_raw(m, b'L2 LIST (BOGUS) "" *\r\n')
assert b"L2 BAD" in read_until_tagged(m, "L2")[-1]

# A draft with UTF-8 headers, saved the RFC 6855 way.
ok(m.unselect())
ok(m._simple_command("ENABLE", "UTF8=ACCEPT"))
draft = "Subject: Grüße\r\nFrom: jörg@example.test\r\n\r\nbody\r\n".encode()
send_raw(m, b"U1 APPEND Other UTF8 (~{%d+}\r\n" % len(draft) + draft + b")\r\n")
lines = read_until_tagged(m, "U1")
assert b"U1 OK" in lines[-1], lines
ok(m.select("Other"))
assert ok(m.fetch("1", "(BODY.PEEK[])"))[0][1] == draft

m.logout()
done()
