"""Two sessions on one mailbox: the idling one sees the other's APPEND, flag change and EXPUNGE
as they happen; then pipelined commands right after DONE (iOS) and IDLE before SELECT (Outlook)."""
from common import *

USER = "alice@example.test"
msg = b"From: x@example.test\r\nSubject: idle test\r\n\r\nbody\r\n"

a = connect(USER)
b = connect(USER)
ok(a.select("INBOX"))
ok(b.select("INBOX"))

idle_start(a)
ok(b.append("INBOX", None, None, msg))
idle_wait_for(a, rb"^\* 1 EXISTS")
ok(b.store("1", "+FLAGS", r"(\Flagged)"))
line = idle_wait_for(a, rb"^\* 1 FETCH")
assert rb"\Flagged" in line, line
ok(b.store("1", "+FLAGS.SILENT", r"(\Deleted)"))
idle_wait_for(a, rb"^\* 1 FETCH")
ok(b.expunge())
idle_wait_for(a, rb"^\* 1 EXPUNGE")
# iOS: DONE and the next commands in one packet.
send_raw(a, b"DONE\r\nP1 NOOP\r\nP2 UID SEARCH ALL\r\n")
lines = read_until_tagged(a, "P2")
assert any(l.startswith(b"I1 OK") for l in lines), lines
assert any(l.startswith(b"P1 OK") for l in lines), lines
assert any(l.startswith(b"* SEARCH") for l in lines), lines

# A change while not idling is reported on the next NOOP.
ok(b.append("INBOX", None, None, msg))
typ, data = a.noop()
assert a.untagged_responses.get("EXISTS")[-1] == b"1", a.untagged_responses

# Outlook: IDLE before any SELECT is accepted and ends cleanly.
c = connect(USER)
idle_start(c, b"O1")
idle_done(c, b"O1")
c.logout()
done()
