#!/usr/bin/env python3
"""Concurrent large APPENDs for bench/imap-append.sh: CLIENTS connections log in (one user each,
plain IMAP, no TLS), wait at a barrier, then each APPENDs its own MIME message of SIZE bytes (a
base64 attachment of random bytes, so nothing is deduplicated) with a synchronizing literal, sent
in 64 KiB writes. Prints JSON: seconds for the whole burst, MiB/s, and failures."""
import argparse
import base64
import json
import os
import socket
import threading
import time


def message(size, seed):
    head = (
        f"From: bench{seed}@bench.test\r\nTo: bench@bench.test\r\nSubject: large {seed}\r\n"
        f"Message-ID: <large{seed}.{time.time()}@bench.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        "attached\r\n--b\r\nContent-Type: application/octet-stream; name=\"d.bin\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    tail = b"\r\n--b--\r\n"
    raw = os.urandom((size - len(head) - len(tail)) * 57 // 78 + 57)
    body = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    body = body[: size - len(head) - len(tail)]
    return head + body + tail


def readline(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    return line


def client(port, user, data, barrier, results, i):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        readline(f)
        s.sendall(b"a LOGIN %s password\r\n" % user.encode())
        while not readline(f).startswith(b"a "):
            pass
        barrier.wait()
        s.sendall(b"b APPEND INBOX {%d}\r\n" % len(data))
        line = readline(f)
        if not line.startswith(b"+"):
            raise RuntimeError(line)
        view = memoryview(data)
        for off in range(0, len(data), 65536):
            s.sendall(view[off:off + 65536])
        s.sendall(b"\r\n")
        while True:
            line = readline(f)
            if line.startswith(b"b "):
                break
        results[i] = line.startswith(b"b OK")
        if not results[i]:
            print(line, flush=True)
        s.sendall(b"c LOGOUT\r\n")
        s.close()
    except Exception as e:  # noqa: BLE001 - reported as a failure
        print(f"client {i}: {e}", flush=True)
        results[i] = False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--users", required=True)
    p.add_argument("--size", type=int, default=40 * 1024 * 1024)
    a = p.parse_args()
    users = a.users.split(",")
    messages = [message(a.size, i) for i in range(len(users))]
    barrier = threading.Barrier(len(users) + 1)
    results = [None] * len(users)
    threads = [
        threading.Thread(target=client, args=(a.port, u, messages[i], barrier, results, i))
        for i, u in enumerate(users)
    ]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.monotonic()
    for t in threads:
        t.join()
    secs = time.monotonic() - start
    total = a.size * len(users) / 1048576
    print(json.dumps({"seconds": round(secs, 2), "mib_per_s": round(total / secs, 1),
                      "failures": sum(1 for r in results if not r)}))


if __name__ == "__main__":
    main()
