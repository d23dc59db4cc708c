#!/usr/bin/env python3
"""ManageSieve (RFC 5804) edge cases over raw sockets: refusals before TLS and login, STARTTLS
dropping pipelined plaintext, both AUTHENTICATE forms, compile errors, limits (QUOTA/MAXSIZE,
QUOTA/MAXSCRIPTS), ACTIVE / NONEXISTENT / ALREADYEXISTS, bad UTF-8, hostile input (endless line,
huge literals) while other clients are served, isolation between users, and parallel wrong
logins meeting the shared login limiter. Prints "ok" at the end.

Environment: SIEVE_PORT, SIEVE_PASSWORD (alice's and bob's), SIEVE_CA (server certificate)."""
import base64
import os
import re
import socket
import ssl
import threading

PORT = int(os.environ["SIEVE_PORT"])
PASSWORD = os.environ["SIEVE_PASSWORD"]
CTX = ssl.create_default_context(cafile=os.environ["SIEVE_CA"])
MAX_SCRIPT = 256 * 1024
MAX_SCRIPTS = 32


class Conn:
    def __init__(self, source="127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=60, source_address=(source, 0))
        self.buf = b""
        self.greeting = self.response()

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; had %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """Lines (literals inlined) up to and including the final OK/NO/BYE line."""
        lines = []
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}$", line)
            while m:
                line = line[: m.start()] + self.exactly(int(m.group(1)))
                rest = self.line()
                line += rest
                m = re.search(rb"\{(\d+)\}$", rest)
            lines.append(line)
            if re.match(rb"^(OK|NO|BYE)\b", line):
                return lines

    def cmd(self, text, *literals):
        data = text.encode() if isinstance(text, str) else text
        for lit in literals:
            data += b" {%d+}\r\n" % len(lit) + lit
        self.send(data + b"\r\n")
        return self.response()

    def last(self, text, *literals):
        return self.cmd(text, *literals)[-1]

    def starttls(self):
        assert self.last("STARTTLS").startswith(b"OK"), "STARTTLS"
        self.sock = CTX.wrap_socket(self.sock, server_hostname="mail.example.test")
        return self.response()

    def login(self, user, password=PASSWORD):
        plain = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        return self.last('AUTHENTICATE "PLAIN"', plain)

    def close(self):
        self.sock.close()


def expect(line, prefix, what):
    assert line.startswith(prefix), f"{what}: expected {prefix!r}, got {line!r}"


def session(user="alice@example.test"):
    c = Conn()
    c.starttls()
    expect(c.login(user), b"OK", f"login {user}")
    return c


# Before TLS: no mechanism offered, AUTHENTICATE refused, STARTTLS offered.
c = Conn()
caps = b"\n".join(c.greeting)
assert b'"SASL" ""' in caps and b'"STARTTLS"' in caps and b'"VERSION" "1.0"' in caps, caps
assert b'"IMPLEMENTATION" "Postern"' in caps and b"fileinto" in caps and b"vacation" in caps, caps
expect(c.login("alice@example.test"), b"NO (ENCRYPT-NEEDED)", "AUTHENTICATE before TLS")
# Not logged in: script commands are refused.
for command in ["LISTSCRIPTS", 'GETSCRIPT "x"', 'DELETESCRIPT "x"', 'SETACTIVE "x"', 'HAVESPACE "x" 1']:
    expect(c.last(command), b"NO", f"{command} before login")
