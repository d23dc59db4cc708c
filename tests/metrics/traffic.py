"""Mail traffic for tests/metrics.rs: one message in over the MX, one submitted (after STARTTLS and
AUTH) to a remote address, then an IMAP session (STARTTLS, LOGIN, SELECT, FETCH, a bad command)
that stays logged in: it prints "logged-in" and logs out when a line arrives on stdin.

usage: traffic.py MX_PORT SUBMISSION_PORT IMAP_PORT USER PASSWORD"""
import imaplib
import smtplib
import ssl
import sys

mx, submission, imap, user, password = (
    int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

with smtplib.SMTP("127.0.0.1", mx, timeout=60) as s:
    s.sendmail("someone@elsewhere.test", [user],
               "From: someone@elsewhere.test\r\nSubject: in\r\n\r\nHello.\r\n")
with smtplib.SMTP("127.0.0.1", submission, timeout=60) as s:
    s.starttls(context=ctx)
    s.login(user, password)
    s.sendmail(user, ["bob@elsewhere.test"],
               "From: %s\r\nTo: bob@elsewhere.test\r\nSubject: out\r\n\r\nBye.\r\n" % user)

m = imaplib.IMAP4("127.0.0.1", imap, timeout=60)
m.starttls(ssl_context=ctx)
m.login(user, password)
typ, _ = m.select("INBOX")
assert typ == "OK", typ
typ, data = m.fetch("1:*", "(FLAGS)")
assert typ == "OK" and data[0], (typ, data)
try:
    m.fetch("0", "(FLAGS)")
except imaplib.IMAP4.error:
    pass
print("logged-in", flush=True)
sys.stdin.readline()
m.logout()
