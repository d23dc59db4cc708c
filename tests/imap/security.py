"""Bad syntax gets BAD, oversized literals are refused before they are sent, STARTTLS command
injection is discarded, and after repeated login failures an address is refused."""
import imaplib
import socket
import ssl

from common import *

# Bad syntax: BAD, and the connection keeps working.
m = connect("alice@example.test")
for junk in [b"X1 FETCH\r\n", b"X2 SELECT\r\n", b"X3 NOSUCHCOMMAND\r\n", b"X4 UID FETCH 1:* (FLAGS\r\n",
             b"X5 LOGIN a b c\r\n", b"\r\n", b"X6 SEARCH FROM\r\n"]:
    send_raw(m, junk)
    line = m.readline()
    assert b" BAD " in line or line.startswith(b"* BAD") or line.startswith(b"+"), (junk, line)
send_raw(m, b"X7 NOOP\r\n")
assert read_until_tagged(m, "X7")[-1].startswith(b"X7 OK")

# A literal above max_message_size (1 MiB in this test's config) is refused before it is read.
send_raw(m, b"L1 APPEND INBOX {2000000}\r\n")
line = m.readline()
assert line.startswith(b"L1 NO [TOOBIG]"), line
# Non-synchronising literal above the limit: drained and refused, the connection survives.
send_raw(m, b"L2 APPEND INBOX {1100000+}\r\n" + b"x" * 1100000 + b"\r\n")
line = m.readline()
assert line.startswith(b"L2 NO [TOOBIG]"), line
send_raw(m, b"L3 NOOP\r\n")
assert read_until_tagged(m, "L3")[-1].startswith(b"L3 OK")
# Large literals within the limit (read under the shared literal budget, buffers given back
# afterwards), synchronizing and not, with a command pipelined right behind the second.
big = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 5000
send_raw(m, b"L4 APPEND Drafts {%d}\r\n" % len(big))
assert m.readline().startswith(b"+"), "no continuation for a literal within the limit"
send_raw(m, big + b"\r\n")
assert read_until_tagged(m, "L4")[-1].startswith(b"L4 OK")
send_raw(m, b"L5 APPEND Drafts {%d+}\r\n" % len(big) + big + b"\r\nL6 NOOP\r\n")
assert read_until_tagged(m, "L5")[-1].startswith(b"L5 OK")
assert read_until_tagged(m, "L6")[-1].startswith(b"L6 OK")
m.logout()

# STARTTLS injection: a command pipelined after STARTTLS in clear text must not be executed.
s = socket.create_connection((HOST, PLAIN))
f = s.makefile("rb")
assert f.readline().startswith(b"* OK")
s.sendall(b"S1 STARTTLS\r\nS2 CAPABILITY\r\n")
assert f.readline().startswith(b"S1 OK")
tls = tls_context().wrap_socket(s, server_hostname="mail.example.test")
tf = tls.makefile("rb")
tls.sendall(b"S3 NOOP\r\n")
line = tf.readline()
assert line.startswith(b"S3 OK"), line
tls.close()

# Rate limiting: after repeated failures the address is refused, even with the right password.
locked = False
for i in range(12):
    m = connect()
    try:
        m.login("victim@example.test", "wrong")
    except imaplib.IMAP4.error as e:
        if "UNAVAILABLE" in str(e):
            locked = True
            break
    m.logout()
assert locked, "never locked out"
m = connect()
assert "UNAVAILABLE" in fails(m.login, "alice@example.test", PASSWORD)
done()
