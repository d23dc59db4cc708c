"""Every IMAP command the server offers, through Python's imaplib, over TLS and STARTTLS."""
import imaplib
import re
import time

from common import *

ALICE = "alice@example.test"

# --- port 143: STARTTLS, LOGINDISABLED until TLS ---------------------------------------------
m = imaplib.IMAP4(HOST, PLAIN)
caps = m.capabilities
assert "STARTTLS" in caps and "LOGINDISABLED" in caps, caps
assert "AUTH=PLAIN" not in caps, caps
fails(m.login, ALICE, PASSWORD)
ok(m.starttls(ssl_context=tls_context()))
caps = ok(m.capability())[0].decode()
assert "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps and "STARTTLS" not in caps, caps
ok(m.login(ALICE, PASSWORD))
m.logout()

# --- AUTHENTICATE PLAIN (with continuation) ----------------------------------------------------
m = connect()
ok(m.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{PASSWORD}".encode()))
caps = ok(m.capability())[0].decode()
for c in ["IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "CONDSTORE", "QUOTA", "NAMESPACE",
          "UNSELECT", "ENABLE", "LIST-EXTENDED", "LITERAL+", "ID", "STATUS=SIZE"]:
    assert c in caps.split(), (c, caps)
m.logout()

m = connect()
assert "AUTHENTICATIONFAILED" in fails(m.login, ALICE, "wrong")
ok(m.login(ALICE, PASSWORD))

# --- ID, NOOP, ENABLE, NAMESPACE -----------------------------------------------------------------
typ, _ = m.xatom("ID", '("name" "imaplib")')
assert typ == "OK"
assert b"Postern" in untagged(m, "ID")[0]
ok(m.noop())
ok(m.enable("CONDSTORE"))
ns = ok(m.namespace())[0]
assert ns == b'(("" "/")) NIL NIL', ns

# --- LIST, LSUB, special use ---------------------------------------------------------------------
boxes = ok(m.list())
text = b"\n".join(boxes).decode()
for name, attr in [("Sent", r"\Sent"), ("Drafts", r"\Drafts"), ("Trash", r"\Trash"),
                   ("Junk", r"\Junk"), ("Archive", r"\Archive")]:
    assert re.search(r"\(.*" + re.escape(attr) + r".*\) \"/\" " + name, text), (name, text)
assert re.search(r'\(.*\\HasNoChildren.*\) "/" INBOX', text), text
typ, data = m._simple_command("LIST", '(SUBSCRIBED) "" "*" RETURN (SPECIAL-USE)')
assert typ == "OK"
listed = b"\n".join(untagged(m, "LIST")).decode()
assert r"\Subscribed" in listed and r"\Sent" in listed, listed
typ, _ = m._simple_command("LIST", '(SPECIAL-USE) "" "*"')
special = untagged(m, "LIST")
assert len(special) == 5 and not any(b"INBOX" in l for l in special), special
assert ok(m.list('""', '""'))[0].startswith(b'(\\Noselect) "/"')
assert len(ok(m.lsub())) == 6

# --- CREATE, RENAME, DELETE, SUBSCRIBE -----------------------------------------------------------
ok(m.create("Work/Projects"))
text = b"\n".join(ok(m.list("\"\"", "*"))).decode()
assert re.search(r'HasChildren\) "/" Work$', text, re.M), text
ok(m.list("\"\"", "Work/%"))
fails(m.create, "Work/Projects")
fails(m.create, "INBOX")
ok(m.rename("Work", "Jobs"))
assert b"Jobs/Projects" in b"".join(ok(m.list("\"\"", "Jobs/*")))
fails(m.rename, "Nope", "X")
ok(m.unsubscribe("Jobs/Projects"))
assert not any(b"Jobs/Projects" in l for l in ok(m.lsub()) if l)
ok(m.subscribe("Jobs/Projects"))
ok(m.create("Entw&APw-rfe"))  # modified UTF-7
assert any(b"Entw&APw-rfe" in l for l in ok(m.list()))
ok(m.delete("Entw&APw-rfe"))
ok(m.delete("Jobs/Projects"))
fails(m.delete, "INBOX")
fails(m.delete, "Nope")

# --- APPEND with flags and date, STATUS ---------------------------------------------------------
msg1 = b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: first\r\nDate: Tue, 14 Nov 2023 10:00:00 +0000\r\nMessage-ID: <m1@example.test>\r\n\r\nHello there\r\n"
msg2 = b"From: carol@example.test\r\nTo: alice@example.test\r\nSubject: second message\r\nDate: Wed, 15 Nov 2023 10:00:00 +0000\r\nX-Tag: blue\r\n\r\nAnother body with needle inside\r\n"
typ, data = m.append("INBOX", r"(\Seen $Important)", imaplib.Time2Internaldate(1_600_000_000), msg1)
assert typ == "OK" and b"APPENDUID" in data[0], data
uidvalidity = int(re.search(rb"APPENDUID (\d+) (\d+)", data[0]).group(1))
ok(m.append("INBOX", None, None, msg2))
assert "TRYCREATE" in fails(m.append, "Nope", None, None, msg1)
st = ok(m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE)"))[0].decode()
assert f"UIDVALIDITY {uidvalidity}" in st and "MESSAGES 2" in st and "UNSEEN 1" in st, st
assert "UIDNEXT 3" in st and f"SIZE {len(msg1) + len(msg2)}" in st and "RECENT 2" in st, st

# --- SELECT / EXAMINE ----------------------------------------------------------------------------
typ, data = m.select("INBOX", readonly=True)
assert typ == "OK" and data == [b"2"], data
assert m.untagged_responses.get("READ-ONLY") is not None
typ, data = m.select("INBOX")
assert data == [b"2"]
assert m.untagged_responses.get("RECENT") == [b"2"], m.untagged_responses
assert int(m.untagged_responses["UIDVALIDITY"][0]) == uidvalidity
assert m.untagged_responses.get("HIGHESTMODSEQ")

# --- FETCH ---------------------------------------------------------------------------------------
r = ok(m.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE UID)"))[0].decode()
assert r"\Seen" in r and "$Important" in r and r"\Recent" in r and f"RFC822.SIZE {len(msg1)}" in r, r
assert "13-Sep-2020" in r, r
r = ok(m.fetch("1:*", "(ENVELOPE)"))
env = r[0].decode()
assert '"first"' in env and '"Bob" NIL "bob" "example.test"' in env and '"<m1@example.test>"' in env, env
r = ok(m.fetch("2", "(BODYSTRUCTURE BODY)"))[0].decode()
assert '("TEXT" "PLAIN" ("charset" "us-ascii") NIL NIL "7BIT" 33 1' in r, r
r = ok(m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (Subject X-Tag)])"))
assert r[0][1] == b"Subject: second message\r\nX-Tag: blue\r\n\r\n", r
r = ok(m.fetch("2", "(BODY.PEEK[HEADER.FIELDS.NOT (Subject)])"))
assert b"Subject" not in r[0][1] and b"X-Tag" in r[0][1], r
r = ok(m.fetch("2", "(BODY.PEEK[TEXT]<8.4> FLAGS)"))
assert r[0][1] == b"body", r
assert rb"\Seen" not in r[0][0], r
r = ok(m.fetch("2", "(BODY[1])"))
assert r[0][1] == b"Another body with needle inside\r\n", r
r = ok(m.fetch("2", "(FLAGS)"))[0]
assert rb"\Seen" in r, r  # BODY[] without PEEK set \Seen
r = ok(m.fetch("1", "(RFC822.HEADER)"))
assert r[0][1].endswith(b"\r\n\r\n") and b"Subject: first" in r[0][1]
r = ok(m.fetch("1", "(RFC822)"))
assert r[0][1] == msg1
r = ok(m.fetch("1", "(BODY.PEEK[1.MIME] BODY.PEEK[])"))
r = ok(m.uid("FETCH", "1:*", "(FLAGS)"))
assert all(b"UID" in x for x in r), r
r = ok(m.fetch("1", "(MODSEQ)"))[0]
assert b"MODSEQ (" in r, r
r = ok(m.fetch("1:*", "FAST"))
assert len(r) == 2

