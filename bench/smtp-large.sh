#!/usr/bin/env bash
# Large-message SMTP memory benchmark: CLIENTS connections each send one SIZE-byte message
# (default 4 x 24 MiB: a base64 attachment of random bytes, 998-character lines, lines starting
# with a dot) at the same moment to Postern's MX (release build; SQLite, then PostgreSQL next to
# $DATABASE_URL), which checks SPF, DKIM and DMARC of each and stores it in one mailbox. Prints,
# per run: the time, Postern's RSS when idle before the load, its peak RSS (VmHWM, the kernel's
# exact peak of its one process) and that peak above idle, and the sampled peaks (every 0.1 s) of
# anonymous memory (heap, stacks) and of mapped file pages (spool files read through a memory
# map: page cache the kernel can reclaim). BEFORE_BIN=/path/to/postern adds a run of another build
# on SQLite for comparison; POSTERN_BIN=/path/to/postern measures that build instead of a fresh release
# build. Called by bench/smtp.sh.
#
#   bash bench/smtp-large.sh
#   BEFORE_BIN=/tmp/postern-before CLIENTS=4 SIZE=25165824 bash bench/smtp-large.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CLIENTS=${CLIENTS:-4}
SIZE=${SIZE:-25165824}
DATABASE_URL=${DATABASE_URL:-postgres://postern:postern@127.0.0.1:5432/postern_test}
TARGET=${CARGO_TARGET_DIR:-target}
bench_workdir smtp-large
pg_db=""
drop_pg() {
    if [ -n "$pg_db" ]; then psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true; fi
    bench_cleanup
}
trap drop_pg EXIT

result_line() { # name load-json idle-json mem-json mailbox-usage
    python3 - "$@" <<'PY'
import json, sys
name, load, idle, mem = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
stored = sys.argv[5]
mib = lambda kib: kib / 1024
print(f"{name:17} {load['seconds']:6.1f} s  idle RSS {mib(idle['rss_kib']):6.1f} MiB  "
      f"peak RSS (VmHWM) {mib(mem['hwm_kib']):6.1f} MiB = idle + {mib(mem['hwm_kib'] - idle['rss_kib']):6.1f} MiB  "
      f"peak anon {mib(mem['anon_kib']):6.1f} MiB (idle {mib(idle['anon_kib']):5.1f})  "
      f"peak file {mib(mem['file_kib']):6.1f} MiB  failures {load['failures']}  (mailbox: {stored})")
PY
}

# run_postern LABEL BINARY DATABASE_URL: a fresh Postern under the burst; sets <LABEL>_load/_idle/_mem/_used.
run_postern() {
    local label=$1 bin=$2 url=$3
    local dir="$work/$label"
    postern_mx_config "$bin" "$dir" "$url"
    "$bin" --config "$dir/postern.toml" serve 2>"$dir/log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do [ -f "$dir/data/listeners.json" ] && break; sleep 0.1; done
    local port
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listeners"]["smtp"][0].rsplit(":",1)[1])' "$dir/data/listeners.json")
    sleep 1
    printf -v "${label}_idle" '%s' "$(python3 bench/imap-rss.py "$pid")"
    python3 bench/imap-rss.py "$pid" --watch "$dir/mem.json" 0.1 &
    pids+=("$!")
    printf -v "${label}_load" '%s' "$(python3 bench/smtp-large.py --port "$port" --clients "$CLIENTS" --size "$SIZE")"
    sleep 0.5
    printf -v "${label}_mem" '%s' "$(cat "$dir/mem.json")"
    kill -TERM "$pid"; wait "$pid" || true
    printf -v "${label}_used" '%s' "$("$bin" --config "$dir/postern.toml" user list | cut -f2)"
}

if [ -z "${POSTERN_BIN:-}" ]; then
    cargo build --release --quiet --bin postern
    POSTERN_BIN="$TARGET/release/postern"
fi
run_postern sqlite "$POSTERN_BIN" "sqlite://$work/sqlite/data/postern.db"
pg_db="postern_smtp_large_$$"
psql -q "$DATABASE_URL" -c "CREATE DATABASE $pg_db" >/dev/null
run_postern postgres "$POSTERN_BIN" "${DATABASE_URL%/*}/$pg_db"
if [ -n "${BEFORE_BIN:-}" ]; then
    run_postern before "$BEFORE_BIN" "sqlite://$work/before/data/postern.db"
fi

echo "Large-message SMTP memory: $CLIENTS clients x $((SIZE / 1048576)) MiB at once over the MX, $(nproc) cores"
result_line "Postern SQLite" "$sqlite_load" "$sqlite_idle" "$sqlite_mem" "$sqlite_used"
result_line "Postern Postgres" "$postgres_load" "$postgres_idle" "$postgres_mem" "$postgres_used"
if [ -n "${BEFORE_BIN:-}" ]; then
    result_line "before (SQLite)" "$before_load" "$before_idle" "$before_mem" "$before_used"
fi
