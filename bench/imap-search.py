#!/usr/bin/env python3
"""Times the mailbox commands of bench/imap.sh on one server: logs in, selects INBOX, then runs
Thunderbird's header fetch (`UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (...)])`),
`UID SEARCH SUBJECT term` and `UID SEARCH BODY term`, each timed from sending the command to its
tagged OK. A lean reader (literals skipped by length) so that the client costs little next to the
server. Prints JSON: seconds per command, FETCH responses, SEARCH hits, bytes received. With
--pid (a single-process server), also the memory the header fetch and SEARCH BODY took: the
server's RSS before each and its peak RSS during it (VmHWM, reset just before through
/proc/PID/clear_refs), in KiB.

    imap-search.py --port P --user U --password W --subject TERM --body TERM [--pid PID]"""
import argparse
import json
import socket
import time

FIELDS = ("From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups "
          "In-Reply-To Content-Type Reply-To")
COMMANDS = {
    "header_fetch": f"UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({FIELDS})])",
    "search_subject": "UID SEARCH SUBJECT {subject}",
    "search_body": "UID SEARCH BODY {body}",
}


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(600)
        # Received bytes from `pos` on are unread. Reading moves `pos` instead of copying what is
        # left after every line (that copy cost this client more CPU than a server spent on
        # Thunderbird's header fetch); the read part is dropped only when more bytes come in.
        self.buf = bytearray()
        self.pos = 0
        self.tag = 0
        self.line()  # greeting

    def fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed")
        del self.buf[:self.pos]
        self.pos = 0
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return out
            self.fill()

    def skip(self, n):
        while len(self.buf) - self.pos < n:
            self.fill()
        self.pos += n

    def run(self, command):
        """Sends `command`; returns (untagged lines without literals, bytes received)."""
        self.tag += 1
        tag = f"b{self.tag}".encode()
        self.sock.sendall(tag + b" " + command.encode() + b"\r\n")
        lines, size = [], 0
        while True:
            line = self.line()
            size += len(line) + 2
            while line.endswith(b"}") and b"{" in line:
                n = int(line[line.rindex(b"{") + 1:-1])
                self.skip(n)
                size += n
                rest = self.line()
                size += len(rest) + 2
                line = line + b"..." + rest
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line)
                return lines, size
            lines.append(line)


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--subject", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--pid", type=int)
    a = p.parse_args()
    c = Client(a.port)
    c.run(f'LOGIN "{a.user}" "{a.password}"')
    c.run("SELECT INBOX")
    out = {}
    for name, template in COMMANDS.items():
        prefix = {"header_fetch": "header", "search_body": "body"}.get(name)
        if a.pid and prefix:
            out[prefix + "_rss_before_kib"] = status_kib(a.pid, "VmRSS")
            with open(f"/proc/{a.pid}/clear_refs", "w") as f:
                f.write("5")
        command = template.format(subject=a.subject, body=a.body)
        start = time.perf_counter()
        lines, size = c.run(command)
        out[name] = round(time.perf_counter() - start, 4)
        if name == "header_fetch":
            out["fetched"] = sum(1 for l in lines if b" FETCH " in l)
        else:
            hits = [l for l in lines if l.startswith(b"* SEARCH")]
            out[name + "_hits"] = len(hits[0].split()) - 2 if hits else 0
        out[name + "_bytes"] = size
        if a.pid and prefix:
            out[prefix + "_peak_kib"] = status_kib(a.pid, "VmHWM")
    c.run("LOGOUT")
    print(json.dumps(out))


main()
