"""Bounds on what one command may cost (issue 12): LIST wildcards, CREATE depth, SEARCH size and
message sequence numbers beyond EXISTS. Each section is independent."""
import imaplib

from common import *

ALICE = "alice@example.test"
m = connect(ALICE)
m.sock.settimeout(30)

# --- LIST: patterns with many wildcards answer (matching is O(pattern x name)) -----------------
long_name = "a" * 66
ok(m.create(long_name))
for stars in range(2, 13):
    pattern = "*a" * stars + "*b"
    assert ok(m.list('""', f'"{pattern}"')) == [None], (stars, pattern)
    pattern = "%a" * stars + "%b"
    assert ok(m.list('""', f'"{pattern}"')) == [None], (stars, pattern)
listed = ok(m.list('""', '"' + "*a" * 12 + '"'))
assert any(long_name.encode() in l for l in listed if l), listed
listed = ok(m.list('""', '"' + "%a" * 12 + '%"'))
assert any(long_name.encode() in l for l in listed if l), listed
assert "LIMIT" in fails(m.list, '""', '"' + "*" * 1100 + '"')
ok(m.delete(long_name))

# --- CREATE: too deep or too long creates nothing (atomic, bounded) ------------------------------
listed_before = sorted(ok(m.list('""', "*")))
subscribed_before = sorted(ok(m.lsub('""', "*")))
for name in ["/".join(["deep"] * 600), "/".join(["d"] * 33), "x" * 1001]:
    assert "LIMIT" in fails(m.create, name), name
    assert sorted(ok(m.list('""', "*"))) == listed_before
    assert sorted(ok(m.lsub('""', "*"))) == subscribed_before
ok(m.create("/".join(["d"] * 32)))
assert len(ok(m.list('""', "d/*"))) == 31
fails(m.create, "/".join(["d"] * 32))

# --- SEARCH: bounded by size (1000 keys), not by nesting -----------------------------------------
ok(m.append("INBOX", None, None, b"Subject: one\r\n\r\nbody\r\n"))
ok(m.select("INBOX"))


def nested_or(depth):
    return "OR " * depth + "SEEN" + " UNSEEN" * depth


# imap-codec 2.0.0-alpha.10 decodes at most 8 nested levels (a hard-coded recursion budget).
assert ok(m.search(None, nested_or(8))) == [b"1"]
assert ok(m.search(None, "(" + " ".join(["ALL"] * 999) + ")")) == [b"1"]
assert ok(m.search(None, " ".join(["ALL"] * 1000))) == [b"1"]
assert "LIMIT" in fails(m.search, None, " ".join(["ALL"] * 1001))
assert "LIMIT" in fails(m.search, None, " ".join(["OR SEEN UNSEEN"] * 334))

m.logout()
done()