# --- SEARCH --------------------------------------------------------------------------------------
def search(*criteria, uid=False):
    data = ok(m.uid("SEARCH", *criteria) if uid else m.search(None, *criteria))
    return data[0].decode().split()

assert search("ALL") == ["1", "2"]
assert search("SEEN") == ["1", "2"]
assert search("KEYWORD", "$Important") == ["1"]
assert search("UNKEYWORD", "$Important") == ["2"]
assert search("FROM", "bob") == ["1"]
assert search("TO", "alice") == ["1", "2"]
assert search("SUBJECT", "SECOND") == ["2"]
assert search("BODY", "needle") == ["2"]
assert search("TEXT", "m1@example") == ["1"]
assert search("HEADER", "X-Tag", "blue") == ["2"]
assert search("SENTBEFORE", "15-Nov-2023") == ["1"]
assert search("SENTON", "15-Nov-2023") == ["2"]
assert search("SENTSINCE", "15-Nov-2023") == ["2"]
assert search("BEFORE", "1-Jan-2021") == ["1"]
assert search("SINCE", "1-Jan-2021") == ["2"]
assert search("ON", "13-Sep-2020") == ["1"]
assert search("LARGER", str(len(msg1))) == ["2"]
assert search("SMALLER", str(len(msg2))) == ["1"]
assert search("OR", "FROM", "carol", "SUBJECT", "first") == ["1", "2"]
assert search("NOT", "FROM", "carol") == ["1"]
assert search("2") == ["2"]
assert search("1:*", "UNDELETED") == ["1", "2"]
assert search("UID", "2") == ["2"]
assert search("RECENT") == ["1", "2"]
assert search("NEW") == []
assert search("OLD") == []
assert search("DRAFT") == [] and search("UNDRAFT") == ["1", "2"]
assert search("ALL", uid=True) == ["1", "2"]
r = ok(m.search(None, "MODSEQ", "1"))[0]
assert b"(MODSEQ" in r, r
assert "BADCHARSET" in fails(m.search, "KOI8-R", "ALL")