expect(c.last("FROBNICATE"), b"NO", "unknown command")
# STARTTLS with a pipelined command: the plaintext command is dropped, capabilities re-sent.
c.send(b"STARTTLS\r\nLISTSCRIPTS\r\n")
expect(c.response()[-1], b"OK", "STARTTLS")
c.buf = b""
c.sock = CTX.wrap_socket(c.sock, server_hostname="mail.example.test")
caps = b"\n".join(c.response())
assert b'"SASL" "PLAIN"' in caps and b'"STARTTLS"' not in caps, caps
expect(c.last('NOOP "after-tls"'), b'OK (TAG "after-tls")', "pipelined plaintext was dropped")
# Wrong password, unsupported mechanism, cancelled exchange, then the challenge form.
expect(c.login("alice@example.test", "wrong"), b"NO", "wrong password")
expect(c.last('AUTHENTICATE "LOGIN"'), b"NO", "unsupported mechanism")
c.send(b'AUTHENTICATE "PLAIN"\r\n')
assert c.line() == b'""', "empty challenge"
c.send(b'"*"\r\n')
expect(c.response()[-1], b"NO", "cancelled")
c.send(b'AUTHENTICATE "PLAIN"\r\n')
assert c.line() == b'""'
c.send(b'"' + base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()) + b'"\r\n')
expect(c.response()[-1], b"OK", "challenge-form login")
caps = b"\n".join(c.cmd("CAPABILITY"))
assert b'"OWNER" "alice@example.test"' in caps and b'"SASL"' not in caps, caps
expect(c.last('AUTHENTICATE "PLAIN"'), b"NO", "second AUTHENTICATE")

# Scripts.
good = b'require "fileinto";\r\nif header :contains "subject" "x" { fileinto "Junk"; }\r\n'
expect(c.last("CHECKSCRIPT", good), b"OK", "CHECKSCRIPT good")
bad = c.last("CHECKSCRIPT", b'if true { fileinto "x"; }\r\n')
expect(bad, b"NO", "CHECKSCRIPT bad")
assert len(bad) > 4, f"the refusal says why: {bad!r}"
bad = c.last('PUTSCRIPT "bad"', b"frobnicate;\r\n")
expect(bad, b"NO", "PUTSCRIPT bad")
assert len(bad) > 4, bad
expect(c.last('GETSCRIPT "bad"'), b"NO (NONEXISTENT)", "a refused script is not stored")
expect(c.last('PUTSCRIPT "bad"', b"keep; \xff\xfe\r\n"), b"NO", "script not UTF-8")
expect(c.last('PUTSCRIPT "first"', good), b"OK", "PUTSCRIPT")
got = c.cmd('GETSCRIPT "first"')
assert got[0] == good and got[-1].startswith(b"OK"), got
expect(c.last('PUTSCRIPT {6+}\r\nsecon"', good), b"OK", "name as a literal, with a quote")
listing = c.cmd("LISTSCRIPTS")
assert listing[-1].startswith(b"OK") and b'"first"' in listing and b'"secon\\""' in listing, listing
# HAVESPACE and the size limit.
expect(c.last('HAVESPACE "new" 1000'), b"OK", "HAVESPACE small")
expect(c.last('HAVESPACE "new" %d' % (MAX_SCRIPT + 1)), b"NO (QUOTA/MAXSIZE)", "HAVESPACE too big")
expect(c.last('HAVESPACE "new" 99999999999999'), b"NO", "HAVESPACE absurd size")
big = b"#" * (MAX_SCRIPT + 1) + b"\r\n"
expect(c.last('PUTSCRIPT "big"', big), b"NO (QUOTA/MAXSIZE)", "PUTSCRIPT too big")
huge = b"#" * (4 * MAX_SCRIPT)
expect(c.last('PUTSCRIPT "huge"', huge), b"NO (QUOTA/MAXSIZE)", "literal over the limit is dropped")
expect(c.last('NOOP "still-here"'), b'OK (TAG "still-here")', "connection goes on after a dropped literal")
# Activation, deletion, renaming.
expect(c.last('SETACTIVE "nope"'), b"NO (NONEXISTENT)", "SETACTIVE missing")
expect(c.last('SETACTIVE "first"'), b"OK", "SETACTIVE")
assert b'"first" ACTIVE' in c.cmd("LISTSCRIPTS"), "listed active"
expect(c.last('DELETESCRIPT "first"'), b"NO (ACTIVE)", "DELETESCRIPT active")
expect(c.last('DELETESCRIPT "nope"'), b"NO (NONEXISTENT)", "DELETESCRIPT missing")
expect(c.last('RENAMESCRIPT "first" "secon\\""'), b"NO (ALREADYEXISTS)", "RENAMESCRIPT onto another")
expect(c.last('RENAMESCRIPT "nope" "x"'), b"NO (NONEXISTENT)", "RENAMESCRIPT missing")
expect(c.last('RENAMESCRIPT "first" "renamed"'), b"OK", "RENAMESCRIPT")
assert b'"renamed" ACTIVE' in c.cmd("LISTSCRIPTS"), "the active flag follows the rename"
expect(c.last('SETACTIVE ""'), b"OK", "deactivate")
expect(c.last('DELETESCRIPT "renamed"'), b"OK", "DELETESCRIPT after deactivation")
# The number of scripts.
for i in range(MAX_SCRIPTS - 1):
    expect(c.last(f'PUTSCRIPT "s{i}"', b"keep;\r\n"), b"OK", f"script {i}")
