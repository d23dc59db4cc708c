#!/usr/bin/env python3
"""Hostile clients against one IMAP server (bench/edge.sh): memory above idle while strangers
announce huge literals before login, and while one address holds idle connections, plus how long
a neighbour then waits for its greeting. Prints one JSON object.

usage: edge-flood.py --pid PID --port PORT [--attempts 200] [--idle 600]"""
import argparse
import importlib.util
import json
import os
import socket
import time

spec = importlib.util.spec_from_file_location(
    "rss", os.path.join(os.path.dirname(__file__), "imap-rss.py"))
rss = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rss)

p = argparse.ArgumentParser()
p.add_argument("--pid", type=int, required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--attempts", type=int, default=200)
p.add_argument("--idle", type=int, default=600)
a = p.parse_args()


def mib(kib):
    return round(kib / 1024, 1)


def connect(source):
    s = socket.create_connection(("127.0.0.1", a.port), timeout=20, source_address=(source, 0))
    return s


def first_line(s):
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = s.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").split("\r\n")[0]


time.sleep(0.5)
idle_kib = rss.sample(a.pid)["rss_kib"]
result = {"idle_rss_mib": mib(idle_kib)}

# 1. Strangers (10 per address, 127.0.1.x) announce 40 MiB synchronizing literals, then 2 GiB
#    non-synchronizing ones, and keep their connections open while memory is read.
replies = {}
held = []
for i in range(a.attempts):
    source = f"127.0.1.{i // 10 + 1}"
    try:
        s = connect(source)
    except OSError:
        replies["connect failed"] = replies.get("connect failed", 0) + 1
        continue
    first_line(s)
    literal = b"a LOGIN {41943040}\r\n" if i % 2 == 0 else b"a LOGIN {2147483648+}\r\n" + b"x" * 65536
    try:
        s.sendall(literal)
        reply = first_line(s)
    except OSError as e:
        reply = type(e).__name__
    key = " ".join(reply.split()[:3]) or "closed"
    replies[key] = replies.get(key, 0) + 1
    held.append(s)
time.sleep(1)
result["literal_replies"] = replies
result["literal_rss_above_idle_mib"] = mib(rss.sample(a.pid)["rss_kib"] - idle_kib)
for s in held:
    s.close()

# 2. One address opens many idle connections; a neighbour then connects.
held = []
for _ in range(a.idle):
    try:
        held.append(connect("127.0.0.20"))
    except OSError:
        break
time.sleep(1)
result["idle_connections_opened"] = len(held)
result["idle_rss_above_idle_mib"] = mib(rss.sample(a.pid)["rss_kib"] - idle_kib)
start = time.monotonic()
n = connect("127.0.0.21")
greeting = first_line(n)
result["neighbour_greeting_ms"] = round((time.monotonic() - start) * 1000, 1)
result["neighbour_greeting"] = greeting[:40]
n.close()
for s in held:
    s.close()
print(json.dumps(result))
