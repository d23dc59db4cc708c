#!/usr/bin/env bash
# Cost of a one-record change to a signed zone: Postern (release build, SQLite store, or PostgreSQL
# with STORE=postgres: a fresh database next to $DATABASE_URL, dropped afterwards) serves a
# 10,000-record zone (or the size given) signed online (ECDSA P-256 CSK, NSEC3); then N dynamic updates (nsupdate with
# TSIG), each adding one name, are timed from send to reply (the update is served before the reply,
# RFC 2136 §3.5), with the server's own "zone built" time (build + sign) from its log, and the
# size of the IXFR that carries one change (records), against the whole signed zone's (AXFR).
#
# Needs bind9-dnsutils (nsupdate, dig). Usage: bench/dnssec-update.sh [records, default 10000] [updates, default 20]
# STORE=sqlite|postgres (default sqlite).
# POSTERN=path/to/postern runs that build instead of building the release binary.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RECORDS=${1:-10000}
UPDATES=${2:-20}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_workdir dnssec-update
STORE=${STORE:-sqlite}
DATABASE_URL=${DATABASE_URL:-postgres://postern:postern@127.0.0.1:5432/postern_test}
pg_db=
case "$STORE" in
  sqlite) database_url="sqlite://$work/data/postern.db" ;;
  postgres)
    pg_db="postern_bench_dnssec_$$"
    trap 'bench_cleanup; psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true' EXIT
    psql -q "$DATABASE_URL" -c "CREATE DATABASE $pg_db" >/dev/null
    database_url="${DATABASE_URL%/*}/$pg_db" ;;
  *) echo "STORE must be sqlite or postgres" >&2; exit 1 ;;
esac
PORT=15355
for tool in nsupdate dig; do
  command -v "$tool" > /dev/null || { echo "missing $tool: apt-get install bind9-dnsutils" >&2; exit 1; }
done
SECRET=ZGRucy1leGFtcGxlLXNlY3JldC0wMTIzNDU2Nzg5YWI=
{
  echo '$TTL 300'
  echo '@ IN SOA ns1 hostmaster 1 7200 900 1209600 300'
  echo '@ IN NS ns1'
  echo 'ns1 IN A 192.0.2.1'
  for i in $(seq 1 $((RECORDS - 3))); do echo "host$i IN A 192.0.$((i / 250 % 256)).$((i % 250 + 1))"; done
} > "$work/bench.test.zone"
cat > "$work/postern.toml" <<CONF
data_dir = "$work/data"
database_url = "$database_url"
hostname = "mail.bench.test"
log_level = "info"
[listeners]
dns = ["127.0.0.1:$PORT"]
[dns]
zones_dir = "$work"
watch = false
[[dns.tsig_key]]
name = "ddns-key"
secret = "$SECRET"
[[dns.view]]
name = "all"
match_clients = ["any"]
allow_transfer = ["127.0.0.0/8"]
[[dns.view.update_policy]]
key = "ddns-key"
name = "dyn.bench.test"
types = ["A"]
[[dns.view.zone]]
name = "bench.test"
file = "bench.test.zone"
dnssec = true
CONF
mkdir -p "$work/data"
if [ -z "${POSTERN:-}" ]; then
  (cd "$ROOT" && cargo build -q --release --bin postern)
  POSTERN=${CARGO_TARGET_DIR:-$ROOT/target}/release/postern
fi
start=$(date +%s%N)
"$POSTERN" --config "$work/postern.toml" serve > "$work/log" 2>&1 &
pids+=($!)
serial() { dig +short +time=1 +tries=1 -p $PORT @127.0.0.1 bench.test SOA 2>/dev/null | awk '{print $3}'; }
for _ in $(seq 1200); do
  dig +dnssec +short +time=1 +tries=1 -p $PORT @127.0.0.1 bench.test DNSKEY 2>/dev/null | grep -q . && break
  sleep 0.1
done
echo "store=$STORE records=$RECORDS signed_and_serving_s=$(echo "scale=2; ($(date +%s%N) - $start) / 1000000000" | bc)"
first=$(serial)
axfr=$(dig +noall +answer -p $PORT @127.0.0.1 bench.test AXFR | grep -vc '^;')
times=()
for i in $(seq 1 "$UPDATES"); do
  t0=$(date +%s%N)
  printf 'server 127.0.0.1 %s\nzone bench.test\nupdate add u%s.dyn.bench.test 300 A 192.0.2.%s\nsend\n' \
    "$PORT" "$i" "$((i % 250 + 1))" | nsupdate -y "hmac-sha256:ddns-key:$SECRET" -t 20
  times+=($(( ($(date +%s%N) - t0) / 1000000 )))
done
last=$(serial)
ixfr=$(dig +noall +answer -p $PORT @127.0.0.1 bench.test "IXFR=$((last - 1))" | grep -vc '^;')
echo "update_round_trip_ms: ${times[*]}"
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "update_ms min=%d median=%d max=%d\n", a[1], a[int((NR+1)/2)], a[NR]}'
grep 'zone built' "$work/log" | tail -n "$UPDATES" | sed -n 's/.* ms=\([0-9]*\).*/\1/p' | sort -n \
  | awk '{a[NR]=$1} END {printf "zone_built_ms (build+sign, per update) min=%d median=%d max=%d\n", a[1], a[int((NR+1)/2)], a[NR]}'
grep 'zone built' "$work/log" | tail -n "$UPDATES" | sed -n 's/.*sign_ms=\([0-9]*\).*/\1/p' | sort -n \
  | awk '{a[NR]=$1} END {printf "sign_ms (of which signing, per update) min=%d median=%d max=%d\n", a[1], a[int((NR+1)/2)], a[NR]}'
echo "serials $first -> $last; IXFR of one change: $ixfr records; AXFR: $axfr records"
echo "load average: $(cut -d" " -f1-3 /proc/loadavg)"
