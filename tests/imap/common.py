"""Helpers shared by the IMAP end-to-end scripts (driven by tests/imap.rs)."""
import imaplib
import os
import re
import socket
import ssl
import sys

HOST = "127.0.0.1"
PLAIN = int(os.environ["IMAP_PORT"])
TLS = int(os.environ["IMAPS_PORT"])
PASSWORD = os.environ.get("IMAP_PASSWORD", "password")


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(user=None):
    """An implicit-TLS connection, logged in as `user` if given."""
    m = imaplib.IMAP4_SSL(HOST, TLS, ssl_context=tls_context())
    if user:
        m.login(user, PASSWORD)
    return m


def ok(result, what=""):
    typ, data = result
    assert typ == "OK", f"{what}: {typ} {data}"
    return data


def fails(fn, *args):
    """Runs an imaplib call that must end in NO or BAD; returns the error text."""
    try:
        typ, data = fn(*args)
    except imaplib.IMAP4.error as e:
        return str(e)
    assert typ != "OK", f"expected failure, got {typ} {data}"
    return str(data)


def untagged(m, name):
    return m.untagged_responses.pop(name, [])


def send_raw(m, line):
    m.send(line if isinstance(line, bytes) else line.encode())


def read_until_tagged(m, tag):
    """Reads raw lines until the tagged response of `tag`; returns all lines."""
    lines = []
    while True:
        line = m.readline()
        assert line, "connection closed"
        lines.append(line)
        if line.startswith(tag.encode() + b" "):
            return lines


_tags = [0]


def tagged(m, text):
    """Sends the command `text` under a fresh tag; returns its raw lines and the tag."""
    _tags[0] += 1
    tag = f"c{_tags[0]}"
    send_raw(m, f"{tag} {text}\r\n")
    return read_until_tagged(m, tag), tag


def idle_start(m, tag=b"I1"):
    send_raw(m, tag + b" IDLE\r\n")
    line = m.readline()
    assert line.startswith(b"+"), line
    return tag


def idle_wait_for(m, pattern, limit=20):
    """Reads untagged lines during IDLE until one matches `pattern` (a regex on bytes)."""
    m.sock.settimeout(15)
    seen = []
    for _ in range(limit):
        line = m.readline()
        seen.append(line)
        if re.search(pattern, line):
            m.sock.settimeout(None)
            return line
    raise AssertionError(f"never saw {pattern!r}: {seen}")


def idle_done(m, tag=b"I1"):
    send_raw(m, b"DONE\r\n")
    lines = read_until_tagged(m, tag.decode())
    assert b" OK " in lines[-1], lines
    return lines


def status_kib(pid, name):
    """A value of /proc/PID/status in KiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {name} for {pid}")


def done():
    print("ok")
    sys.exit(0)
