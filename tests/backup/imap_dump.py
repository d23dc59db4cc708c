"""Prints every mailbox of one user as JSON, read through IMAP with EXAMINE (read-only):
UIDVALIDITY, UIDNEXT and each message's UID, flags (without \\Recent), size and SHA-256 of its
exact bytes. Used by tests/backup.rs to compare a store with its restored copy."""
import hashlib
import imaplib
import json
import re
import ssl
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=60)
m.login(user, password)
typ, listing = m.list()
assert typ == "OK", listing
out = {}
for line in listing:
    name = re.match(rb'\(.*?\) (?:"."|NIL) (.*)$', line).group(1).decode()
    typ, data = m.select(name, readonly=True)
    assert typ == "OK", (name, data)
    exists = int(data[0])
    validity = m.untagged_responses.get("UIDVALIDITY", [b"0"])[-1].decode()
    uidnext = m.untagged_responses.get("UIDNEXT", [b"0"])[-1].decode()
    messages = []
    if exists:
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
        assert typ == "OK", data
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            uid = int(re.search(rb"UID (\d+)", head).group(1))
            flags = re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split()
            size = int(re.search(rb"RFC822.SIZE (\d+)", head).group(1))
            flags = sorted(f for f in flags if f != "\\Recent")
            messages.append([uid, flags, size, hashlib.sha256(body).hexdigest()])
    out[name] = {"uidvalidity": validity, "uidnext": uidnext, "messages": sorted(messages)}
m.logout()
print(json.dumps(out, sort_keys=True))
