#!/usr/bin/env python3
"""IMAP load generator for bench/imap.sh: N concurrent connections, each logs in as its own user,
then repeats SELECT INBOX / FETCH 1:* (FLAGS) / FETCH <last> BODY.PEEK[] / APPEND for the given
time, logging out and in again every --cycles-per-login cycles. Prints one JSON line with
operations per second (one IMAP command = one operation)."""
import argparse
import imaplib
import json
import socket
import threading
import time

MESSAGE = (
    b"From: Load <load@example.test>\r\nTo: user@example.test\r\nSubject: load test\r\n"
    b"Date: Tue, 14 Nov 2023 10:00:00 +0000\r\nMessage-ID: <%d.%d@load>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"Lorem ipsum dolor sit amet. " * 60 + b"\r\n"
)


def connect(args):
    """A connection with Nagle's algorithm off, as mail clients do: imaplib writes a literal and
    its closing CRLF separately, which would otherwise wait on the server's delayed ACK."""
    m = imaplib.IMAP4(args.host, args.port)
    m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return m


def seed(args, user):
    m = connect(args)
    m.login(user, args.password)
    m.select("INBOX")
    typ, data = m.search(None, "ALL")
    have = len(data[0].split())
    for i in range(have, args.seed):
        m.append("INBOX", None, None, MESSAGE % (0, i))
    m.logout()


def worker(args, user, stop, counts, errors, index):
    ops = cycles = 0
    try:
        while not stop.is_set():
            m = connect(args)
            m.login(user, args.password)
            ops += 1
            for _ in range(args.cycles_per_login):
                if stop.is_set():
                    break
                typ, data = m.select("INBOX")
                n = int(data[0])
                m.fetch("1:*", "(FLAGS)")
                m.fetch(str(n), "(BODY.PEEK[])")
                m.append("INBOX", None, None, MESSAGE % (index, cycles))
                ops += 4
                cycles += 1
            m.logout()
            ops += 1
    except Exception as e:  # a failed connection is counted, not fatal
        errors.append(repr(e))
    counts[index] = (ops, cycles)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--users", required=True, help="comma-separated logins, one per connection")
    p.add_argument("--password", default="password")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--seed", type=int, default=50)
    p.add_argument("--cycles-per-login", type=int, default=20)
    args = p.parse_args()
    users = args.users.split(",")
    for u in users:
        seed(args, u)
    stop = threading.Event()
    counts = [None] * len(users)
    errors = []
    threads = [threading.Thread(target=worker, args=(args, u, stop, counts, errors, i))
               for i, u in enumerate(users)]
    start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    ops = sum(c[0] for c in counts if c)
    cycles = sum(c[1] for c in counts if c)
    print(json.dumps({"connections": len(users), "seconds": round(elapsed, 1), "ops": ops,
                      "ops_per_s": round(ops / elapsed, 1), "cycles_per_s": round(cycles / elapsed, 1),
                      "errors": len(errors), "first_error": errors[0] if errors else None}))


if __name__ == "__main__":
    main()