# --- STORE ---------------------------------------------------------------------------------------
r = ok(m.store("1", "+FLAGS", r"(\Flagged Custom)"))[0]
assert rb"\Flagged" in r and b"Custom" in r, r
r = ok(m.store("1", "-FLAGS.SILENT", "(Custom)"))
assert r == [None], r
r = ok(m.store("1", "FLAGS", r"(\Seen \Answered)"))[0]
assert rb"\Answered" in r and rb"\Flagged" not in r, r
r = ok(m.uid("STORE", "2", "+FLAGS", r"(\Draft)"))[0]
assert b"UID 2" in r, r
ok(m.uid("STORE", "99", "+FLAGS", r"(\Draft)"))  # vanished UIDs are not an error
modseq = int(re.search(rb"MODSEQ \((\d+)\)", ok(m.fetch("1", "(MODSEQ)"))[0]).group(1))
typ, data = m._simple_command("STORE", "1", f"(UNCHANGEDSINCE {modseq - 1})", "+FLAGS", r"(\Flagged)")
assert typ == "OK" and b"MODIFIED" in data[0], data
r = ok(m.fetch("1", "(FLAGS)"))[0]
assert rb"\Flagged" not in r, r

# --- COPY, MOVE with COPYUID ----------------------------------------------------------------------
typ, data = m.copy("1:2", "Archive")
assert typ == "OK" and b"COPYUID" in data[0], data
ok(m.uid("COPY", "77", "Archive"))
fails(m.copy, "1", "Nope")
st = ok(m.status("Archive", "(MESSAGES)"))[0]
assert b"MESSAGES 2" in st, st
typ, data = m.uid("MOVE", "2", "Trash")
assert typ == "OK", data
assert untagged(m, "EXPUNGE") == [b"2"], m.untagged_responses
assert ok(m.uid("MOVE", "2", "Trash")) is not None  # already gone: OK
assert ok(m.select("INBOX"))[0] == b"1"

# --- EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT, CHECK ------------------------------------------------
ok(m.append("INBOX", None, None, msg2))
ok(m.append("INBOX", None, None, msg1 + b"x"))
ok(m.noop())
assert ok(m.search(None, "ALL"))[0] == b"1 2 3"
ok(m.store("1:3", "+FLAGS.SILENT", r"(\Deleted)"))
r = ok(m.uid("EXPUNGE", "3"))
assert untagged(m, "EXPUNGE") == [b"2"], r
assert ok(m.expunge()) == [b"1", b"1"], m.untagged_responses
assert ok(m.search(None, "ALL"))[0] == b""
ok(m.check())
ok(m.unselect())
fails(m.fetch, "1", "FLAGS")
ok(m.select("Archive"))
ok(m.store("1", "+FLAGS.SILENT", r"(\Deleted)"))
ok(m.close())
assert b"MESSAGES 1" in ok(m.status("Archive", "(MESSAGES)"))[0]

# --- RENAME INBOX -------------------------------------------------------------------------------
ok(m.append("INBOX", None, None, msg1))
ok(m.rename("INBOX", "\"Old Inbox\""))
assert b"MESSAGES 0" in ok(m.status("INBOX", "(MESSAGES)"))[0]
assert b"MESSAGES 1" in ok(m.status('"Old Inbox"', "(MESSAGES)"))[0]

# --- QUOTA ---------------------------------------------------------------------------------------
typ, data = m.getquotaroot("INBOX")
assert typ == "OK", data
assert "STORAGE" in repr(data) and " 1024)" in repr(data), data

# --- UTF8=ACCEPT, then LOGOUT --------------------------------------------------------------------
ok(m.enable("UTF8=ACCEPT"))
ok(m._simple_command("CREATE", '"Entwürfe"'.encode()))
assert any("Entwürfe".encode() in l for l in ok(m.list()) if l)
typ, data = m.logout()
assert typ == "BYE", (typ, data)
done()
