"""Junk filter benchmark driver (run by bench/junk.sh): generates a deterministic corpus, delivers
the training half over SMTP, trains through IMAP like a mail client (UID MOVE of the spam into
Junk, STORE +FLAGS $NotJunk on the ham), delivers the test half and counts where each test message
landed; the scores logged at delivery give precision and recall at other thresholds too.

The corpus is synthetic (seeded, so every run is the same): themed spam (pharmacy, loans, crypto,
prizes, phishing, dating, marketing) and ham (work, family, code review, travel, receipts,
newsletters) over a shared English vocabulary (55 % of the words), with a share (NOISE) of each
message's words from the other class and deliberately close pairs (phishing vs receipts, marketing
vs newsletters).
"""
import imaplib
import json
import random
import re
import smtplib
import sys
import time

smtp_port, imap_port, log_path = sys.argv[1], sys.argv[2], sys.argv[3]
n_train, n_test, noise = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
USER, PASSWORD = "bench@bench.test", "password"
rng = random.Random(15)

COMMON = """the be to of and a in that have it for not on with he as you do at this but his by from they
we say her she or an will my one all would there their what so up out if about who get which go me
when make can like time no just him know take people into year your good some could them see other
than then now look only come its over think also back after use two how our work first well way even
new want because any these give day most us is are was were been has had did said each tell does set
three must here why ask went men read need land different home move try kind hand picture again
change off play spell air away animal house point page letter mother answer found study still learn
should world high every near add food between own below country plant last school father keep tree
never start city earth eye light thought head under story saw left few while along might close
something seem next hard open example begin life always those both paper together got group often
run important until children side feet car mile night walk white sea began grow took river four
carry state once book hear stop without second later miss idea enough eat face watch far really
almost let above girl sometimes mountain cut young talk soon list song being leave family""".split()

SPAM = {
    "pharmacy": "pills pharmacy prescription cheap viagra cialis dosage tablets generic discount meds order online doctor pain relief".split(),
    "loans": "loan credit approved instant cash debt consolidation rate mortgage refinance lenders bad score apply fast money".split(),
    "crypto": "bitcoin crypto investment profit returns trading platform wallet guaranteed double opportunity token exchange earn passive income".split(),
    "prize": "winner congratulations prize lottery claim selected million award jackpot lucky draw reward gift card free bonus".split(),
    "phishing": "account verify suspended password login security unusual activity confirm update billing bank locked click immediately within".split(),
    "dating": "singles lonely meet tonight dating hot profile photos chat women area private match flirt secret discreet".split(),
    "marketing": "offer limited exclusive deal sale percent off buy now subscribe unsubscribe promotion special act today customers".split(),
}
HAM = {
    "work": "meeting agenda project deadline schedule budget report quarterly team review notes slides client proposal call minutes".split(),
    "family": "dinner weekend kids birthday grandma visit holiday photos garden sunday recipe school pickup soccer party cousins".split(),
    "code": "patch commit build branch merge tests review pull request bug fix release compiler crash stack trace regression".split(),
    "travel": "flight hotel itinerary booking train station airport luggage reservation checkin boarding gate passport visa trip".split(),
    "receipts": "order shipped invoice receipt payment delivery tracking package account confirm billing refund purchase total thanks".split(),
    "newsletter": "newsletter issue articles community event conference talks subscribe unsubscribe update monthly highlights readers offer members".split(),
}
SPAM_DOMAINS = [f"{a}{b}.{t}" for a in ("best", "top", "mega", "secure", "promo", "win") for b in ("deals", "pharm", "cash", "mail", "net") for t in ("test", "example")]
HAM_PEOPLE = [f"{n}@{d}" for n in ("anna", "ben", "chris", "dana", "eli", "fay", "gus") for d in ("work.test", "family.test", "project.test")]
HAM_SERVICES = ["orders@shop.test", "news@community.test", "noreply@airline.test", "ci@project.test"]


def words(theme, other_themes, n):
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.55:
            out.append(rng.choice(COMMON))
        elif r < 1.0 - noise:
            out.append(rng.choice(theme))
        else:
            out.append(rng.choice(rng.choice(other_themes)))
    return out


