#!/usr/bin/env python3
"""Sends one large message over each of CLIENTS SMTP connections at the same moment (used by
bench/smtp-large.sh). The message is binary-ish: a base64 attachment of random bytes, lines of
998 characters, and lines that start with a dot (smtplib dot-stuffs them). Prints JSON with the
wall time and the number of failed sends."""
import argparse
import base64
import json
import os
import smtplib
import sys
import threading
import time


def message(size, n):
    head = (f"From: <sender@remote.test>\r\nTo: <bench@bench.test>\r\nSubject: large {n}\r\n"
            f"Message-ID: <large{n}.{time.time()}@remote.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
    text = b"".join(
        (b"." if i % 3 == 0 else b"") + bytes([65 + i % 26]) * 997 + b"\r\n" for i in range(2000))
    attach = b"\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    tail = b"\r\n--b--\r\n"
    room = size - len(head) - len(text) - len(attach) - len(tail)
    raw = base64.encodebytes(os.urandom(room * 3 // 4 * 76 // 78)).replace(b"\n", b"\r\n")
    return head + text + attach + raw[:room] + tail


def send(port, body, n, failures):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=600) as s:
            s.ehlo("client.remote.test")
            s.sendmail("sender@remote.test", ["bench@bench.test"], body)
    except Exception as e:  # reported as a count; the benchmark prints it
        print(f"client {n}: {e}", flush=True, file=sys.stderr)
        failures.append(n)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--size", type=int, default=24 << 20)
    a = p.parse_args()
    failures = []
    bodies = [message(a.size, n) for n in range(a.clients)]
    threads = [threading.Thread(target=send, args=(a.port, body, n, failures))
               for n, body in enumerate(bodies)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"seconds": round(time.time() - start, 2), "failures": len(failures)}))


if __name__ == "__main__":
    main()
