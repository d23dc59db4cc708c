"""Reads back, through IMAP, what tests/import.rs imported from a Maildir++ tree for alice:
folder names (modified UTF-7 on the wire), special use, flags, keywords, INTERNALDATE and the
exact message bytes."""
import re

from common import connect, ok


def flags(head):
    """The FLAGS of a FETCH response, without \\Recent (a property of this session, not imported)."""
    found = re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split()
    return set(found) - {"\\Recent"}


def main():
    m = connect("alice@example.test")
    listing = [line.decode() for line in ok(m.list('""', "*"), "LIST")]
    names = {re.search(r'"/" (.*)$', l).group(1).strip('"'): l for l in listing}
    for want in ["INBOX", "Sent", "Junk", "Trash", "Projects", "Projects/2026", "K&AOQ-se", "a_b", "100%"]:
        assert want in names, f"{want} not in {listing}"
    assert "\\Sent" in names["Sent"], names["Sent"]
    assert "Spam" not in names and "Linked" not in names, listing

    ok(m.select("INBOX", readonly=True), "SELECT INBOX")
    data = ok(m.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])"), "FETCH")
    messages = [d for d in data if isinstance(d, tuple)]
    assert len(messages) == 4, data
    head, body = messages[1]
    assert flags(head) == {"\\Flagged", "\\Answered", "\\Seen", "\\Deleted", "$Forwarded", "$Label2", "work"}, head
    assert b'INTERNALDATE "14-Nov-2023 22:13:22 +0000"' in head, head
    assert body == b"Subject: flagged\r\n\r\nbody\r\n", body
    head, body = messages[0]
    assert flags(head) == set(), head
    assert body == b"Subject: new\n\nhello\n", body
    assert messages[2][1] == b"Subject: no newline\n\nlast", messages[2]
    assert messages[3][1] == b"Subject: later\n\n", messages[3]

    ok(m.select('"K&AOQ-se"', readonly=True), "SELECT Käse")
    data = ok(m.fetch("1", "(FLAGS BODY.PEEK[])"), "FETCH")
    assert data[0][1] == b"Subject: utf7\n\n", data
    m.logout()
    print("ok")


main()
