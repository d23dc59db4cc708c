#!/usr/bin/env bash
# Edge benchmark: hostile clients against IMAP (bench/edge-flood.py) on Postern (release build,
# SQLite) and Dovecot (Debian dovecot-imapd, installed for the benchmark only, default limits),
# interleaved over ROUNDS rounds: memory above idle while 200 strangers announce 40 MiB and 2 GiB
# literals before login, memory while one address holds 600 idle connections, and the greeting
# time of a neighbour during that flood. Prints min/median/max per figure.
#
#   bash bench/edge.sh            # ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-3}
DOVECOT_PORT=${DOVECOT_PORT:-10143}
TARGET=${CARGO_TARGET_DIR:-target}
bench_workdir edge
ulimit -n "$(ulimit -Hn)"

cargo build --release --quiet --bin postern
postern="$TARGET/release/postern"

# run_postern: one round against a fresh Postern; prints edge-flood.py's JSON.
run_postern() {
    local dir="$work/postern"
    rm -rf "$dir"; mkdir -p "$dir/data"
    cat > "$dir/postern.toml" <<TOML
data_dir = "$dir/data"
log_level = "warn"
hostname = "bench.test"
[listeners]
imap = ["127.0.0.1:0"]
TOML
    "$postern" --config "$dir/postern.toml" serve 2>"$dir/log" &
    local pid=$!
    for _ in $(seq 100); do [ -f "$dir/data/listeners.json" ] && break; sleep 0.1; done
    local port
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listeners"]["imap"][0].rsplit(":",1)[1])' "$dir/data/listeners.json")
    python3 bench/edge-flood.py --pid "$pid" --port "$port"
    kill -TERM "$pid"; wait "$pid" || true
}

install_dovecot

# run_dovecot: one round against a fresh Dovecot; prints edge-flood.py's JSON.
run_dovecot() {
    local d="$work/dovecot"
    rm -rf "$d"
    dovecot_config "$d" "$DOVECOT_PORT"
    dovecot -F -c "$d/dovecot.conf" &
    local pid=$!
    for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$DOVECOT_PORT") 2>/dev/null && break; sleep 0.1; done
    python3 bench/edge-flood.py --pid "$pid" --port "$DOVECOT_PORT"
    kill -TERM "$pid"; wait "$pid" || true
}

for round in $(seq "$ROUNDS"); do
    run_postern >> "$work/postern.jsonl"
    run_dovecot >> "$work/dovecot.jsonl"
done

python3 - "$work/postern.jsonl" "$work/dovecot.jsonl" <<'PY'
import json, statistics, sys
print(f"edge benchmark: {sum(1 for _ in open(sys.argv[1]))} rounds; MiB above idle, ms; min / median / max")
for name, path in [("Postern", sys.argv[1]), ("Dovecot", sys.argv[2])]:
    rows = [json.loads(l) for l in open(path)]
    def mmm(k):
        v = [r[k] for r in rows]
        return f"{min(v)} / {statistics.median(v)} / {max(v)}"
    print(f"{name:8} idle RSS {mmm('idle_rss_mib')} MiB; 200 pre-login literal attempts "
          f"+{mmm('literal_rss_above_idle_mib')} MiB; 600 idle from one address "
          f"+{mmm('idle_rss_above_idle_mib')} MiB (opened {mmm('idle_connections_opened')}); "
          f"neighbour greeting {mmm('neighbour_greeting_ms')} ms")
    print(f"{'':8} replies to the literals: {rows[-1]['literal_replies']}")
PY
