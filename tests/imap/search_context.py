"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267, issue 12): live searches follow new mail, flag
changes and expunges made by other sessions; PARTIAL ranges; CANCELUPDATE; and a client that asks
thousands of searches to be kept current gets NO [NOUPDATE] past the cap, while the ones kept
still work and nothing else grows."""
import re

from common import *

ALICE = "alice@example.test"
m = connect(ALICE)
other = connect(ALICE)
m.sock.settimeout(60)
caps = ok(m.capability())[0].decode().upper().split()
for cap in ["CONTEXT=SEARCH", "CONTEXT=SORT", "ESEARCH", "ESORT"]:
    assert cap in caps, caps

for n in range(1, 6):
    ok(m.append("INBOX", None, None, f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode()))
ok(m.select("INBOX"))
ok(other.select("INBOX"))


def command(text, tag):
    send_raw(m, f"{tag} {text}\r\n")
    lines = read_until_tagged(m, tag)
    return lines


def esearch(lines, tag):
    return [l for l in lines if l.upper().startswith(f'* ESEARCH (TAG "{tag}")'.upper().encode())]


# --- PARTIAL: positions in the result, bad ranges are BAD --------------------------------------
lines = command("SEARCH RETURN (PARTIAL 2:3) ALL", "p1")
assert esearch(lines, "p1") == [b'* ESEARCH (TAG "p1") PARTIAL (2:3 2:3)\r\n'], lines
lines = command("UID SORT RETURN (PARTIAL 1:2) (REVERSE ARRIVAL) UTF-8 ALL", "p2")
assert re.match(rb'\* ESEARCH \(TAG "p2"\) UID PARTIAL \(1:2 [0-9:,]+\)', esearch(lines, "p2")[0]), lines
for bad in ["0:1", "1", "1:*", "*:2", "-1:2", "a:b", "4294967296:1"]:
    lines = command(f"SEARCH RETURN (PARTIAL {bad}) ALL", "pb")
    assert lines[-1].startswith(b"pb BAD"), (bad, lines)

# --- UPDATE: another session's flag change, new mail and expunge reach the live search ----------
lines = command("SEARCH RETURN (UPDATE) SEEN", "u1")
assert lines[-1].startswith(b"u1 OK"), lines
ok(other.store("2,4", "+FLAGS", "\\Seen"))
lines = command("NOOP", "n1")
assert esearch(lines, "u1") == [b'* ESEARCH (TAG "u1") ADDTO (0 2,4)\r\n'], lines
ok(other.append("INBOX", "(\\Seen)", None, b"Subject: m6\r\n\r\nnew\r\n"))
lines = command("NOOP", "n2")
assert b"* 6 EXISTS\r\n" in lines, lines
assert esearch(lines, "u1") == [b'* ESEARCH (TAG "u1") ADDTO (0 6)\r\n'], lines
# An expunged match is removed right before its own EXPUNGE, with the number it carries.
ok(other.store("1,4", "+FLAGS", "\\Deleted"))
ok(other.expunge())
lines = command("NOOP", "n3")
expunge_at = lines.index(b"* 3 EXPUNGE\r\n")
assert lines[expunge_at - 1] == b'* ESEARCH (TAG "u1") REMOVEFROM (0 3)\r\n', lines
assert lines.count(b"* 1 EXPUNGE\r\n") == 1, lines
# Unseen again: REMOVEFROM; a change that keeps the match: nothing.
ok(other.store("1", "-FLAGS", "\\Seen"))
ok(other.store("2", "+FLAGS", "\\Flagged"))
lines = command("NOOP", "n4")
assert esearch(lines, "u1") == [b'* ESEARCH (TAG "u1") REMOVEFROM (0 1)\r\n'], lines
# During IDLE too.
idle_start(m)
ok(other.store("3", "+FLAGS", "\\Seen"))
idle_wait_for(m, rb'^\* ESEARCH \(TAG "u1"\) ADDTO \(0 3\)')
idle_done(m)
# CANCELUPDATE ends it; an unknown tag is not an error.
lines = command('CANCELUPDATE "u1" "never-used"', "c1")
assert lines[-1].startswith(b"c1 OK"), lines
ok(other.store("1:*", "+FLAGS", "\\Seen"))
lines = command("NOOP", "n5")
assert esearch(lines, "u1") == [], lines
lines = command("CANCELUPDATE u1", "c2")
assert lines[-1].startswith(b"c2 BAD"), lines

# --- UID SEARCH UPDATE reports UIDs; sorted results decline updates ----------------------------
lines = command("UID SEARCH RETURN (UPDATE COUNT) UNFLAGGED", "u2")
ok(other.store("1", "+FLAGS", "\\Flagged"))
uid1 = int(re.search(rb"UID (\d+)", ok(other.fetch("1", "(UID)"))[0]).group(1))
lines = command("NOOP", "n6")
assert esearch(lines, "u2") == [f'* ESEARCH (TAG "u2") UID REMOVEFROM (0 {uid1})\r\n'.encode()], lines
lines = command("SORT RETURN (UPDATE) (ARRIVAL) UTF-8 ALL", "s1")
assert any(l.startswith(b'* NO [NOUPDATE "s1"]') for l in lines), lines
assert lines[-1].startswith(b"s1 OK"), lines

# --- Thousands of live searches: the cap answers NOUPDATE, pipelined --------------------------
lines = []
for start in range(0, 3000, 500):
    send_raw(m, b"".join(b"h%d SEARCH RETURN (UPDATE) FLAGGED\r\n" % i for i in range(start, start + 500)))
    lines += read_until_tagged(m, f"h{start + 499}")
refused = [l for l in lines if l.startswith(b"* NO [NOUPDATE ")]
completed = [l for l in lines if re.match(rb"h\d+ OK", l)]
assert len(completed) == 3000, len(completed)
# u2 is still live: 31 more are kept, the other 2969 refused.
assert len(refused) == 3000 - 31, len(refused)
ok(other.store("3", "+FLAGS", "\\Flagged"))
lines = command("NOOP", "n7")
updates = [l for l in lines if l.startswith(b"* ESEARCH")]
assert len(updates) == 32, updates
# Reusing a live tag replaces that search; CANCELUPDATE frees a place.
lines = command('CANCELUPDATE "h0"', "c3")
lines = command("SEARCH RETURN (UPDATE) ALL", "h1")
assert not any(b"NOUPDATE" in l for l in lines), lines
lines = command("SEARCH RETURN (UPDATE) ALL", "fresh")
assert not any(b"NOUPDATE" in l for l in lines), lines
lines = command("SEARCH RETURN (UPDATE) ALL", "over")
assert any(l.startswith(b'* NO [NOUPDATE "over"]') for l in lines), lines
# Closing the mailbox ends every live search.
ok(m.unselect())
ok(m.select("INBOX"))
ok(other.store("1:*", "-FLAGS", "\\Flagged"))
lines = command("NOOP", "n8")
assert not any(l.startswith(b"* ESEARCH") for l in lines), lines
lines = command("SEARCH RETURN (UPDATE) ALL", "after")
assert not any(b"NOUPDATE" in l for l in lines), lines
m.logout()
other.logout()
done()
