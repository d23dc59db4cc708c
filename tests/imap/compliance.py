"""Smaller RFC 3501 points from imaptest (issue 12): names that are not modified UTF-7 get NO,
EXAMINE reports the RECENT count STATUS does."""
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

m.logout()
done()
