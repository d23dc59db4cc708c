"""One user can never see, select, copy into or learn of another user's mailboxes."""
from common import *

alice = connect("alice@example.test")
ok(alice.create("Secret"))
ok(alice.append("Secret", None, None, b"Subject: private\r\n\r\nx\r\n"))

bob = connect("bob@example.test")
names = b"\n".join(ok(bob.list("\"\"", "*")))
assert b"Secret" not in names, names
assert "NONEXISTENT" in fails(bob.select, "Secret")
fails(bob.status, "Secret", "(MESSAGES)")
ok(bob.create("Mine"))
ok(bob.append("INBOX", None, None, b"Subject: bob\r\n\r\ny\r\n"))
ok(bob.select("INBOX"))
assert "TRYCREATE" in fails(bob.copy, "1", "Secret")
fails(bob.rename, "Secret", "Stolen")
fails(bob.delete, "Secret")
fails(bob.subscribe, "Secret")
fails(bob.append, "Secret", None, None, b"Subject: x\r\n\r\n")
# Same name, different mailbox: bob's "Secret" is his own and empty of alice's mail.
ok(bob.create("Secret"))
ok(bob.select("Secret"))
assert ok(bob.search(None, "ALL")) == [b""]
assert b"MESSAGES 1" in ok(alice.status("Secret", "(MESSAGES)"))[0]
done()
