"""COMPRESS=DEFLATE (RFC 4978) over TLS: commands and literals compressed both ways, data the
client pipelined after COMPRESS read as compressed, a second COMPRESS refused; a decompression bomb
ends in BYE without the server inflating it (its peak RSS stays small), and corrupt DEFLATE data
closes only that connection."""
import os
import re
import zlib

from common import *

ALICE = "alice@example.test"
PID = int(os.environ["SERVER_PID"])
MIB = 1024 * 1024


class Deflated:
    """Raw DEFLATE both ways on an imaplib connection's socket."""

    def __init__(self, m, already=b""):
        self.sock = m.sock
        self.out = zlib.compressobj(wbits=-15)
        self.inflate = zlib.decompressobj(wbits=-15)
        self.text = self.inflate.decompress(already)

    def send(self, data):
        self.sock.sendall(self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH))

    def until_tagged(self, tag):
        while not re.search(rb"(^|\r\n)" + tag + rb" [^\r\n]*\r\n", self.text):
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed before {tag}: {self.text!r}"
            self.text += self.inflate.decompress(chunk)
        head, _, rest = self.text.partition(tag + b" ")
        line, _, self.text = rest.partition(b"\r\n")
        return head, tag + b" " + line


def compressed(m):
    """Starts DEFLATE on `m` (pipelining a NOOP behind COMPRESS) and returns the channel."""
    out = zlib.compressobj(wbits=-15)
    m.sock.sendall(b"z1 COMPRESS DEFLATE\r\n" + out.compress(b"z2 NOOP\r\n") + out.flush(zlib.Z_SYNC_FLUSH))
    raw = b""
    while b"\r\n" not in raw:
        chunk = m.sock.recv(65536)
        assert chunk, raw
        raw += chunk
    ok_line, _, rest = raw.partition(b"\r\n")
    assert ok_line.startswith(b"z1 OK"), ok_line
    z = Deflated(m, rest)
    z.out = out
    assert z.until_tagged(b"z2")[1].startswith(b"z2 OK")
    return z


# Not before login, and only DEFLATE.
m = connect()
m.sock.settimeout(60)
assert "COMPRESS" not in " ".join(m.capabilities)
send_raw(m, b"p1 COMPRESS DEFLATE\r\n")
assert b"p1 OK" not in read_until_tagged(m, "p1")[-1]
m.login(ALICE, PASSWORD)
assert "COMPRESS=DEFLATE" in ok(m.capability())[0].decode().split()
send_raw(m, b"p2 COMPRESS LZW\r\n")
assert b"p2 BAD" in read_until_tagged(m, "p2")[-1]

z = compressed(m)
raw = b"From: a@example.test\r\nSubject: deflated\r\n\r\n" + b"compressible text\r\n" * 2000
z.send(b"z3 APPEND INBOX {%d+}\r\n%s\r\n" % (len(raw), raw))
assert b"z3 OK [APPENDUID" in z.until_tagged(b"z3")[1]
z.send(b"z4 SELECT INBOX\r\n")
z.until_tagged(b"z4")
z.send(b"z5 FETCH 1 BODY.PEEK[]\r\n")
head, status = z.until_tagged(b"z5")
assert b"z5 OK" in status and raw in head, (status, len(head))
z.send(b"z6 COMPRESS DEFLATE\r\n")
assert b"z6 NO [COMPRESSIONACTIVE]" in z.until_tagged(b"z6")[1]
z.send(b"z7 LOGOUT\r\n")
assert b"* BYE" in z.until_tagged(b"z7")[0]

# A decompression bomb: 64 MiB of one line, a few hundred KiB compressed. The server inflates only
# what its command limit lets through, then says BYE.
m = connect(ALICE)
m.sock.settimeout(60)
z = compressed(m)
peak_before = status_kib(PID, "VmHWM")
closed = False
try:
    z.sock.sendall(z.out.compress(b"b1 NOOP "))
    block = b"A" * MIB
    for _ in range(64):
        z.sock.sendall(z.out.compress(block))
    z.sock.sendall(z.out.flush(zlib.Z_SYNC_FLUSH))
except OSError:
    closed = True  # the server hung up while the bomb was still being sent
text = b""
try:
    while True:
        chunk = z.sock.recv(65536)
        if not chunk:
            break
        text += z.inflate.decompress(chunk)
except OSError:
    pass
assert closed or b"* BYE" in text, text
grown = status_kib(PID, "VmHWM") - peak_before
assert grown < 32 * 1024, f"peak RSS grew by {grown} KiB"

# Corrupt DEFLATE data ends that connection only.
m = connect(ALICE)
m.sock.settimeout(60)
z = compressed(m)
z.sock.sendall(b"\xff\xff\xff\xff\xff\xff")
try:
    assert z.sock.recv(65536) == b""
except OSError:
    pass
m = connect(ALICE)
assert ok(m.noop()) is not None
m.logout()
done()