expect(c.last('HAVESPACE "one-more" 10'), b"NO (QUOTA/MAXSCRIPTS)", "HAVESPACE at the count limit")
expect(c.last('HAVESPACE "s0" 10'), b"OK", "replacing is always possible")
expect(c.last('PUTSCRIPT "one-more"', b"keep;\r\n"), b"NO (QUOTA/MAXSCRIPTS)", "PUTSCRIPT at the count limit")

# Another user sees none of alice's scripts.
b = session("bob@example.test")
assert b.cmd("LISTSCRIPTS") == [b"OK"], "bob has no scripts"
expect(b.last('GETSCRIPT "s0"'), b"NO (NONEXISTENT)", "bob cannot read alice's script")
expect(b.last('DELETESCRIPT "s0"'), b"NO (NONEXISTENT)", "bob cannot delete alice's script")
expect(b.last("UNAUTHENTICATE"), b"OK", "UNAUTHENTICATE")
expect(b.last("LISTSCRIPTS"), b"NO", "logged out again")
expect(b.last("LOGOUT"), b"OK", "LOGOUT")
b.close()

# Hostile input: an endless line and a huge literal before login end those connections; the
# logged-in client is served all along.
endless = Conn()
for _ in range(9):
    endless.send(b"x" * 1024)
expect(endless.response()[-1], b"BYE", "endless line")
huge = Conn()
huge.send(b'AUTHENTICATE "PLAIN" {99999999+}\r\n')
expect(huge.response()[-1], b"BYE", "huge literal before login")
expect(c.last('NOOP "served"'), b'OK (TAG "served")', "others are served")
expect(c.last("LOGOUT"), b"OK", "LOGOUT")
c.close()

# 20 parallel wrong logins from one address meet the shared limiter (10 failures per address,
# and a per-account budget): at least half are refused unverified with TRYLATER; the right
# password from another address works at once.
results = []
lock = threading.Lock()
barrier = threading.Barrier(20, timeout=120)


def guess():
    g = Conn("127.0.0.20")
    g.starttls()
    barrier.wait()
    line = g.login("alice@example.test", "guess")
    with lock:
        results.append(line)
    g.close()


threads = [threading.Thread(target=guess) for _ in range(20)]
for t in threads:
    t.start()
for t in threads:
    t.join()
throttled = sum(1 for r in results if r.startswith(b"NO (TRYLATER)"))
assert len(results) == 20 and all(r.startswith(b"NO") for r in results), results
assert throttled >= 10, f"at most 10 guesses are verified; throttled {throttled} of 20: {results}"
real = Conn("127.0.0.21")
real.starttls()
expect(real.login("alice@example.test"), b"OK", "the real user from elsewhere gets in")
real.close()
print("ok")
