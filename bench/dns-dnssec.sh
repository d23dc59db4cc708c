#!/usr/bin/env bash
# DNSSEC benchmark: the same 100,000-record zone served unsigned by Postern, and signed online
# (ECDSA P-256 CSK, NSEC3 with RFC 9276 parameters) by Postern, Knot DNS and BIND9, one server at a
# time on loopback. For each: time from start until a signed answer for the last name is served
# (load and sign), dnsperf QPS with the DO bit for 8 and 64 clients over UDP, and peak RSS.
# The query file mixes hits, NODATA and NXDOMAIN (NXDOMAIN carries three NSEC3 records).
#
# Needs the Debian packages dnsperf, knot, bind9. Usage:
#   bench/dns-dnssec.sh [seconds per run, default 10] [servers, default "postern knot bind"] [rounds, default 3]
# BASELINE=path/to/serve adds an older build of Postern's `serve` example, signing, as one more
# server of each round ("postern baseline signed").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_RUN=${1:-10}
SERVERS=${2:-postern knot bind}
ROUNDS=${3:-3}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_workdir dnssec
PORT=15354
for tool in dnsperf knotd knotc named dig; do
  command -v "$tool" > /dev/null || { echo "missing $tool: apt-get install dnsperf knot bind9 bind9-dnsutils" >&2; exit 1; }
done

python3 - "$work" <<'PY'
import random, sys
work = sys.argv[1]
random.seed(1)
lines = ["$ORIGIN bench.test.", "$TTL 3600",
         "@ IN SOA ns1 hostmaster 1 7200 900 1209600 300", "@ IN NS ns1", "ns1 IN A 192.0.2.1"]
for i in range(70000):
    lines.append(f"host{i} IN A 192.0.{i // 250 % 256}.{i % 250 + 1}")
for i in range(20000):
    lines.append(f"host{i} IN AAAA 2001:db8::{i:x}")
for i in range(5000):
    lines.append(f"mx{i} IN MX 10 host{i}")
for i in range(4995):
    lines.append(f'txt{i} IN TXT "v=spf1 ip4:192.0.2.{i % 250} -all"')
open(f"{work}/bench.test.zone", "w").write("\n".join(lines) + "\n")
queries = []
for _ in range(50000):
    r = random.random()
    if r < 0.6:
        queries.append(f"host{random.randrange(70000)}.bench.test A")
    elif r < 0.75:
        queries.append(f"host{random.randrange(20000)}.bench.test AAAA")
    elif r < 0.8:
        queries.append(f"mx{random.randrange(5000)}.bench.test MX")
    elif r < 0.85:
        queries.append(f"host{random.randrange(20000, 70000)}.bench.test AAAA")
    else:
        queries.append(f"nx{random.randrange(1000000)}.bench.test A")
open(f"{work}/queries.txt", "w").write("\n".join(queries) + "\n")
PY

postern_conf() { # dnssec: true|false
  cat <<CONF
[dns]
zones_dir = "."
watch = false
[[dns.view]]
name = "all"
match_clients = ["any"]
[[dns.view.zone]]
name = "bench.test"
file = "bench.test.zone"
dnssec = $1
CONF
}
postern_conf false > "$work/postern-unsigned.toml"
postern_conf true > "$work/postern-signed.toml"

mkdir -p "$work/knot/db" "$work/bind"
cp "$work/bench.test.zone" "$work/knot/"
cp "$work/bench.test.zone" "$work/bind/"
cat > "$work/knot/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$PORT
    rundir: $work/knot
database:
    storage: $work/knot/db
policy:
  - id: bench
    algorithm: ecdsap256sha256
    single-type-signing: on
    nsec3: on
    nsec3-iterations: 0
    nsec3-salt-length: 0
    nsec3-opt-out: off
zone:
  - domain: bench.test
    file: $work/knot/bench.test.zone
    zonefile-sync: -1
    journal-content: none
    dnssec-signing: on
    dnssec-policy: bench
CONF
cat > "$work/bind/named.conf" <<CONF
options { directory "$work/bind"; listen-on port $PORT { 127.0.0.1; }; listen-on-v6 { none; };
          recursion no; pid-file "$work/bind/named.pid"; };
