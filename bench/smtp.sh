#!/usr/bin/env bash
# SMTP benchmark: Postfix's smtp-source sends N messages of SIZE bytes over M parallel connections
# (each connection reused, -d) to one local recipient on loopback, against
#   - Postern (release build) on SQLite,
#   - Postern on PostgreSQL (a fresh database next to $DATABASE_URL, dropped afterwards),
#   - Postfix (Debian package, installed for the benchmark only, its service never started by
#     apt; run on 127.0.0.1:$POSTFIX_PORT delivering to a Maildir, stopped afterwards).
# Prints messages/s and peak memory (RSS and PSS summed over the server's processes) side by side.
# Postern checks SPF, DKIM and DMARC of every message (Postfix here does none of that) and answers
# 250 only after the message is committed to the recipient's mailbox; Postfix
# answers 250 once the message is in its queue, so for Postfix the time until its queue is empty
# (the mailbox delivery done) is shown too. Postern indexes a delivered message's body text for
# SEARCH after its 250, in the background: '(indexed)' is the time until that was done too.
#
# Then bench/smtp-large.sh shows Postern's memory under 4 parallel 24 MiB messages (LARGE=0 skips it).
# DATABASE_URL names a PostgreSQL role that may CREATE DATABASE (default: the test server on 5432); give
# the benchmark a cluster of its own (e.g. pg_createcluster 15 bench --port 5433) so that test suites
# running on the same server do not skew its figures.
# POSTERN_BIN=/path/to/postern measures that build instead of a fresh release build (to compare
# builds); POSTFIX=0 skips Postfix.
#
#   bash bench/smtp.sh                 # N=5000 M=10 SIZE=4096
#   N=20000 M=20 bash bench/smtp.sh
#   POSTERN_BIN=/tmp/postern-before POSTFIX=0 LARGE=0 bash bench/smtp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-5000}
M=${M:-10}
SIZE=${SIZE:-4096}
POSTFIX_PORT=${POSTFIX_PORT:-10025}
DATABASE_URL=${DATABASE_URL:-postgres://postern:postern@127.0.0.1:5432/postern_test}
TARGET=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d /tmp/postern-smtp-bench.XXXXXX)
chmod 755 "$work"
pids=()
pg_db=""
postfix_started=0
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$postfix_started" = 1 ]; then postfix stop >/dev/null 2>&1 || true; fi
    if [ -n "$pg_db" ]; then psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# ---- Postfix package (for smtp-source, and as the comparison) -------------------------------------
if ! command -v smtp-source >/dev/null || ! command -v postfix >/dev/null; then
    echo "installing postfix for the benchmark (its service is not started)" >&2
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
    [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# run_source PORT: sends the load; prints the elapsed seconds.
run_source() {
    local start end
    start=$(date +%s.%N)
    smtp-source -d -s "$M" -m "$N" -l "$SIZE" -f sender@remote.test -t bench@bench.test "127.0.0.1:$1"
    end=$(date +%s.%N)
    python3 -c "print(round($end - $start, 3))"
}

result_line() { # name seconds mem-json [note]
    python3 - "$N" "$@" <<'PY'
import json, sys
n, name, secs, mem = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4])
note = sys.argv[5] if len(sys.argv) > 5 else ""
print(f"{name:17} {n / secs:9.0f} msg/s ({secs:6.2f} s)  peak RSS {mem['rss_kib']/1024:7.1f} MiB  "
      f"peak PSS {mem['pss_kib']/1024:7.1f} MiB ({mem['processes']} processes) {note}")
PY
}

# ---- Postern -------------------------------------------------------------------------------------
if [ -z "${POSTERN_BIN:-}" ]; then
    cargo build --release --quiet --bin postern
    POSTERN_BIN="$TARGET/release/postern"
fi
postern=$POSTERN_BIN

# pending_texts DATABASE_URL: how many delivered messages wait for their body text index (0 for a
# build without that table).
pending_texts() {
    local sql="SELECT count(*) FROM blob_text_pending"
    case $1 in
        sqlite://*) python3 -c 'import sqlite3, sys
try: print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute(sys.argv[2]).fetchone()[0])
except sqlite3.Error: print(0)' "${1#sqlite://}" "$sql" ;;
        *) psql -qtA "$1" -c "$sql" 2>/dev/null || echo 0 ;;
    esac
}

