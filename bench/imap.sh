#!/usr/bin/env bash
# IMAP benchmark against Postern (release build) and Dovecot (Debian dovecot-imapd, Maildir,
# installed for the benchmark only, on an unprivileged loopback port, stopped afterwards). Both
# servers run without TLS and with Argon2id password hashes. Two parts (PART=load|mailbox|all):
#
# - load: the same load (bench/imap-load.py: login, then SELECT / FETCH FLAGS / FETCH BODY[] /
#   APPEND cycles over CONNS connections, one user each) against Postern on SQLite and Dovecot;
#   prints operations/s and memory side by side.
# - mailbox: one mailbox of MESSAGES generated messages (bench/imap-corpus.py: realistic headers,
#   quoted-printable, HTML, base64 text and binary attachments), the same files imported into
#   Postern on SQLite and on PostgreSQL (DATABASE_URL names a database whose user may create
#   databases) and given to Dovecot as its Maildir; ROUNDS rounds, interleaved (each round runs
#   every server once, in rotating order), of Thunderbird's header fetch, SEARCH SUBJECT and
#   SEARCH BODY (bench/imap-search.py); prints min/median/max seconds, the SEARCH hits (which
#   must agree), and Postern's peak memory during the header fetch and SEARCH BODY above its RSS
#   before each.
#
#   bash bench/imap.sh            # CONNS=8 DURATION=20 MESSAGES=20000 ROUNDS=5 by default
#   CONNS=32 DURATION=30 PART=load bash bench/imap.sh
#   MESSAGES=5000 ROUNDS=3 PART=mailbox bash bench/imap.sh
#   POSTERN_BIN=target/debug/postern MESSAGES=300 ROUNDS=1 PART=mailbox bash bench/imap.sh  # a dry run
#   CORPUS=DIR PART=mailbox bash bench/imap.sh  # reuse a corpus (see mailbox_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CONNS=${CONNS:-8}
DURATION=${DURATION:-20}
PART=${PART:-all}
MESSAGES=${MESSAGES:-20000}
ROUNDS=${ROUNDS:-5}
PG_URL=${DATABASE_URL:-postgres://postern:postern@127.0.0.1:5432/postern_test}
DOVECOT_PORT=${DOVECOT_PORT:-10143}
TARGET=${CARGO_TARGET_DIR:-target}
bench_workdir imap

postern=${POSTERN_BIN:-$TARGET/release/postern}
[ -n "${POSTERN_BIN:-}" ] || cargo build --release --quiet --bin postern
install_dovecot

load_bench() {
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
}

# ---- Mailbox: header fetch and SEARCH on MESSAGES messages --------------------------------------
pg_db="postern_bench_$$"
drop_bench_db() {
    psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
}

# prepare_postern NAME [DATABASE_URL]: a Postern configuration in $work/NAME with user
# bench1@bench.test, the corpus imported into its INBOX.
prepare_postern() {
    local name=$1 url=${2:-} dir="$work/$1"
    mkdir -p "$dir/data"
    {
        echo "data_dir = \"$dir/data\""
        [ -n "$url" ] && echo "database_url = \"$url\""
        printf 'log_level = "warn"\nhostname = "bench.test"\n[listeners]\nimap = ["127.0.0.1:0"]\n'
        printf '[imap]\nlogin_disabled_without_tls = false\n'
    } > "$dir/postern.toml"
    "$postern" --config "$dir/postern.toml" domain add bench.test >/dev/null
    echo password | "$postern" --config "$dir/postern.toml" user add bench1@bench.test >/dev/null
    local t0=$SECONDS
    "$postern" --config "$dir/postern.toml" import maildir bench1@bench.test "$work/corpus" >/dev/null
    echo "imported $MESSAGES messages into Postern ($name) in $((SECONDS - t0)) s" >&2
}

# start_postern NAME: serves the Postern prepared in $work/NAME; sets NAME_pid and NAME_port.
start_postern() {
    local name=$1 dir="$work/$1"
    rm -f "$dir/data/listeners.json"
    "$postern" --config "$dir/postern.toml" serve 2>>"$dir/log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 300); do [ -f "$dir/data/listeners.json" ] && break; sleep 0.1; done
    printf -v "${name}_pid" '%s' "$pid"
    printf -v "${name}_port" '%s' "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listeners"]["imap"][0].rsplit(":",1)[1])' "$dir/data/listeners.json")"
}

