#!/usr/bin/env bash
# Junk filter benchmark: precision, recall and F1 of the per-account learning filter on a
# deterministic synthetic corpus (bench/junk.py says how it is made), trained over real IMAP and
# scored at real SMTP delivery by one Postern (SQLite, or PostgreSQL with DATABASE_URL set).
#
#   bash bench/junk.sh                  # 300 spam + 300 ham to train, 150 + 150 to test
#   TRAIN=100 TEST=100 bash bench/junk.sh
#   NOISE=0.10 bash bench/junk.sh       # share of each message's words taken from the other class
#   PROFILE=release bash bench/junk.sh  # default: the debug build (quality does not depend on it)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
TRAIN=${TRAIN:-300}
TEST=${TEST:-150}
NOISE=${NOISE:-0.05}
PROFILE=${PROFILE:-debug}
TARGET=${CARGO_TARGET_DIR:-target}
bench_workdir junk

if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin postern; else cargo build --quiet --bin postern; fi
postern="$TARGET/$PROFILE/postern"
db_line=""
if [ -n "${DATABASE_URL:-}" ]; then
    db="postern_junk_bench_$$"
    psql "$DATABASE_URL" -qc "CREATE DATABASE $db" >/dev/null
    db_url="${DATABASE_URL%/*}/$db"
    db_line="database_url = \"$db_url\""
    trap 'bench_cleanup; psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null' EXIT
fi
mkdir -p "$work/data"
cat > "$work/postern.toml" <<TOML
data_dir = "$work/data"
log_level = "info"
hostname = "mail.bench.test"
$db_line
[listeners]
smtp = ["127.0.0.1:0"]
imap = ["127.0.0.1:0"]
[imap]
login_disabled_without_tls = false
[smtp]
auth_timeout_secs = 2
[smtp.junk]
threshold = 0.95
TOML
"$postern" --config "$work/postern.toml" domain add bench.test >/dev/null
echo password | "$postern" --config "$work/postern.toml" user add bench@bench.test >/dev/null
"$postern" --config "$work/postern.toml" serve 2>"$work/log" &
pids+=("$!")
for _ in $(seq 300); do [ -f "$work/data/listeners.json" ] && break; sleep 0.1; done
port() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listeners"][sys.argv[2]][0].rsplit(":",1)[1])' "$work/data/listeners.json" "$1"; }
python3 bench/junk.py "$(port smtp)" "$(port imap)" "$work/log" "$TRAIN" "$TEST" "$NOISE"
