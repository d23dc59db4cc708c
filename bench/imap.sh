#!/usr/bin/env bash
# IMAP benchmark: the same load (bench/imap-load.py: login, then SELECT / FETCH FLAGS / FETCH
# BODY[] / APPEND cycles over CONNS connections, one user each) against Postern (release build,
# SQLite) and against Dovecot (Debian dovecot-imapd, Maildir, installed for the benchmark only,
# on an unprivileged loopback port, stopped afterwards). Prints operations/s and memory side by
# side. Both servers run without TLS and with Argon2id password hashes.
#
#   bash bench/imap.sh            # CONNS=8 DURATION=20 by default
#   CONNS=32 DURATION=30 bash bench/imap.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CONNS=${CONNS:-8}
DURATION=${DURATION:-20}
DOVECOT_PORT=${DOVECOT_PORT:-10143}
TARGET=${CARGO_TARGET_DIR:-target}
bench_workdir imap

users=""
for i in $(seq 1 "$CONNS"); do users="${users:+$users,}bench$i@bench.test"; done

result_line() { # name load-json mem-json
    python3 - "$@" <<'PY'
import json, sys
name, load, mem = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{name:8} {load['ops_per_s']:>10} ops/s {load['cycles_per_s']:>8} cycles/s "
      f"peak RSS {mem['rss_kib']/1024:7.1f} MiB  peak PSS {mem['pss_kib']/1024:7.1f} MiB "
      f"({mem['processes']} processes) errors {load['errors']}")
PY
}

# ---- Postern -------------------------------------------------------------------------------------
cargo build --release --quiet --bin postern
postern="$TARGET/release/postern"

# run_postern LABEL [ENV=VALUE...]: a fresh Postern (SQLite) under the load; sets <LABEL>_load/_mem/_idle.
run_postern() {
    local label=$1; shift
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
    "$postern" --config "$dir/postern.toml" domain add bench.test >/dev/null
    for u in ${users//,/ }; do
        echo password | "$postern" --config "$dir/postern.toml" user add "$u" >/dev/null
    done
    env "$@" "$postern" --config "$dir/postern.toml" serve 2>"$dir/log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do [ -f "$dir/data/listeners.json" ] && break; sleep 0.1; done
    local port
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listeners"]["imap"][0].rsplit(":",1)[1])' "$dir/data/listeners.json")
    python3 bench/imap-rss.py "$pid" --watch "$dir/mem.json" &
    pids+=("$!")
    printf -v "${label}_idle" '%s' "$(python3 bench/imap-rss.py "$pid")"
    printf -v "${label}_load" '%s' "$(python3 bench/imap-load.py --port "$port" --users "$users" --seconds "$DURATION")"
    sleep 1.5
    printf -v "${label}_mem" '%s' "$(cat "$dir/mem.json")"
    kill -TERM "$pid"; wait "$pid" || true
}
run_postern postern
# Argon2 allocates 19 MiB per password check; glibc's dynamic mmap threshold then keeps such
# blocks in per-thread heaps. The same run with a fixed threshold shows the difference.
run_postern postern_mmap MALLOC_MMAP_THRESHOLD_=131072

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
python3 bench/imap-rss.py "$dovecot_pid" --watch "$work/dovecot-mem.json" &
pids+=("$!")
dovecot_idle=$(python3 bench/imap-rss.py "$dovecot_pid")
dovecot_load=$(python3 bench/imap-load.py --port "$DOVECOT_PORT" --users "$users" --seconds "$DURATION")
sleep 1.5
dovecot_mem=$(cat "$work/dovecot-mem.json")
kill -TERM "$dovecot_pid"; wait "$dovecot_pid" || true

echo "IMAP benchmark: $CONNS connections, ${DURATION}s, $(nproc) cores; one op = one IMAP command"
result_line Postern "$postern_load" "$postern_mem"
result_line Postern* "$postern_mmap_load" "$postern_mmap_mem"
result_line Dovecot "$dovecot_load" "$dovecot_mem"
echo "idle before load: Postern $postern_idle; Dovecot $dovecot_idle"
echo "Postern* = Postern with MALLOC_MMAP_THRESHOLD_=131072 (Argon2's 19 MiB blocks returned to the OS)"
