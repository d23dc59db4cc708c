"""Driven by tests/import_imap.rs. `fill`: puts folders (nested, non-ASCII, one \\Noselect parent)
and messages (flags, keywords, given INTERNALDATEs, 8-bit, a large one) into the source Dovecot at
SOURCE_PORT; `more`: appends one message to its INBOX; `broken`: a new folder Broken with one message and one
more in INBOX; `flags`: changes flags and keywords of messages imported before at the source;
`diverge`: expunges message 3 at the source, flags message 4 there and marks it \\Seen in Postern;
`diverged`: Postern kept message 3 and has both changes on message 4; `compare`: every selectable
folder of the source and its Postern counterpart hold the same messages (bytes, flags without
\\Recent, INTERNALDATE instant); prints their number."""
import imaplib
import os
import re
import sys
from datetime import datetime

from common import connect, ok

SOURCE = int(os.environ["SOURCE_PORT"])
# Folders as the source spells them ("." delimiter, modified UTF-7) and as Postern does.
FOLDERS = {
    "INBOX": "INBOX",
    "Projects": "Projects",
    "Projects.2026": "Projects/2026",
    "Entw&APw-rfe": "Entw&APw-rfe",
    "Deep.er.still": "Deep/er/still",
}


def source():
    m = imaplib.IMAP4("127.0.0.1", SOURCE)
    ok(m.login("bob@source.test", "source pw"), "source LOGIN")
    return m


def message(n, extra=b""):
    return (b"From: someone@example.net\r\nSubject: message %d\r\n"
            b"Message-ID: <%d@example.net>\r\n\r\nbody %d\r\n" % (n, n, n)) + extra


def fill():
    m = source()
    for name in FOLDERS:
        if name != "INBOX":
            ok(m.create(f'"{name}"'), f"CREATE {name}")
    n = 0
    for i, name in enumerate(FOLDERS):
        for flags, date in [
            (r"(\Seen)", '"01-Jan-2020 10:00:00 +0200"'),
            (r"(\Answered \Flagged $Forwarded work)", '"29-Feb-2024 23:59:59 -0700"'),
            (r"(\Draft \Deleted)", '"15-Jun-2001 00:00:01 +0000"'),
            ("()", '"07-Dec-2026 04:00:00 +0100"'),
        ]:
            n += 1
            ok(m.append(f'"{name}"', flags, date, message(n)), f"APPEND {name}")
        if i == 0:
            eight = "Grüße, naïve café ☃\r\n".encode() * 3
            ok(m.append('"INBOX"', r"($Junk)", '"02-Feb-2022 02:02:02 +0000"',
                        b"Subject: 8bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + eight), "8-bit")
            # A large body (several fetch batches' worth of bytes in one message, no bare \n).
            line = b"x" * 998 + b"\r\n"
            ok(m.append('"INBOX"', r"(\Seen)", '"03-Mar-2023 03:03:03 +0300"',
                        message(9999, line * 12000)), "large")
    m.logout()


def more():
    m = source()
    ok(m.append('"INBOX"', r"(\Flagged)", '"04-Apr-2024 04:04:04 +0000"', message(10000)), "APPEND")
    m.logout()


def broken():
    m = source()
    ok(m.create("Broken"), "CREATE")
    ok(m.append("Broken", r"(\Seen)", '"05-May-2025 05:05:05 +0000"', message(10001)), "APPEND")
    ok(m.append("INBOX", "()", '"06-Jun-2025 06:06:06 +0000"', message(10002)), "APPEND")
    m.logout()


def store(m, folder, n, op, flags):
    """STORE op flags on the message with Message-ID <n@example.net> in folder."""
    ok(m.select(f'"{folder}"'), f"SELECT {folder}")
    uids = ok(m.uid("SEARCH", "HEADER", "Message-ID", f"<{n}@example.net>"), "SEARCH")[0].split()
    assert len(uids) == 1, (folder, n, uids)
    ok(m.uid("STORE", uids[0], op, flags), f"STORE {n}")
    return uids[0]


def flags():
    m = source()
    store(m, "INBOX", 1, "-FLAGS", r"(\Seen)")
    store(m, "INBOX", 1, "+FLAGS", r"(\Flagged NewKeyword)")
    store(m, "INBOX", 2, "-FLAGS", r"(\Answered work)")
    store(m, "Projects", 5, "+FLAGS", r"($Label1)")
    m.logout()


def diverge():
    m = source()
    store(m, "INBOX", 4, "+FLAGS", r"(\Flagged)")
    store(m, "INBOX", 3, "+FLAGS", r"(\Deleted)")
    ok(m.expunge(), "EXPUNGE")
    m.logout()
    dst = connect("alice@example.test")
    store(dst, "INBOX", 4, "+FLAGS", r"(\Seen)")
    dst.logout()


def diverged():
    dst = connect("alice@example.test")
    uid = store(dst, "INBOX", 3, "+FLAGS", "()")
    assert uid, "message 3, deleted at the source, is kept"
    uid = store(dst, "INBOX", 4, "+FLAGS", "()")
    data = ok(dst.uid("FETCH", uid, "(FLAGS)"), "FETCH")
    got = set(re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).decode().split()) - {"\\Recent"}
    assert got == {"\\Seen", "\\Flagged"}, got
    dst.logout()
    print("ok")


def contents(m, name):
    ok(m.select(f'"{name}"', readonly=True), f"SELECT {name}")
    typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK", data
    found = []
    for d in data:
        if not isinstance(d, tuple):
            continue
        head, body = d
        flags = set(re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split()) - {"\\Recent"}
        date = re.search(rb'INTERNALDATE "([^"]+)"', head).group(1).decode()
        when = datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z").timestamp()
        found.append((body, tuple(sorted(flags)), when))
    return sorted(found)


def compare():
    src = source()
    dst = connect("alice@example.test")
    listing = [l.decode() for l in ok(dst.list('""', "*"), "LIST")]
    theirs = [l.decode() for l in ok(src.list('""', "*"), "LIST")]
    names = [re.search(r'"\." "?([^"]*)"?$', l).group(1) for l in theirs if "\\Noselect" not in l]
    for name in FOLDERS:
        assert name in names, (name, theirs)
    total = 0
    for name in names:
        ours = name.replace(".", "/")
        assert any(l.endswith(f' {ours}') or l.endswith(f' "{ours}"') for l in listing), (ours, listing)
        want = contents(src, name)
        got = contents(dst, ours)
        assert want, name
        assert got == want, f"{ours}: {[(len(b), f, d) for b, f, d in got]} != {[(len(b), f, d) for b, f, d in want]}"
        total += len(got)
    print(total)
    print("ok")


{
    "fill": fill, "more": more, "broken": broken, "compare": compare,
    "flags": flags, "diverge": diverge, "diverged": diverged,
}[sys.argv[1]]()
