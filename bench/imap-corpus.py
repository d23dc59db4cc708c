#!/usr/bin/env python3
"""Writes a Maildir (DIR/cur) of COUNT generated messages for bench/imap.sh's mailbox benchmark,
the same bytes for every server: realistic headers (Received, DKIM-Signature, RFC 2047 names and
subjects, threading headers, mailing-list headers) and a mix of bodies: plain text, quoted-printable
UTF-8, multipart/alternative with HTML, a base64 text attachment, a base64 binary attachment.
Deterministic (seeded). Prints JSON: messages, bytes, and how many messages contain the search
terms (SUBJECT_TERM in the subject, BODY_TERM in the decoded text, some of them only inside a
base64 text attachment or quoted-printable).

    imap-corpus.py DIR [COUNT]"""
import base64
import json
import os
import quopri
import random
import sys

SUBJECT_TERM = "invoice"
BODY_TERM = "zephyrquartz"

rng = random.Random(20261207)
SYLLABLES = ["ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "de", "ba", "gor", "lin", "tes", "mar", "qui", "zen"]
COMMON = ("the of and to in is that for it as with was on be at by this have from or one had not but what all were "
          "when we there can an your which their said if do will each about how up out them then she many some so "
          "these would other into has more her two like him see time could no make than first been its who now "
          "people my made over did down only way find use may water long little very after words called just where "
          "most know meeting project report team update please thanks regards schedule review budget").split()
WORDS = COMMON + ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(3000)]
WEIGHTS = [1.0 / (i + 1) for i in range(len(WORDS))]
NAMES = ["Anna Schmidt", "Jürgen Müller", "Zoë Martin", "Li Wei", "Olivia Brown", "Mateo García", "Søren Nielsen",
         "Priya Patel", "Noah Wilson", "Élodie Dubois", "Hiro Tanaka", "Fatima Khan"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "lists.example.edu", "corp.example"]


def words(n):
    return " ".join(rng.choices(WORDS, weights=WEIGHTS, k=n))


def paragraph_lines(n_lines, term=False):
    lines = [words(rng.randint(6, 14)).capitalize() + "." for _ in range(n_lines)]
    if term:
        lines[rng.randrange(len(lines))] += f" Ref {BODY_TERM.capitalize()} noted."
    return lines


def encoded_word(text):
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def address(name=None):
    name = name or rng.choice(NAMES)
    local = name.split()[0].lower().encode("ascii", "ignore").decode() or "user"
    shown = name if name.isascii() else encoded_word(name)
    return f"{shown} <{local}.{rng.randint(1, 999)}@{rng.choice(DOMAINS)}>"


def folded(value, width=76):
    out, line = [], ""
    for i in range(0, len(value), width - 1):
        out.append(value[i:i + width - 1])
    return "\r\n\t".join(out)


def header(i, subject_term):
    when = 1_600_000_000 + i * 1500 + rng.randint(0, 1000)
    import email.utils
    date = email.utils.formatdate(when, localtime=False)
    subject = words(rng.randint(3, 9))
    if subject_term:
        subject = f"{subject} {SUBJECT_TERM} {rng.randint(1000, 9999)}"
    if rng.random() < 0.25:
        subject = "Re: " + subject
    subject = encoded_word(subject + " – ü") if rng.random() < 0.15 else subject
    h = [
        f"Return-Path: <bounce-{i}@{rng.choice(DOMAINS)}>",
        f"Received: from mx{rng.randint(1, 9)}.{rng.choice(DOMAINS)} (mx.{rng.choice(DOMAINS)} [192.0.2.{rng.randint(1, 254)}])\r\n"
        f"\tby mail.bench.test with ESMTPS id {rng.getrandbits(48):012x}\r\n\tfor <bench1@bench.test>; {date}",
        f"Received: from [198.51.100.{rng.randint(1, 254)}] by mx.{rng.choice(DOMAINS)} with ESMTPSA; {date}",
        "DKIM-Signature: " + folded(f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={rng.choice(DOMAINS)}; s=s1; "
                                    f"h=from:to:subject:date:message-id; bh={base64.b64encode(rng.randbytes(32)).decode()}; "
                                    f"b={base64.b64encode(rng.randbytes(128)).decode()}"),
        f"From: {address()}",
        f"To: {address('Bench User')}" + (f", {address()}" if rng.random() < 0.3 else ""),
    ]
    if rng.random() < 0.3:
        h.append(f"Cc: {address()}, {address()}")
    h += [f"Subject: {subject}", f"Date: {date}", f"Message-ID: <{i}.{rng.getrandbits(40):010x}@{rng.choice(DOMAINS)}>"]
    if rng.random() < 0.3:
        parent = f"<{max(i - rng.randint(1, 50), 0)}.{rng.getrandbits(40):010x}@{rng.choice(DOMAINS)}>"
        h += [f"In-Reply-To: {parent}", f"References: {parent}"]
    if rng.random() < 0.2:
        h += [f"List-Id: <team{rng.randint(1, 9)}.lists.example.edu>", "List-Unsubscribe: <mailto:leave@lists.example.edu>"]
    h += [f"X-Mailer: Bench Mailer {rng.randint(1, 9)}.{rng.randint(0, 9)}", "MIME-Version: 1.0"]
    return h


def message(i, subject_term, body_term):
    h = header(i, subject_term)
    kind = rng.random()
    text = "\r\n".join(paragraph_lines(rng.randint(4, 40), term=body_term and kind < 0.7))
    if kind < 0.55:
        h.append("Content-Type: text/plain; charset=utf-8")
        body = text
    elif kind < 0.7:
        h += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"]
        body = quopri.encodestring((text + "\r\nGrüße, schöne Woche – Zoë").encode()).decode()
    elif kind < 0.85:
        h.append('Content-Type: multipart/alternative; boundary="alt"')
        html = "".join(f"<p>{line}</p>" for line in text.split("\r\n"))
        body = ("--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n--alt\r\n"
                "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                + quopri.encodestring(f"<html><body>{html}</body></html>".encode()).decode() + "\r\n--alt--")
        if body_term:
            body = body.replace(BODY_TERM.capitalize(), BODY_TERM.upper(), 1)
    else:
        h.append('Content-Type: multipart/mixed; boundary="mix"')
        if kind < 0.95:
            attachment = rng.randbytes(rng.randint(8_000, 60_000))
            part = "Content-Type: application/pdf; name=scan.pdf\r\nContent-Disposition: attachment; filename=scan.pdf"
        else:
            rows = "\r\n".join(f"{n},{words(4)},{rng.randint(1, 9999)}" for n in range(rng.randint(20, 200)))
            if body_term:
                rows += f"\r\n999,{BODY_TERM},1"
            attachment = rows.encode()
            part = "Content-Type: text/csv; charset=utf-8; name=data.csv\r\nContent-Disposition: attachment; filename=data.csv"
        b64 = base64.encodebytes(attachment).decode().replace("\n", "\r\n")
        body = ("--mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n--mix\r\n" + part
                + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 + "--mix--")
    return ("\r\n".join(h) + "\r\n\r\n" + body + "\r\n").encode()


def main():
    root, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    total = 0
    for i in range(count):
        raw = message(i, rng.random() < 0.02, rng.random() < 0.006)
        total += len(raw)
        with open(os.path.join(root, "cur", f"{1_600_000_000 + i}.M{i}P1.bench:2,S"), "wb") as f:
            f.write(raw)
    print(json.dumps({"messages": count, "bytes": total, "subject_term": SUBJECT_TERM, "body_term": BODY_TERM}))


main()