def message(spam, i, corpus_name):
    themes, others = (SPAM, HAM) if spam else (HAM, SPAM)
    name = rng.choice(sorted(themes))
    theme = themes[name]
    other = list(others.values())
    body = words(theme, other, rng.randint(40, 120))
    subject = " ".join(words(theme, other, rng.randint(3, 6)))
    if spam:
        sender = f"{rng.choice(['info', 'support', 'sales', 'admin', 'news'])}{rng.randint(1, 999)}@{rng.choice(SPAM_DOMAINS)}"
        link = f"http://{rng.choice(SPAM_DOMAINS)}/{rng.randint(1, 99999)}"
        html = rng.random() < 0.5
    else:
        sender = rng.choice(HAM_SERVICES) if name in ("receipts", "newsletter", "travel") else rng.choice(HAM_PEOPLE)
        link = f"https://{sender.split('@')[1]}/{name}" if rng.random() < 0.4 else ""
        html = rng.random() < 0.15
    text = " ".join(body)
    tag = f"bench-{corpus_name}-{'s' if spam else 'h'}{i}"
    if html:
        content = "Content-Type: text/html; charset=utf-8\r\n\r\n" + f"<html><body><p>{text}</p><a href=\"{link}\">{rng.choice(theme)}</a></body></html>\r\n"
    else:
        content = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + f"{text}\r\n{link}\r\n"
    raw = f"From: <{sender}>\r\nTo: {USER}\r\nSubject: {subject}\r\nX-Bench-Id: {tag}\r\nMIME-Version: 1.0\r\n{content}"
    return tag, sender, raw


def corpus(n, name):
    out = []
    for i in range(n):
        out.append((True, *message(True, i, name)))
        out.append((False, *message(False, i, name)))
    rng.shuffle(out)
    return out


def deliver(messages):
    s = smtplib.SMTP("127.0.0.1", int(smtp_port), timeout=60)
    s.ehlo("bench.client.test")
    for n, (_, _, sender, raw) in enumerate(messages):
        if n and n % 50 == 0:
            s.quit()
            s = smtplib.SMTP("127.0.0.1", int(smtp_port), timeout=60)
            s.ehlo("bench.client.test")
        s.sendmail(sender, [USER], raw.encode())
    s.quit()


def imap():
    m = imaplib.IMAP4("127.0.0.1", int(imap_port))
    m.login(USER, PASSWORD)
    return m


def uids_by_tag(m):
    """Bench id of every message in the selected mailbox -> UID."""
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (X-BENCH-ID)])")
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+)", item[0]).group(1).decode()
            tag = re.search(rb"bench-\w+-[sh]\d+", item[1])
            if tag:
                out[tag.group(0).decode()] = uid
    return out


train = corpus(n_train, "train")
test = corpus(n_test, "test")
t0 = time.time()
deliver(train)
t_deliver = time.time() - t0
m = imap()
m.select("INBOX")
tags = uids_by_tag(m)
spam_uids = [tags[t] for s, t, _, _ in train if s]
ham_uids = [tags[t] for s, t, _, _ in train if not s]
t0 = time.time()
for i in range(0, len(spam_uids), 25):
    assert m.uid("MOVE", ",".join(spam_uids[i:i + 25]), "Junk")[0] == "OK"
for i in range(0, len(ham_uids), 25):
    assert m.uid("STORE", ",".join(ham_uids[i:i + 25]), "+FLAGS", "($NotJunk)")[0] == "OK"
t_train = time.time() - t0
m.logout()

with open(log_path) as f:
    scores_before = sum(1 for line in f if "junk filter score" in line)
t0 = time.time()
deliver(test)
t_test = time.time() - t0
m = imap()
m.select("Junk", readonly=True)
in_junk = set(uids_by_tag(m))
m.logout()

with open(log_path) as f:
    scores = [float(re.search(r'score="([0-9.]+)"', line).group(1)) for line in f if "junk filter score" in line][scores_before:]
assert len(scores) == len(test), (len(scores), len(test))


def metrics(predicted):
    tp = sum(1 for (s, *_), p in zip(test, predicted) if s and p)
    fp = sum(1 for (s, *_), p in zip(test, predicted) if not s and p)
    fn = sum(1 for (s, *_), p in zip(test, predicted) if s and not p)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


result = {
    "train_messages": len(train),
    "noise": noise,
    "test_messages": len(test),
    "filed_into_junk_at_0.95": metrics([t in in_junk for _, t, _, _ in test]),
    "by_threshold": {str(th): metrics([sc >= th for sc in scores]) for th in (0.5, 0.8, 0.9, 0.95, 0.99)},
    "seconds": {"deliver_train": round(t_deliver, 1), "imap_training": round(t_train, 1), "deliver_test": round(t_test, 1)},
    "training_ms_per_message": round(1000 * t_train / len(train), 1),
}
print(json.dumps(result, indent=1))
