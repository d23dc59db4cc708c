"""Trains alice's junk filter the way a mail client does (driven by tests/junk.rs).

MODE=train: UID MOVE some spam into Junk, flag the rest $Junk; UID MOVE some ham into Archive,
flag the rest $NotJunk. MODE=move_back: UID MOVE the trained spam "offer 0" from Junk back to
INBOX.
"""
import os

from common import *

ALICE = "alice@example.test"
m = connect(ALICE)
mode = os.environ["MODE"]


def uids(*criteria):
    return ok(m.uid("SEARCH", *criteria))[0].split()


if mode == "train":
    ok(m.select("INBOX"))
    spam = uids("SUBJECT", "offer")
    ham = uids("SUBJECT", "meeting")
    assert len(spam) == 6 and len(ham) == 6, (spam, ham)
    ok(m.uid("MOVE", b",".join(spam[:4]).decode(), "Junk"))
    ok(m.uid("STORE", b",".join(spam[4:]).decode(), "+FLAGS", "($Junk)"))
    ok(m.uid("MOVE", b",".join(ham[:3]).decode(), "Archive"))
    ok(m.uid("STORE", b",".join(ham[3:]).decode(), "+FLAGS", "($NotJunk)"))
elif mode == "move_back":
    ok(m.select("Junk"))
    back = uids("SUBJECT", '"offer 0"')
    assert len(back) == 1, back
    ok(m.uid("MOVE", back[0].decode(), "INBOX"))
else:
    raise SystemExit(f"unknown MODE {mode}")
m.logout()
done()