# run_postern LABEL DATABASE_URL: a fresh Postern under the load; sets <LABEL>_secs/_indexed/_mem/_used.
run_postern() {
    local label=$1 url=$2
    local dir="$work/$label"
    postern_mx_config "$postern" "$dir" "$url"
    "$postern" --config "$dir/postern.toml" serve 2>"$dir/log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do [ -f "$dir/data/listeners.json" ] && break; sleep 0.1; done
    local port
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listeners"]["smtp"][0].rsplit(":",1)[1])' "$dir/data/listeners.json")
    python3 bench/imap-rss.py "$pid" --watch "$dir/mem.json" &
    pids+=("$!")
    local start
    start=$(date +%s.%N)
    printf -v "${label}_secs" '%s' "$(run_source "$port")"
    until [ "$(pending_texts "$url")" = 0 ]; do sleep 0.2; done
    printf -v "${label}_indexed" '%s' "$(python3 -c "print(round($(date +%s.%N) - $start, 3))")"
    kill -TERM "$pid"; wait "$pid" || true
    sleep 1.5
    printf -v "${label}_mem" '%s' "$(cat "$dir/mem.json")"
    printf -v "${label}_used" '%s' "$("$postern" --config "$dir/postern.toml" user list | cut -f2)"
}
run_postern sqlite "sqlite://$work/sqlite/data/postern.db"
pg_db="postern_smtp_bench_$$"
psql -q "$DATABASE_URL" -c "CREATE DATABASE $pg_db" >/dev/null
run_postern postgres "${DATABASE_URL%/*}/$pg_db"

echo "SMTP benchmark: $N messages of $SIZE bytes over $M connections (smtp-source -d), $(nproc) cores"
result_line "Postern SQLite" "$sqlite_secs" "$sqlite_mem" "(mailbox bytes: $sqlite_used)"
result_line "  (indexed)" "$sqlite_indexed" "$sqlite_mem" ""
result_line "Postern Postgres" "$postgres_secs" "$postgres_mem" "(mailbox bytes: $postgres_used)"
result_line "  (indexed)" "$postgres_indexed" "$postgres_mem" ""
if [ "${POSTFIX:-1}" = 1 ]; then
# ---- Postfix -------------------------------------------------------------------------------------
pf="$work/postfix"
mkdir -p "$pf"
id bench >/dev/null 2>&1 || useradd -m bench
rm -rf /home/bench/Maildir
[ -f /etc/postfix/main.cf ] && cp /etc/postfix/main.cf "$pf/main.cf.saved"
cp /etc/postfix/master.cf "$pf/master.cf.saved"
restore_postfix_config() {
    if [ -f "$pf/main.cf.saved" ]; then cp "$pf/main.cf.saved" /etc/postfix/main.cf; else rm -f /etc/postfix/main.cf; fi
    cp "$pf/master.cf.saved" /etc/postfix/master.cf
}
cat > /etc/postfix/main.cf <<CF
compatibility_level = 3.6
myhostname = mail.bench.test
mydestination = bench.test, localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
home_mailbox = Maildir/
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
biff = no
CF
sed -i -E "s/^smtp( +)inet( +)n( +)-( +)y/$POSTFIX_PORT inet n - n/" /etc/postfix/master.cf
newaliases 2>/dev/null || true
postfix start >/dev/null 2>&1
postfix_started=1
master_pid=$(tr -d ' ' < /var/spool/postfix/pid/master.pid)
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$POSTFIX_PORT") 2>/dev/null && break; sleep 0.1; done
python3 bench/imap-rss.py "$master_pid" --watch "$pf/mem.json" &
watcher=$!
start=$(date +%s.%N)
postfix_secs=$(run_source "$POSTFIX_PORT")
until postqueue -p 2>/dev/null | grep -q "Mail queue is empty"; do sleep 0.2; done
postfix_delivered_secs=$(python3 -c "print(round($(date +%s.%N) - $start, 3))")
postfix stop >/dev/null 2>&1
postfix_started=0
wait "$watcher" || true
postfix_mem=$(cat "$pf/mem.json")
postfix_count=$(find /home/bench/Maildir/new -type f | wc -l)
restore_postfix_config
rm -rf /home/bench/Maildir

result_line "Postfix (queued)" "$postfix_secs" "$postfix_mem" ""
result_line "Postfix (in box)" "$postfix_delivered_secs" "$postfix_mem" "($postfix_count Maildir files)"
echo "Postern's 250 means stored in the mailbox; Postfix's means queued, '(in box)' is until its queue was empty."
fi
if [ "${LARGE:-1}" = 1 ]; then
    echo
    bash bench/smtp-large.sh
fi