mailbox_bench() {
    trap 'bench_cleanup; drop_bench_db' EXIT
    local corpus_info
    if [ -n "${CORPUS:-}" ]; then
        # A corpus made earlier: `python3 bench/imap-corpus.py DIR MESSAGES > DIR.json`.
        ln -s "$(realpath "$CORPUS")" "$work/corpus"
        corpus_info=$(cat "$CORPUS.json")
    else
        corpus_info=$(python3 bench/imap-corpus.py "$work/corpus" "$MESSAGES")
    fi
    echo "corpus: $corpus_info" >&2
    local subject body
    subject=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["subject_term"])' "$corpus_info")
    body=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["body_term"])' "$corpus_info")
    psql "$PG_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
    # Both imports at once (the machine may be shared: the timed rounds are interleaved).
    prepare_postern sqlite &
    local sqlite_import=$!
    prepare_postern postgres "$(python3 -c 'import sys; b, _, _ = sys.argv[1].rpartition("/"); print(b + "/" + sys.argv[2])' "$PG_URL" "$pg_db")"
    wait "$sqlite_import"
    start_postern sqlite
    start_postern postgres

    local d="$work/dovecot-mailbox"
    dovecot_config "$d" "$DOVECOT_PORT"
    echo "bench1@bench.test:$(doveadm pw -s ARGON2ID -p password)" >> "$d/passwd"
    cp -rL "$work/corpus" "$d/mail/bench1@bench.test"
    chown -R nobody:nogroup "$d/mail"
    dovecot -F -c "$d/dovecot.conf" &
    local dovecot_pid=$!
    pids+=("$dovecot_pid")
    for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$DOVECOT_PORT") 2>/dev/null && break; sleep 0.1; done
    dovecot_port=$DOVECOT_PORT

    # run_once SERVER OUT: one timed session against SERVER, appended to OUT.
    run_once() {
        local port_var="${1}_port" pid_var="${1}_pid" extra=()
        [ "$1" != dovecot ] && extra=(--pid "${!pid_var}")
        python3 bench/imap-search.py --port "${!port_var}" --user bench1@bench.test --password password \
            --subject "$subject" --body "$body" "${extra[@]}" >> "$2"
    }
    local servers=(sqlite postgres dovecot)
    # Warm-up, not counted: Dovecot builds its index and cache files, every server's files get
    # into the page cache.
    for s in "${servers[@]}"; do run_once "$s" "$work/warmup.jsonl"; done
    for r in $(seq 1 "$ROUNDS"); do
        for i in 0 1 2; do
            local s=${servers[$(( (r + i) % 3 ))]}
            run_once "$s" "$work/$s.jsonl"
        done
    done
    kill -TERM "$dovecot_pid" "$sqlite_pid" "$postgres_pid"
    wait "$dovecot_pid" "$sqlite_pid" "$postgres_pid" || true

    python3 - "$work" "$MESSAGES" "$ROUNDS" "$(nproc)" <<'PY'
import json, statistics, sys
work, messages, rounds, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
names = {"sqlite": "Postern (SQLite)", "postgres": "Postern (PostgreSQL)", "dovecot": "Dovecot 2.3 (Maildir)"}
runs = {s: [json.loads(l) for l in open(f"{work}/{s}.jsonl")] for s in names}
print(f"IMAP mailbox benchmark: {messages} messages, {rounds} interleaved rounds, {cores} cores; "
      "seconds min / median / max")
commands = [("header_fetch", "header fetch"), ("search_subject", "SEARCH SUBJECT"), ("search_body", "SEARCH BODY")]
print(f"{'':22}" + "".join(f"{title:>26}" for _, title in commands))
median = {}
for s, title in names.items():
    cells = []
    for c, _ in commands:
        v = sorted(r[c] for r in runs[s])
        median[s, c] = statistics.median(v)
        cells.append(f"{v[0]:.3f} / {median[s, c]:.3f} / {v[-1]:.3f}")
    print(f"{title:22}" + "".join(f"{c:>26}" for c in cells))
for s in ("sqlite", "postgres"):
    print(f"{names[s]:22}" + "".join(
        f"{median[s, c] / median['dovecot', c]:>21.2f} x Dv" for c, _ in commands))
agree = True
for key in ("fetched", "search_subject_hits", "search_body_hits"):
    seen = {s: sorted({r[key] for r in runs[s]}) for s in names}
    print(f"{key}: " + ", ".join(f"{s} {v}" for s, v in seen.items()))
    agree &= len({tuple(v) for v in seen.values()}) == 1
print("results agree across servers" if agree else "RESULTS DIFFER between servers")
for s in ("sqlite", "postgres"):
    for key, title in (("header", "header fetch"), ("body", "SEARCH BODY")):
        growth = [(r[f"{key}_peak_kib"] - r[f"{key}_rss_before_kib"]) / 1024 for r in runs[s]]
        before = [r[f"{key}_rss_before_kib"] / 1024 for r in runs[s]]
        print(f"{names[s]}: {title} peak RSS above RSS before it: max {max(growth):.1f} MiB "
              f"(RSS before {min(before):.0f}-{max(before):.0f} MiB)")
PY
}

case "$PART" in
    load) load_bench ;;
    mailbox) mailbox_bench ;;
    *) load_bench; mailbox_bench ;;
esac
