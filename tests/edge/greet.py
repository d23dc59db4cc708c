"""Connects from a given loopback address, optionally over TLS (certificate not checked: the
test server's is self-signed), and prints the seconds until the service's first line arrived
and that line. For HTTP it sends a GET first and prints the status line.

usage: greet.py SOURCE PORT smtp|imap|http [tls]"""
import socket
import ssl
import sys
import time

source, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tls = len(sys.argv) > 4 and sys.argv[4] == "tls"
start = time.monotonic()
sock = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0))
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock = ctx.wrap_socket(sock, server_hostname="mail.example.test")
if proto == "http":
    sock.sendall(b"GET /login HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
line = sock.makefile("rb").readline().decode(errors="replace").strip()
print(f"{time.monotonic() - start:.3f} {line}")
