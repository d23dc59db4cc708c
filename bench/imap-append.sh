#!/usr/bin/env bash
# Large-APPEND memory benchmark: CLIENTS connections (one user each) APPEND a SIZE-byte message
# (default 8 x 40 MiB, a base64 attachment of random bytes) at the same moment, against Postern
# (release build, SQLite) and Dovecot (Debian dovecot-imapd, Maildir, installed for the benchmark
# only, on an unprivileged loopback port). Prints wall time and peak memory side by side: the
# sampled peak RSS/PSS (every 0.1 s) and the kernel's peak RSS (VmHWM, exact for Postern's one
# process). BEFORE_BIN=/path/to/postern adds a run of another build (e.g. one that buffered APPEND
# literals in memory) for comparison.
#
#   bash bench/imap-append.sh
#   BEFORE_BIN=/tmp/postern-before CLIENTS=8 SIZE=41943040 bash bench/imap-append.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CLIENTS=${CLIENTS:-8}
SIZE=${SIZE:-41943040}
DOVECOT_PORT=${DOVECOT_PORT:-10143}
TARGET=${CARGO_TARGET_DIR:-target}
bench_workdir append

users=""
for i in $(seq 1 "$CLIENTS"); do users="${users:+$users,}bench$i@bench.test"; done

result_line() { # name load-json mem-json
    python3 - "$@" <<'PY'
import json, sys
name, load, mem = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{name:10} {load['seconds']:6.1f} s {load['mib_per_s']:7.1f} MiB/s  "
      f"peak RSS {mem['rss_kib']/1024:7.1f} MiB  peak PSS {mem['pss_kib']/1024:7.1f} MiB  "
      f"VmHWM {mem['hwm_kib']/1024:7.1f} MiB  peak anon {mem['anon_kib']/1024:6.1f} MiB  "
      f"peak file {mem['file_kib']/1024:6.1f} MiB ({mem['processes']} processes) failures {load['failures']}")
PY
}

# run_postern LABEL BINARY: a fresh Postern (SQLite) under the burst; sets <LABEL>_load/_mem.
run_postern() {
    local label=$1 bin=$2
    local dir="$work/$label"
    mkdir -p "$dir/data"
    cat > "$dir/postern.toml" <<TOML
data_dir = "$dir/data"
log_level = "warn"
hostname = "bench.test"
[listeners]
imap = ["127.0.0.1:0"]
[imap]
login_disabled_without_tls = false
TOML
    "$bin" --config "$dir/postern.toml" domain add bench.test >/dev/null
    for u in ${users//,/ }; do
        echo password | "$bin" --config "$dir/postern.toml" user add "$u" >/dev/null
    done
    "$bin" --config "$dir/postern.toml" serve 2>"$dir/log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do [ -f "$dir/data/listeners.json" ] && break; sleep 0.1; done
    local port
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listeners"]["imap"][0].rsplit(":",1)[1])' "$dir/data/listeners.json")
    python3 bench/imap-rss.py "$pid" --watch "$dir/mem.json" 0.1 &
    pids+=("$!")
    printf -v "${label}_load" '%s' "$(python3 bench/imap-append.py --port "$port" --users "$users" --size "$SIZE")"
    sleep 0.5
    printf -v "${label}_mem" '%s' "$(cat "$dir/mem.json")"
    kill -TERM "$pid"; wait "$pid" || true
}

cargo build --release --quiet --bin postern
run_postern postern "$TARGET/release/postern"
if [ -n "${BEFORE_BIN:-}" ]; then
    run_postern before "$BEFORE_BIN"
fi

# ---- Dovecot -------------------------------------------------------------------------------------
install_dovecot
d="$work/dovecot"
dovecot_config "$d" "$DOVECOT_PORT"
hash=$(doveadm pw -s ARGON2ID -p password)
for u in ${users//,/ }; do echo "$u:$hash" >> "$d/passwd"; done
dovecot -F -c "$d/dovecot.conf" &
dovecot_pid=$!
pids+=("$dovecot_pid")
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$DOVECOT_PORT") 2>/dev/null && break; sleep 0.1; done
python3 bench/imap-rss.py "$dovecot_pid" --watch "$work/dovecot-mem.json" 0.1 &
pids+=("$!")
dovecot_load=$(python3 bench/imap-append.py --port "$DOVECOT_PORT" --users "$users" --size "$SIZE")
sleep 0.5
dovecot_mem=$(cat "$work/dovecot-mem.json")
kill -TERM "$dovecot_pid"; wait "$dovecot_pid" || true

echo "Large APPEND benchmark: $CLIENTS clients x $((SIZE / 1048576)) MiB at once, $(nproc) cores"
result_line Postern "$postern_load" "$postern_mem"
if [ -n "${BEFORE_BIN:-}" ]; then
    result_line before "$before_load" "$before_mem"
fi
result_line Dovecot "$dovecot_load" "$dovecot_mem"
echo "VmHWM: sum of each process's own peak RSS (Postern is one process, so this is its exact peak)"
