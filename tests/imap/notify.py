"""NOTIFY (RFC 5465, issue 12): STATUS of other mailboxes and the selected mailbox's updates arrive
between commands, MailboxName and SubscriptionChange as LIST, unsupported events are NO
[BADEVENT], and what a session may register is bounded."""
import re
import select

from common import *

ALICE = "alice@example.test"
m = connect(ALICE)
other = connect(ALICE)
m.sock.settimeout(30)
assert "NOTIFY" in ok(m.capability())[0].decode().upper().split()
for name in ("Other", "Quiet", "Tree", "Tree/Leaf"):
    ok(m.create(name))
ok(m.append("Other", None, None, b"Subject: o\r\n\r\nx\r\n"))
ok(m.select("INBOX"))
def command(text):
    return tagged(m, text)


def pushed(pattern):
    """Reads lines the server sends without a command until one matches `pattern`."""
    seen = []
    for _ in range(20):
        line = m.readline()
        assert line, "connection closed"
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"never saw {pattern!r}: {seen}")


# --- Registration: STATUS now for the covered mailboxes, not for the selected one ---------------
lines, tag = command('NOTIFY SET STATUS (selected (MessageNew MessageExpunge FlagChange)) '
                     '(mailboxes ("Other" "Tree") (MessageNew MessageExpunge)) '
                     '(personal (MailboxName SubscriptionChange))')
assert lines[-1].startswith(f"{tag} OK".encode()), lines
statuses = [l for l in lines if l.startswith(b"* STATUS")]
assert statuses == [b'* STATUS Other (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ' + re.search(rb"UIDVALIDITY (\d+)", statuses[0]).group(1) + b")\r\n",
                    statuses[1]], statuses
assert statuses[1].startswith(b"* STATUS Tree (MESSAGES 0 "), statuses
assert not any(b"INBOX" in l or b"Quiet" in l for l in statuses), statuses

# --- Pushed between commands: another mailbox's new mail, the selected mailbox's ---------------
ok(other.append("Other", None, None, b"Subject: o2\r\n\r\nx\r\n"))
assert pushed(rb"^\* STATUS Other \(MESSAGES 2 UIDNEXT 3 ")
ok(other.append("INBOX", None, None, b"Subject: i\r\n\r\nx\r\n"))
assert pushed(rb"^\* 1 EXISTS")
ok(other.select("INBOX"))
ok(other.store("1", "+FLAGS", "\\Flagged"))
assert pushed(rb"^\* 1 FETCH \(FLAGS \(\\Flagged")
ok(other.store("1", "+FLAGS", "\\Deleted"))
assert pushed(rb"^\* 1 FETCH")
ok(other.expunge())
assert pushed(rb"^\* 1 EXPUNGE")
# A mailbox no group names stays quiet; a NOOP shows nothing of it.
ok(other.append("Quiet", None, None, b"Subject: q\r\n\r\nx\r\n"))
lines, tag = command("NOOP")
assert not any(b"Quiet" in l for l in lines), lines
# --- MailboxName and SubscriptionChange as LIST ---------------------------------------------
ok(other.create("Fresh"))
assert pushed(rb'^\* LIST \(\) "/" Fresh')
ok(other.rename("Fresh", "Renamed"))
assert pushed(rb'^\* LIST \(\) "/" Renamed \("OLDNAME" \("Fresh"\)\)\r\n')
ok(other.subscribe("Renamed"))
assert pushed(rb'^\* LIST \(\\Subscribed\) "/" Renamed')
ok(other.unsubscribe("Renamed"))
assert pushed(rb'^\* LIST \(\) "/" Renamed')
ok(other.delete("Renamed"))
assert pushed(rb'^\* LIST \(\\NonExistent\) "/" Renamed')

# --- Refused: unsupported events, too much to register, malformed --------------------------
for bad_event in ["AnnotationChange", "MailboxMetadataChange", "Bogus"]:
    lines, tag = command(f"NOTIFY SET (personal ({bad_event}))")
    assert lines[-1].startswith(f"{tag} NO [BADEVENT (".encode()), lines
names = " ".join(f'"box{i}"' for i in range(101))
lines, tag = command(f"NOTIFY SET (mailboxes ({names}) (MessageNew MessageExpunge))")
assert lines[-1].startswith(f"{tag} NO [LIMIT]".encode()), lines
groups = " ".join("(personal (MessageNew MessageExpunge))" for _ in range(21))
lines, tag = command(f"NOTIFY SET {groups}")
assert lines[-1].startswith(f"{tag} NO [LIMIT]".encode()), lines
names = " ".join(f"b{i}" for i in range(3000))
lines, tag = command(f"NOTIFY SET (mailboxes ({names}) (MessageNew MessageExpunge))")
assert lines[-1].startswith(f"{tag} BAD".encode()), lines
for malformed in ["NOTIFY", "NOTIFY SET", "NOTIFY SET personal", "NOTIFY SET (nowhere (MessageNew))",
                  "NOTIFY SET (selected (MessageNew)) (selected (FlagChange))"]:
    lines, tag = command(malformed)
    assert lines[-1].startswith(f"{tag} BAD".encode()), (malformed, lines)
# The refused commands left the registration as it was.
ok(other.append("Other", None, None, b"Subject: o3\r\n\r\nx\r\n"))
assert pushed(rb"^\* STATUS Other \(MESSAGES 3 ")
# Re-registering thousands of times holds nothing more than one registration.
batch = "".join(f"r{i} NOTIFY SET (mailboxes Other (MessageNew MessageExpunge))\r\n" for i in range(2000))
send_raw(m, batch)
lines = read_until_tagged(m, "r1999")
assert sum(1 for l in lines if re.match(rb"r\d+ OK", l)) == 2000, lines[-3:]
ok(other.append("Other", None, None, b"Subject: o4\r\n\r\nx\r\n"))
assert pushed(rb"^\* STATUS Other \(MESSAGES 4 ")

# --- NOTIFY NONE: nothing more is pushed or reported -------------------------------------------
lines, tag = command("NOTIFY NONE")
assert lines[-1].startswith(f"{tag} OK".encode()), lines
ok(other.append("Other", None, None, b"Subject: o5\r\n\r\nx\r\n"))
lines, tag = command("NOOP")
assert not any(l.startswith(b"* STATUS") for l in lines), lines
readable, _, _ = select.select([m.sock], [], [], 0)
assert not readable, m.readline()
m.logout()
other.logout()
done()
