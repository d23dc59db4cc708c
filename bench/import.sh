#!/usr/bin/env bash
# Import speed. SOURCE=maildir (the default): one user's generated Maildir of N messages (default
# 100000) of realistic sizes (log-normal around 4 KB, 2% with a 50-500 KB base64 attachment) in
# INBOX and two folders with flags, imported with `postern import maildir` into a fresh Postern on
# SQLite and on PostgreSQL, and with `doveadm import` into a fresh private Dovecot (Maildir, its own
# config and base directory, nothing else of the system's Dovecot used), in ROUNDS interleaved
# rounds (default 1); prints messages/s and MiB/s per run and min/median/max per target.
# SOURCE=mailu: `postern import mailu` of a generated Mailu installation (USERS users, each with
# MESSAGES messages of about SIZE bytes) on both databases, plus the time of a second run.
# The release build of the binary (BIN= another one).
#
#   bash bench/import.sh
#   N=20000 ROUNDS=3 bash bench/import.sh
#   SOURCE=mailu USERS=4 MESSAGES=5000 SIZE=20000 bash bench/import.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=${SOURCE:-maildir}
N=${N:-100000}
ROUNDS=${ROUNDS:-1}
USERS=${USERS:-2}
MESSAGES=${MESSAGES:-2000}
SIZE=${SIZE:-4096}
DATABASE_URL=${DATABASE_URL:-postgres://postern:postern@127.0.0.1:5432/postern_test}
TARGET=${CARGO_TARGET_DIR:-target}
. bench/lib.sh
bench_workdir import
pg_dbs=()
drop_pg() {
    for db in "${pg_dbs[@]}"; do
        psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    bench_cleanup
}
trap drop_pg EXIT

postern=${BIN:-$TARGET/release/postern}
[ -n "${BIN:-}" ] || cargo build -q --release --bin postern
base=${DATABASE_URL%%\?*}

# fresh_postern DIR LABEL: a fresh Postern configuration in DIR on SQLite or a new PostgreSQL
# database; the address bench@bench.test exists.
fresh_postern() {
    local dir=$1 label=$2 url
    rm -rf "$dir"; mkdir -p "$dir/data"
    if [ "$label" = sqlite ]; then
        url="sqlite://$dir/data/postern.db"
    else
        local db="postern_bench_import_$$_${#pg_dbs[@]}"
        pg_dbs+=("$db")
        psql -q "$DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
        url="${base%/*}/$db"
    fi
    printf 'data_dir = "%s"\ndatabase_url = "%s"\nlog_level = "warn"\nhostname = "bench.test"\n' \
        "$dir/data" "$url" > "$dir/postern.toml"
}

# seconds START: the seconds since START (a `date +%s.%N`), to 0.01.
seconds() { python3 -c "import time; print(f'{time.time() - $1:.2f}')"; }

if [ "$SOURCE" = maildir ]; then
    src="$work/Maildir"
    python3 - "$src" "$N" <<'PY'
import base64, os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
words = ("the of and to in is you that it he was for on are as with his they at be this have from "
         "or one had by word but not what all were we when your can said there use an each which "
         "meeting report invoice project schedule Grüße naïve café").split()
folders = ["", ".Sent", ".Archive"]
for folder in folders:
    for sub in ["cur", "new", "tmp"]:
        os.makedirs(os.path.join(root, folder, sub), exist_ok=True)
for i in range(n):
    folder = folders[0 if i % 10 < 7 else 1 if i % 10 < 9 else 2]
    flags = ["S", "S", "S", "FS", "RS", ""][rnd.randrange(6)]
    size = min(int(rnd.lognormvariate(8.3, 1.0)), 200_000)
    head = (f"Return-Path: <sender{i % 997}@remote.test>\nReceived: from mx.remote.test by mail.bench.test "
            f"with ESMTPS id {i:08x}; Mon, 7 Dec 2026 03:00:00 +0000\nFrom: Sender {i % 997} "
            f"<sender{i % 997}@remote.test>\nTo: bench@bench.test\nSubject: message {i} "
            f"{rnd.choice(words)} {rnd.choice(words)}\nDate: Mon, 7 Dec 2026 03:00:00 +0000\n"
            f"Message-ID: <{i}@remote.test>\nMIME-Version: 1.0\n")
    lines = []
    total = 0
    while total < size:
        line = " ".join(rnd.choice(words) for _ in range(12))
        lines.append(line)
        total += len(line.encode()) + 1
    text = "\n".join(lines) + "\n"
    if rnd.random() < 0.02:
        blob = base64.encodebytes(os.urandom(rnd.randrange(50_000, 500_000))).decode()
        msg = (head + 'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain; '
               'charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n' + text + '--b\nContent-Type: '
               'application/pdf\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; '
               'filename="a.pdf"\n\n' + blob + "--b--\n")
    else:
        msg = head + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + text
    name = f"{1700000000 + i}.M{i}P1.bench:2,{flags}"
    path = os.path.join(root, folder, "cur", name)
    with open(path, "w") as f:
        f.write(msg)
    os.utime(path, (1700000000 + i, 1700000000 + i))
PY
    bytes=$(du -sb "$src" | cut -f1)
    mib=$(python3 -c "print(f'{$bytes / 2**20:.1f}')")
    echo "source: $N messages, $mib MiB in $src (binary $postern; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"

    d="$work/dovecot"
    dovecot_config "$d" "${DOVECOT_PORT:-10143}"
    echo "bench@bench.test:{PLAIN}x" > "$d/passwd"
    results="$work/results"
    : > "$results"
    record() { # TARGET SECONDS
        python3 -c "
n, secs, size = $N, $2, $bytes
print(f'{\"$1\":10} {n} messages ({size / 2**20:.1f} MiB) in {secs:7.1f} s: {n / secs:6.0f} messages/s {size / 2**20 / secs:6.1f} MiB/s')"
        echo "$1 $2" >> "$results"
    }
    for round in $(seq "$ROUNDS"); do
        for label in sqlite postgres; do
            dir="$work/postern-$label"
            fresh_postern "$dir" "$label"
            "$postern" --config "$dir/postern.toml" domain add bench.test >/dev/null
            echo secret | "$postern" --config "$dir/postern.toml" user add bench@bench.test >/dev/null
            start=$(date +%s.%N)
            "$postern" --config "$dir/postern.toml" import maildir bench@bench.test "$src" > "$dir/out"
            secs=$(seconds "$start")
            grep -q "imported $N message(s)" "$dir/out" || { tail -3 "$dir/out"; exit 1; }
            record "$label" "$secs"
            [ "$label" = postgres ] && psql -q "$DATABASE_URL" -c "DROP DATABASE ${pg_dbs[-1]} WITH (FORCE)" >/dev/null
            rm -rf "$dir"
        done
        # Dovecot keeps its index of the source (which it only reads) in srcmeta.
        rm -rf "$d/mail" "$d/run" "$d/state" "$d/srcmeta" "$d/log"
        mkdir -p "$d/mail" "$d/run" "$d/state" "$d/srcmeta"; chown nobody:nogroup "$d/mail" "$d/srcmeta"
        dovecot -F -c "$d/dovecot.conf" &
        dpid=$!; pids+=("$dpid")
        for _ in $(seq 100); do [ -S "$d/run/auth-userdb" ] && break; sleep 0.1; done
        chmod -R a+rX "$src"
        start=$(date +%s.%N)
        doveadm -c "$d/dovecot.conf" import -u bench@bench.test \
            "maildir:$src:INDEX=$d/srcmeta:CONTROL=$d/srcmeta" "" all
        ! grep -q Error "$d/log" || { grep Error "$d/log" | head -3; exit 1; }
        secs=$(seconds "$start")
        got=$(doveadm -c "$d/dovecot.conf" mailbox status -u bench@bench.test -t messages '*' | awk '{print $1}' | cut -d= -f2)
        [ "$got" = "$N" ] || { echo "doveadm imported $got of $N"; exit 1; }
        record dovecot "$secs"
        kill -TERM "$dpid"; wait "$dpid" || true
    done
    echo "per target over $ROUNDS round(s): min / median / max messages/s"
    python3 - "$results" "$N" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    t, s = line.split()
    runs.setdefault(t, []).append(int(sys.argv[2]) / float(s))
for t, r in runs.items():
    print(f"{t:10} {min(r):6.0f} / {statistics.median(r):6.0f} / {max(r):6.0f}")
PY
    exit 0
fi
# ---- the Mailu installation -----------------------------------------------------------------------
mailu="$work/mailu"
mkdir -p "$mailu/data" "$mailu/dkim"
python3 - "$mailu" "$USERS" "$MESSAGES" "$SIZE" <<'PY'
import os, random, sqlite3, sys
sys.path.insert(0, "tests/fixtures")
import mailu as fixture
root, users, messages, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
db = sqlite3.connect(os.path.join(root, "data/main.db"))
db.executescript(fixture.SCHEMA)
db.execute("INSERT INTO domain VALUES ('2024-01-01',NULL,'','bench.test',-1,-1,0,0)")
rnd = random.Random(1)
line = "x" * 70 + "\n"
for u in range(users):
    local = f"user{u}"
    fixture.user(db, local, "bench.test", quota=0, password=fixture.HASHES["dave"])
    home = os.path.join(root, "mail", f"{local}@bench.test")
    for folder in ["", ".Sent", ".Archive"]:
        for sub in ["cur", "new", "tmp"]:
            os.makedirs(os.path.join(home, folder, sub), exist_ok=True)
    for i in range(messages):
        folder = ["", "", ".Sent", ".Archive"][i % 4]
        flags = ["S", "FS", "RS", ""][rnd.randrange(4)]
        body = f"From: a@remote.test\nTo: {local}@bench.test\nSubject: message {i}\nMessage-ID: <{u}.{i}@bench>\n\n"
        body += line * max(1, (size - len(body)) // len(line))
        name = f"{1700000000 + i}.M{i}P{u}.bench:2,{flags}"
        with open(os.path.join(home, folder, "cur", name), "w") as f:
            f.write(body)
db.commit()
PY
bytes=$(du -sb "$mailu/mail" | cut -f1)
total=$((USERS * MESSAGES))

# run_import LABEL DATABASE_URL: imports into a fresh Postern; prints one result line.
run_import() {
    local label=$1 url=$2 dir="$work/$1"
    mkdir -p "$dir/data"
    printf 'data_dir = "%s"\ndatabase_url = "%s"\nlog_level = "warn"\nhostname = "bench.test"\n' \
        "$dir/data" "$url" > "$dir/postern.toml"
    local start end again
    start=$(date +%s.%N)
    "$postern" --config "$dir/postern.toml" import mailu "$mailu" > "$dir/out"
    end=$(date +%s.%N)
    grep -q "imported $total message(s)" "$dir/out" || { tail -3 "$dir/out"; exit 1; }
    "$postern" --config "$dir/postern.toml" import mailu "$mailu" > "$dir/out2"
    again=$(python3 -c "import time; print(round(time.time() - $end, 2))")
    grep -q "imported 0 message(s)" "$dir/out2" || { tail -3 "$dir/out2"; exit 1; }
    python3 - "$label" "$start" "$end" "$total" "$bytes" "$again" <<'PY'
import sys
label, start, end, n, size, again = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
secs = end - start
print(f"{label:10} {n} messages ({size / 2**20:.1f} MiB) in {secs:6.1f} s: {n / secs:7.0f} messages/s "
      f"{size / 2**20 / secs:6.1f} MiB/s; second run (nothing to import) {again} s")
PY
}
echo "postern import mailu: $USERS users x $MESSAGES messages of ~$SIZE bytes"
run_import sqlite "sqlite://$work/sqlite/data/postern.db"
pg_db="postern_import_bench_$$"; pg_dbs+=("$pg_db")
psql -q "$DATABASE_URL" -c "CREATE DATABASE $pg_db" >/dev/null
run_import postgres "${DATABASE_URL%/*}/$pg_db"
