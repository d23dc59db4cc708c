"""NOTIFY (RFC 5465, issue 12): STATUS of other mailboxes and the selected mailbox's updates arrive
between commands, MailboxName and SubscriptionChange as LIST, new messages of the selected
mailbox FETCHed with MessageNew's fetch attributes (§5.2, a flood of them too), unsupported
events are NO [BADEVENT], invalid fetch attributes BAD, and what a session may register is
bounded."""
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

# --- MessageNew's fetch attributes (RFC 5465 §5.2): each new message FETCHed after EXISTS -------
def pushed_fetches(count):
    """Reads what is pushed until `count` FETCH responses came: (seq, the line up to its
    literal, the literal) each; other lines are skipped."""
    out = []
    while len(out) < count:
        line = m.readline()
        assert line, "connection closed"
        head = re.match(rb"^\* (\d+) FETCH (.*)\{(\d+)\}\r\n$", line)
        if not head:
            assert b"FETCH" not in line, line
            continue
        literal = m.read(int(head.group(3)))
        assert m.readline() == b")\r\n"
        out.append((int(head.group(1)), head.group(2), literal))
    return out


lines, tag = command("NOTIFY SET (selected (MessageNew (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)]) "
                     "MessageExpunge))")
assert lines == [f"{tag} OK NOTIFY completed\r\n".encode()], lines
ok(other.append("INBOX", None, None, b"From: b@example.test\r\nSubject: fetched\r\n\r\nbody\r\n"))
exists = int(re.match(rb"^\* (\d+) EXISTS", pushed(rb"^\* \d+ EXISTS")).group(1))
[(seq, items, literal)] = pushed_fetches(1)
assert seq == exists, (seq, exists)
# \Recent belongs to whichever session saw the message first (`other` has INBOX selected too).
assert re.match(rb"^\(UID \d+ FLAGS \((\\Recent)?\) BODY\[HEADER\.FIELDS \(Subject\)\] $", items), items
assert literal == b"Subject: fetched\r\n\r\n", literal
# PEEK: the message is still unseen.
lines, tag = command(f"FETCH {seq} (FLAGS)")
assert re.match(rb"^\* %d FETCH \(FLAGS \((\\Recent)?\)\)\r\n$" % seq, lines[0]), lines
# Invalid fetch attributes, and fetch attributes for other mailboxes, are BAD; the registration
# stays as it was.
for bad in ["(selected (MessageNew (UID BOGUS) MessageExpunge))",
            "(selected (MessageNew (ALL) MessageExpunge))",
            "(selected (MessageNew () MessageExpunge))",
            "(selected (MessageNew (BODY[HEADER.FIELDS ()]) MessageExpunge))",
            "(selected (MessageNew (UID) (FLAGS) MessageExpunge))",
            "(personal (MessageNew (UID) MessageExpunge))"]:
    lines, tag = command(f"NOTIFY SET {bad}")
    assert lines[-1].startswith(f"{tag} BAD".encode()), (bad, lines)
# A flood: many new messages at once (one COPY) are all FETCHed, in bounded batches, in order.
bodies = [f"Subject: bulk {i}\r\n\r\nbody {i}\r\n" for i in range(300)]
bulk = "".join(f"b{i} APPEND Quiet {{{len(b)}+}}\r\n{b}\r\n" for i, b in enumerate(bodies))
send_raw(other, bulk)
lines = read_until_tagged(other, "b299")
assert sum(1 for l in lines if re.match(rb"b\d+ OK", l)) == 300, lines[-3:]
lines, tag = command("NOTIFY SET (selected (MessageNew (UID RFC822.SIZE BODY.PEEK[TEXT]) MessageExpunge))")
assert lines[-1].startswith(f"{tag} OK".encode()), lines
ok(other.select("Quiet"))
ok(other.copy("1:*", "INBOX"))
fetches = pushed_fetches(301)
assert [f[0] for f in fetches] == list(range(exists + 1, exists + 302)), [f[0] for f in fetches][:5]
assert fetches[0][2] == b"x\r\n", fetches[0]
for i, (_, items, literal) in enumerate(fetches[1:]):
    assert literal == f"body {i}\r\n".encode(), (i, literal)
    assert re.match(rb"^\(UID \d+ RFC822\.SIZE \d+ BODY\[TEXT\] $", items), items
uids = [int(re.match(rb"^\(UID (\d+)", f[1]).group(1)) for f in fetches]
assert uids == sorted(set(uids)), uids[:5]
# The connection is in step: a command is answered as usual.
lines, tag = command("NOOP")
assert lines[-1].startswith(f"{tag} OK".encode()), lines

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
