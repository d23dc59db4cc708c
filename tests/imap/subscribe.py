"""Subscriptions are a list of names (RFC 3501 §6.3.6-9, RFC 5258 §3.1): CREATE does not
subscribe, DELETE does not unsubscribe, LSUB's `%` rule, deleted-but-subscribed is \\NonExistent."""
import re

from common import *

ALICE = "alice@example.test"
m = connect(ALICE)


def lsub(pattern="*"):
    """{name: attributes} of an LSUB."""
    out = {}
    for line in ok(m.lsub('""', pattern)):
        if line:
            attrs, name = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?$', line).groups()
            out[name.decode()] = attrs.decode()
    return out


def list_subscribed():
    typ, _ = m._simple_command("LIST", '(SUBSCRIBED) "" "*"')
    assert typ == "OK", typ
    out = {}
    for line in untagged(m, "LIST"):
        attrs, name = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?$', line).groups()
        out[name.decode()] = attrs.decode()
    return out


def listed(pattern="*"):
    return b"\n".join(l for l in ok(m.list('""', pattern)) if l).decode()


# A new user's INBOX and special-use folders start subscribed (clients show only those).
subs = lsub()
assert set(subs) == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}, subs
assert all("Noselect" not in a for a in subs.values()), subs
sub_list = list_subscribed()
assert "\\Sent" in sub_list["Sent"] and "\\Subscribed" in sub_list["Sent"], sub_list

# CREATE does not subscribe, not even the parents it creates.
ok(m.create("Proj/Sub"))
assert "Proj" not in lsub() and "Proj/Sub" not in lsub()
assert "Proj" not in list_subscribed()
ok(m.subscribe("Proj"))
ok(m.subscribe("Proj/Sub"))
assert lsub("Proj*") == {"Proj": "", "Proj/Sub": ""}, lsub("Proj*")

# LSUB `%` rule: a parent of subscribed names that is not subscribed itself comes back \Noselect.
ok(m.unsubscribe("Proj"))
assert lsub("Proj*") == {"Proj/Sub": ""}, lsub("Proj*")
top = lsub("%")
assert top.get("Proj") == "\\Noselect", top
assert "Proj/Sub" not in top, top
assert "Proj" not in list_subscribed()

# DELETE keeps the subscription: LSUB says \Noselect, LIST (SUBSCRIBED) \NonExistent \Subscribed,
# plain LIST does not show it.
ok(m.delete("Proj/Sub"))
assert lsub("Proj/*") == {"Proj/Sub": "\\Noselect"}, lsub("Proj/*")
gone = list_subscribed()["Proj/Sub"]
assert "\\NonExistent" in gone and "\\Subscribed" in gone, gone
assert "Proj/Sub" not in listed(), listed()
# Re-created, it is subscribed again; deleted again, the name can still be unsubscribed.
ok(m.create("Proj/Sub"))
assert lsub("Proj/*") == {"Proj/Sub": ""}, lsub("Proj/*")
ok(m.delete("Proj/Sub"))
ok(m.unsubscribe("Proj/Sub"))
assert "Proj/Sub" not in lsub()
assert "NONEXISTENT" in fails(m.unsubscribe, "Proj/Sub")
# Unsubscribing an existing but unsubscribed mailbox is harmless.
ok(m.unsubscribe("Proj"))
fails(m.subscribe, "Nope")

# Deleting a subscribed special-use folder keeps its name subscribed too.
ok(m.delete("Archive"))
assert lsub("Archive") == {"Archive": "\\Noselect"}, lsub("Archive")
ok(m.create("Archive"))
assert lsub("Archive") == {"Archive": ""}, lsub("Archive")

m.logout()
done()
