"""Fires N logins at once from one source address (all threads wait on a barrier after connecting)
and prints a JSON object counting the outcomes. Optionally one more thread logs in with the real
password from another address at the same moment and reports how long that took.

usage: flood.py PROTO PORT SOURCE N USER [REAL_SOURCE REAL_PASSWORD]
PROTO: imap (implicit TLS), smtp (submissions, AUTH PLAIN) or admin (POST /login over HTTP)."""
import base64
import http.client
import re
import json
import smtplib
import socket
import ssl
import sys
import threading
import time
import urllib.parse

proto, port, src, n, user = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
real = sys.argv[6:8] if len(sys.argv) >= 8 else None
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
barrier = threading.Barrier(n + (1 if real else 0), timeout=120)
lock = threading.Lock()
results = {}
real_result = {}


def imap(source, password):
    s = socket.create_connection(("127.0.0.1", port), timeout=120, source_address=(source, 0))
    t = ctx.wrap_socket(s)
    f = t.makefile("rb")
    f.readline()
    barrier.wait()
    started = time.monotonic()
    t.sendall(f'a LOGIN "{user}" "{password}"\r\n'.encode())
    line = ""
    while not line.startswith("a "):
        line = f.readline().decode()
        if not line:
            return "closed", started
    t.close()
    if line.startswith("a OK"):
        return "ok", started
    if "[UNAVAILABLE]" in line:
        return "throttled", started
    if "[AUTHENTICATIONFAILED]" in line:
        return "failed", started
    return line.strip(), started


def smtp(source, password):
    c = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=120, source_address=(source, 0))
    c.ehlo("flood.test")
    barrier.wait()
    started = time.monotonic()
    plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    try:
        code = c.docmd("AUTH", "PLAIN " + plain)[0]
    finally:
        c.close()
    return {235: "ok", 535: "failed", 454: "throttled"}.get(code, str(code)), started


def admin(source, password):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=(source, 0))
    c.connect()
    # The login form's pre-login CSRF token: a cookie and the same value in a hidden field.
    c.request("GET", "/login")
    r = c.getresponse()
    page = r.read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    barrier.wait()
    started = time.monotonic()
    body = urllib.parse.urlencode({"csrf": token, "username": user, "password": password})
    c.request("POST", "/login", body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"postern_login={token}",
    })
    status = c.getresponse().status
    c.close()
    return {303: "ok", 400: "failed", 429: "throttled"}.get(status, str(status)), started


login = {"imap": imap, "smtp": smtp, "admin": admin}[proto]


def guess(i):
    try:
        outcome, _ = login(src, f"wrong-guess-{i}")
    except Exception as e:  # reported, and the test fails on it
        outcome = "error: " + repr(e)
    with lock:
        results[outcome] = results.get(outcome, 0) + 1


def real_login():
    try:
        outcome, started = login(real[0], real[1])
        real_result["outcome"] = outcome
        real_result["secs"] = round(time.monotonic() - started, 3)
    except Exception as e:
        real_result["outcome"] = "error: " + repr(e)


threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
if real:
    threads.append(threading.Thread(target=real_login))
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"guesses": results, "real": real_result}))
