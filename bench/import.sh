#!/usr/bin/env bash
# Import speed: `postern import mailu` of a generated Mailu installation (USERS users, each a
# Maildir of MESSAGES messages of about SIZE bytes spread over INBOX and two folders, with flags),
# into a fresh Postern on SQLite and on PostgreSQL (release build). Prints messages per second
# and MiB per second for each database, then the time of a second run (which imports nothing).
#
#   bash bench/import.sh
#   USERS=4 MESSAGES=5000 SIZE=20000 bash bench/import.sh
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-2}
MESSAGES=${MESSAGES:-2000}
SIZE=${SIZE:-4096}
DATABASE_URL=${DATABASE_URL:-postgres://postern:postern@127.0.0.1:5432/postern_test}
TARGET=${CARGO_TARGET_DIR:-target}
. bench/lib.sh
bench_workdir import
pg_db=""
drop_pg() {
    if [ -n "$pg_db" ]; then psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true; fi
    bench_cleanup
}
trap drop_pg EXIT

cargo build -q --release --bin postern
postern="$TARGET/release/postern"

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
pg_db="postern_import_bench_$$"
psql -q "$DATABASE_URL" -c "CREATE DATABASE $pg_db" >/dev/null
run_import postgres "${DATABASE_URL%/*}/$pg_db"
