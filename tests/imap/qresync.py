"""QRESYNC (RFC 7162 §3.2, issue 12): ENABLE, SELECT with QRESYNC reporting what vanished and what
changed since a MODSEQ, VANISHED instead of EXPUNGE, UID FETCH (CHANGEDSINCE VANISHED)."""
import re

from common import *

ALICE = "alice@example.test"
m = connect(ALICE)
other = connect(ALICE)
m.sock.settimeout(30)
assert "QRESYNC" in ok(m.capability())[0].decode().upper().split()
for n in range(1, 6):
    ok(other.append("INBOX", None, None, f"Subject: q{n}\r\n\r\nx\r\n".encode()))
ok(other.select("INBOX"))
command = tagged


status = ok(m.status("INBOX", "(UIDVALIDITY HIGHESTMODSEQ)"))[0]
uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", status).group(1))
modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", status).group(1))

# Without ENABLE QRESYNC the parameter is BAD; VANISHED needs it too.
lines, tag = command(m, f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))")
assert lines[-1].startswith(f"{tag} BAD".encode()), lines
lines, tag = command(m, "ENABLE QRESYNC")
assert b"* ENABLED QRESYNC\r\n" in lines, lines

# Meanwhile: uid 2 and 4 expunged, uid 3 flagged.
ok(other.store("2,4", "+FLAGS", "\\Deleted"))
ok(other.expunge())
ok(other.store("2", "+FLAGS", "\\Flagged"))
lines, tag = command(m, f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:5))")
assert lines[-1].startswith(f"{tag} OK".encode()), lines
assert b"* VANISHED (EARLIER) 2,4\r\n" in lines, lines
fetches = [l for l in lines if b" FETCH " in l]
assert len(fetches) == 1 and b"UID 3 " in fetches[0] and b"\\Flagged" in fetches[0], fetches
# Another UIDVALIDITY: no resynchronization data.
lines, tag = command(m, f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {modseq}))")
assert b"[CLOSED]" in lines[0], lines
assert not any(b"VANISHED" in l or b" FETCH " in l for l in lines), lines

# Expunges are now VANISHED, with the UID.
ok(other.store("1", "+FLAGS", "\\Deleted"))
ok(other.expunge())
lines, tag = command(m, "NOOP")
assert b"* VANISHED 1\r\n" in lines and not any(b"EXPUNGE" in l for l in lines), lines
# UID FETCH (CHANGEDSINCE VANISHED): the UIDs of the set that are gone.
lines, tag = command(m, f"UID FETCH 1:10 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
assert b"* VANISHED (EARLIER) 1:2,4\r\n" in lines, lines
for bad in [f"FETCH 1:2 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)", "UID FETCH 1:2 (FLAGS) (VANISHED)"]:
    lines, tag = command(m, bad)
    assert lines[-1].startswith(f"{tag} BAD".encode()), (bad, lines)
# A huge known-UIDs range costs nothing more than the mailbox's size.
lines, tag = command(m, f"SELECT INBOX (QRESYNC ({uidvalidity} 1 1:4294967295))")
assert b"* VANISHED (EARLIER) 1:2,4\r\n" in lines, lines
m.logout()
other.logout()
done()
