#!/usr/bin/env bash
# Backup and restore benchmark: N messages (default 100000, ~3 KiB each, all distinct) imported for one
# user into SQLite; then the time and size of `postern backup` (level 0), of a level 1 after N/100 new
# messages, of `postern restore` into a fresh PostgreSQL database, of a level 0 backup from PostgreSQL,
# and of a restore of that into a fresh SQLite file. Needs DATABASE_URL naming a PostgreSQL role that may
# CREATE DATABASE (as the tests do). BIN defaults to the release build (built if missing).
#
#   DATABASE_URL=postgres://postern:postern@127.0.0.1:5432/postern_test bash bench/backup.sh
#   N=20000 BIN=target/debug/postern bash bench/backup.sh
#
# Measured 2026-12-07 on 2 cores shared with other builds (load ~8), the *debug* build of Postern
# (dependencies at opt-level 1; no release build was affordable there), ~3 KiB messages:
#                                     N=20000 (61.6 MiB mbox)   N=100000 (308.1 MiB mbox)
#   SQLite database                        102.4 MiB                 518.7 MiB
#   backup level 0 (SQLite)           13.7 s   88.5 MiB        35.7 s  438.4 MiB
#   N/100 new, backup level 1          1.3 s    6.3 MiB         8.2 s   30.1 MiB
#   backup --verify (both levels)      1.1 s                    6.2 s
#   restore -> PostgreSQL             17.8 s   (63 MB)         84.4 s  (280 MB)
#   backup level 0 (PostgreSQL)        9.8 s   89.4 MiB        24.9 s  442.8 MiB
#   restore PG backup -> SQLite        3.4 s  102.6 MiB        25.4 s  1035.8 MiB (measured before
#     restore checkpointed the WAL: half of that was the -wal file; with the checkpoint, N=3000
#     restores to 15.3 MiB from a 19.3 MiB source directory)
# A backup is ~1.4x the raw messages (each blob row carries its parsed ENVELOPE/BODYSTRUCTURE JSON);
# a level 1 holds the new messages plus the complete small tables (messages, mailboxes, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-100000}
: "${DATABASE_URL:?DATABASE_URL must name a PostgreSQL database whose role may CREATE DATABASE}"
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/postern}
[ -x "$BIN" ] || cargo build --release --bin postern
bench_workdir backup
pg_db="postern_bench_$$"
base=${DATABASE_URL%%\?*}
pg_url="${base%/*}/$pg_db"
drop_pg() { psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true; }
trap 'drop_pg; bench_cleanup' EXIT

config() { # DIR URL
    mkdir -p "$1/data"
    printf 'data_dir = "%s/data"\ndatabase_url = "%s"\nhostname = "mail.bench.test"\n' "$1" "$2" > "$1/postern.toml"
}
pst() { local dir=$1; shift; "$BIN" --config "$dir/postern.toml" "$@"; }
mbox() { # FILE FIRST COUNT
    python3 - "$@" <<'PY'
import sys, random
path, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(first)
words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
with open(path, "w") as f:
    for n in range(first, first + count):
        body = "\n".join(" ".join(rnd.choice(words) for _ in range(12)) for _ in range(40))
        f.write(f"From sender@remote.test Mon Dec  7 03:00:00 2026\nFrom: sender@remote.test\n"
                f"To: alice@bench.test\nSubject: message {n}\nMessage-ID: <{n}@bench.test>\n\n{body}\n\n")
PY
}
timed() { # LABEL command...: runs it, prints seconds
    local label=$1; shift
    local t0=$(date +%s.%N)
    "$@" >"$work/last.out" 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
    local t1=$(date +%s.%N)
    printf '%-42s %8.1f s\n' "$label" "$(echo "$t1 - $t0" | bc)"
}
size() { printf '%-42s %8.1f MiB\n' "$1" "$(du -sb "$2" | awk '{print $1/1048576}')"; }

src="$work/src"; config "$src" "sqlite://$src/data/postern.db"
pst "$src" domain add bench.test >/dev/null
echo secret | pst "$src" user add alice@bench.test >/dev/null
mbox "$work/a.mbox" 0 "$N"
mbox "$work/b.mbox" "$N" $((N / 100))
echo "N=$N messages, $(du -b "$work/a.mbox" | awk '{printf "%.1f MiB", $1/1048576}') of mbox, $BIN"
timed "import (setup, SQLite)" pst "$src" import mbox alice@bench.test "$work/a.mbox"
size "SQLite database" "$src/data"
timed "backup level 0 (SQLite)" pst "$src" backup "$work/b-sqlite"
size "backup level 0" "$work/b-sqlite"
timed "import N/100 more" pst "$src" import mbox alice@bench.test "$work/b.mbox"
timed "backup level 1 (SQLite, N/100 new)" pst "$src" backup "$work/b-sqlite" --level 1
size "backup level 1" "$(ls -d "$work"/b-sqlite/*-level-1-*)"
timed "backup --verify (both levels)" pst "$src" backup --verify "$work/b-sqlite"

psql "$DATABASE_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
pg="$work/pg"; config "$pg" "$pg_url"
timed "restore SQLite backup -> PostgreSQL" pst "$pg" restore "$work/b-sqlite"
printf '%-42s %8s\n' "PostgreSQL database" "$(psql "$pg_url" -Atc "SELECT pg_size_pretty(pg_database_size(current_database()))")"
timed "backup level 0 (PostgreSQL)" pst "$pg" backup "$work/b-pg"
size "backup level 0 (from PostgreSQL)" "$work/b-pg"
back="$work/back"; config "$back" "sqlite://$back/data/postern.db"
timed "restore PostgreSQL backup -> SQLite" pst "$back" restore "$work/b-pg"
size "restored SQLite database" "$back/data"