dnssec-policy "bench" {
    keys { csk lifetime unlimited algorithm ecdsap256sha256; };
    nsec3param iterations 0 optout no salt-length 0;
};
zone "bench.test" { type primary; file "bench.test.zone"; dnssec-policy "bench"; inline-signing yes;
                    sig-signing-nodes 100000; sig-signing-signatures 1000000; };
CONF

(cd "$ROOT" && cargo build -q --release -p postern-dns --example serve)
SERVE=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve

# Waits until the last name of the zone is served (with an RRSIG when `signed`); prints seconds.
wait_ready() { # start-ns, signed
  local start=$1 signed=$2
  for _ in $(seq 1200); do
    local out
    out=$(dig +dnssec +time=1 +tries=1 -p $PORT @127.0.0.1 txt4994.bench.test TXT 2>/dev/null || true)
    if grep -q 'v=spf1' <<< "$out" && { [ "$signed" = no ] || grep -q 'RRSIG' <<< "$out"; }; then
      echo "scale=2; ($(date +%s%N) - $start) / 1000000000" | bc
      return 0
    fi
    sleep 0.1
  done
  echo "server did not come up" >&2; return 1
}

perf() { # name, clients
  dnsperf -s 127.0.0.1 -p $PORT -D -d "$work/queries.txt" -l "$SECONDS_PER_RUN" -c "$2" -q 500 \
    > "$work/$1-$2.perf" 2>&1
  awk '/Queries per second/ {printf "%.0f", $4}' "$work/$1-$2.perf"
}

# One run of a server: appends "ready q8 q64 rss" to $work/<name>.runs.
run() { # name, signed (yes|no), command...
  local name=$1 signed=$2; shift 2
  local start ready pid q8 q64 rss
  start=$(date +%s%N)
  "$@" > "$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  ready=$(wait_ready "$start" "$signed")
  dnsperf -s 127.0.0.1 -p $PORT -D -d "$work/queries.txt" -l 2 -c 8 -q 500 > /dev/null 2>&1 # warm-up
  q8=$(perf "$name" 8)
  q64=$(perf "$name" 64)
  rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
  echo "$ready $q8 $q64 $rss" >> "$work/$name.runs"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# min/median/max of column $2 of file $1.
spread() {
  awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '
    { v[NR] = $1 } END { printf "%s/%s/%s", v[1], v[int((NR + 1) / 2)], v[NR] }'
}

declare -A label cmd signed
label[unsigned]="postern unsigned"; signed[unsigned]=no
cmd[unsigned]="$SERVE $work/postern-unsigned.toml 127.0.0.1:$PORT"
label[postern]="postern signed"; signed[postern]=yes
cmd[postern]="$SERVE $work/postern-signed.toml 127.0.0.1:$PORT"
label[knot]="knot $(knotd -V | awk '{print $NF}') signed"; signed[knot]=yes
cmd[knot]="knotd -c $work/knot/knot.conf"
label[bind]="bind9 $(named -v | awk '{print $2}') signed"; signed[bind]=yes
cmd[bind]="named -g -c $work/bind/named.conf -u root"
label[baseline]="postern baseline signed"; signed[baseline]=yes
cmd[baseline]="${BASELINE:-} $work/postern-signed.toml 127.0.0.1:$PORT"
order=()
for s in $SERVERS; do
  [ "$s" = postern ] && order+=(unsigned)
  order+=("$s")
  if [ "$s" = postern ] && [ -n "${BASELINE:-}" ]; then order+=(baseline); fi
done
for r in $(seq "$ROUNDS"); do
  for s in "${order[@]}"; do
    echo "round $r: ${label[$s]}" >&2
    # shellcheck disable=SC2086
    run "$s" "${signed[$s]}" ${cmd[$s]}
  done
done

echo "zone: $(grep -c ' IN ' "$work/bench.test.zone") records; $(wc -l < "$work/queries.txt") queries (DO bit); ${SECONDS_PER_RUN}s per run; $ROUNDS rounds interleaved; $(nproc) cores"
echo "each figure: min/median/max over the rounds"
printf '%-26s %16s %20s %20s %18s\n' server "ready s" "QPS -c 8" "QPS -c 64" "RSS MiB"
for s in "${order[@]}"; do
  printf '%-26s %16s %20s %20s %18s\n' "${label[$s]}" "$(spread "$work/$s.runs" 1)" \
    "$(spread "$work/$s.runs" 2)" "$(spread "$work/$s.runs" 3)" "$(spread "$work/$s.runs" 4)"
done
