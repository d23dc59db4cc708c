"""FETCH replies and SEARCH over bodies are streamed (issue 12): `FETCH 1:* (BODY.PEEK[])` over COUNT messages of about
2 MiB, read by a slow client, must leave the server's peak RSS (VmHWM, kept by the kernel, so no
sample can miss it) far below the size of the reply. Every message must still arrive whole."""
import os
import re
import time

from common import *

PID = int(os.environ["SERVER_PID"])
COUNT = int(os.environ["COUNT"])
MIB = 1024 * 1024


m = connect("erin@example.test")
m.sock.settimeout(120)
assert ok(m.select("INBOX")) == [str(COUNT).encode()]
# Warm up (allocator arenas, prepared statements) with one message.
assert len(ok(m.fetch("1", "(BODY.PEEK[])"))) == 2
before = status_kib(PID, "VmRSS")

m.send(b"s1 FETCH 1:* (BODY.PEEK[])\r\n")
first = m.read(1024)
# A slow client: it takes 1 KiB and waits; a server building the whole reply would now hold it.
time.sleep(2)
rss_while_waiting = status_kib(PID, "VmRSS")
buffered = [first]
total, seen = 0, []


def readline():
    """One line of the reply, with whatever of it the first read already took."""
    global buffered
    data = b"".join(buffered)
    buffered = []
    while b"\r\n" not in data:
        data += m.read(1)
    line, rest = data.split(b"\r\n", 1)
    if rest:
        buffered = [rest]
    return line + b"\r\n"


def read_exact(n):
    global buffered
    data = b"".join(buffered)
    buffered = []
    if len(data) > n:
        buffered = [data[n:]]
        return data[:n]
    parts = [data]
    left = n - len(data)
    while left:
        chunk = m.read(min(left, 64 * 1024))
        assert chunk, "connection closed"
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


while True:
    line = readline()
    if line.startswith(b"s1 "):
        assert line.startswith(b"s1 OK"), line
        break
    match = re.match(rb"\* (\d+) FETCH \(BODY\[\] \{(\d+)\}\r\n$", line)
    assert match, line[:200]
    seq, size = int(match.group(1)), int(match.group(2))
    body = read_exact(size)
    assert body.startswith(f"Subject: big {seq - 1}\r\n".encode()), body[:40]
    assert f"message {seq - 1:04} ".encode() in body[-200:]
    assert readline() == b")\r\n"
    seen.append(seq)
    total += size

assert seen == list(range(1, COUNT + 1)), seen
assert total > 120 * MIB, total
peak = status_kib(PID, "VmHWM")
growth = peak * 1024 - before * 1024
# Generous but far below the 128 MiB sent: a few 4 MiB batches and their encodings.
bound = min(64 * MIB, total // 3)
print(f"rss before {before} KiB, while the client waited {rss_while_waiting} KiB, peak {peak} KiB, sent {total // 1024} KiB")
assert (rss_while_waiting - before) * 1024 < bound, (before, rss_while_waiting)
assert growth < bound, (before, peak, total)

# SEARCH BODY / TEXT read the messages one batch at a time too (issue 12).
# (One search: every message that does not match is decoded whole, slow in a debug build.)
m.sock.settimeout(600)
assert ok(m.search(None, "BODY", '"message 0063 message"')) == [str(COUNT).encode()]
peak = status_kib(PID, "VmHWM")
print(f"peak after SEARCH {peak} KiB")
assert (peak - before) * 1024 < bound, (before, peak, total)
m.logout()
done()
