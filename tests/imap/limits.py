"""Bounds on what one command may cost (issue 12): LIST wildcards, CREATE depth, SEARCH size and depth,
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


def nested_and(depth, key):
    return "(" * depth + key + ")" * depth


# Deep nesting is fine (Dovecot accepts it too); results stay right at every depth.
for depth in [8, 9, 20, 100]:
    assert ok(m.search(None, nested_or(depth))) == [b"1"], depth
    assert ok(m.search(None, "NOT " + nested_or(depth))) == [b""], depth
    assert ok(m.search(None, nested_and(depth, "SUBJECT one"))) == [b"1"], depth
    assert ok(m.search(None, nested_and(depth, "SUBJECT two"))) == [b""], depth
# 9 and 20 ORs whose only matching key is the innermost or the last one.
for depth in [9, 20]:
    assert ok(m.search(None, "OR " * depth + "SUBJECT one" + " DRAFT" * depth)) == [b"1"]
    assert ok(m.search(None, "OR " * depth + "DRAFT" + " DELETED" * (depth - 1) + " UID 1")) == [b"1"]
    assert ok(m.search(None, "OR " * depth + "DRAFT" + " DELETED" * depth)) == [b""]
# Hostile nesting (10,000 levels) is a clear BAD, and the connection lives on.
for hostile in [nested_or(10_000), nested_and(10_000, "ALL"), "NOT " * 10_000 + "ALL"]:
    assert "nest at most" in fails(m.search, None, hostile), hostile[:20]
    assert ok(m.search(None, "ALL")) == [b"1"]
for broken in ["(ALL", "ALL)", "()", "OR ALL", 'FROM "x']:
    fails(m.search, None, broken)
    assert ok(m.search(None, "ALL")) == [b"1"]
assert ok(m.search(None, "(" + " ".join(["ALL"] * 999) + ")")) == [b"1"]
assert ok(m.search(None, " ".join(["ALL"] * 1000))) == [b"1"]
assert "LIMIT" in fails(m.search, None, " ".join(["ALL"] * 1001))
assert "LIMIT" in fails(m.search, None, " ".join(["OR SEEN UNSEEN"] * 334))

# --- Sequence numbers beyond EXISTS are BAD (RFC 3501 §9); UIDs stay lenient --------------------
ok(m.append("INBOX", None, None, b"Subject: two\r\n\r\nbody\r\n"))
ok(m.select("INBOX"))  # EXISTS 2
assert len(ok(m.fetch("1:*", "(FLAGS)"))) == 2
assert len(ok(m.fetch("2", "(FLAGS)"))) == 1
for call in [
    lambda: m.fetch("7", "(FLAGS)"),
    lambda: m.fetch("1:7", "(FLAGS)"),
    lambda: m.fetch("3:*", "(FLAGS)"),
    lambda: m.store("3", "+FLAGS", "(\\Flagged)"),
    lambda: m.copy("1,3", "Trash"),
    lambda: m._simple_command("MOVE", "3", "Trash"),
    lambda: m.search(None, "3"),
    lambda: m.search(None, "OR 1 NOT 5:6"),
]:
    assert "Invalid messageset" in fails(call)
assert ok(m.uid("FETCH", "1:999", "(FLAGS)"))
assert ok(m.uid("STORE", "999", "+FLAGS", "(\\Flagged)"))
assert ok(m.uid("SEARCH", "UID", "999")) == [b""]
ok(m.create("Empty"))
ok(m.select("Empty"))
assert "Invalid messageset" in fails(lambda: m.fetch("1:*", "(FLAGS)"))
assert "Invalid messageset" in fails(lambda: m.fetch("*", "(FLAGS)"))
assert "Invalid messageset" in fails(lambda: m.store("1", "+FLAGS", "(\\Seen)"))
assert ok(m.uid("FETCH", "1:*", "(FLAGS)")) == [None]
assert ok(m.search(None, "ALL")) == [b""]

m.logout()
done()
