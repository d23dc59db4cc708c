"""SMTP load for tests/backup.rs: delivers messages to the MX one after another (one connection
per ten messages) until the file named by argv[2] exists; message 5 is 1.5 MB (stored in
chunks). Prints "sent N" after every message."""
import os
import smtplib
import sys

port, stop = int(sys.argv[1]), sys.argv[2]
n = 0
while not os.path.exists(stop) and n < 5000:
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("load.test")
    for _ in range(10):
        body = "line of message %d\r\n" % n * (40000 if n == 5 else 3)
        msg = (
            "From: load@remote.test\r\nTo: alice@example.test\r\n"
            "Subject: load %d\r\nMessage-ID: <load%d@remote.test>\r\n\r\n%s" % (n, n, body)
        )
        rcpts = ["alice@example.test", "bob@example.test"] if n % 3 == 0 else ["alice@example.test"]
        s.sendmail("load@remote.test", rcpts, msg.encode())
        n += 1
        print("sent %d" % n, flush=True)
    s.quit()
