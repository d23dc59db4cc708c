#!/usr/bin/env bash
# DNS benchmark: dnsperf against Postern (two views; queries come from 127.0.0.3 and fall
# through the first view to the second), Knot DNS, NSD and BIND9, each serving the same
# 1,000-record zone on loopback, one server at a time, with the same query file.
# Prints QPS, lost queries and peak RSS side by side. NSD runs with server-count 2 (one
# process per core) and its default response-rate limiting off, like the others.
#
# Needs the Debian packages dnsperf, knot, nsd, bind9. Usage:
#   bench/dns.sh [seconds per server, default 10]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_RUN=${1:-10}
WORK=$(mktemp -d /tmp/postern-dns-bench.XXXXXX)
PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
trap 'stop; rm -rf "$WORK"' EXIT
for tool in dnsperf knotd nsd named; do
  command -v "$tool" > /dev/null || { echo "missing $tool: apt-get install dnsperf knot nsd bind9" >&2; exit 1; }
done

# The zone: SOA, NS and 1,000 records (A, AAAA, MX, TXT); the query file mixes hits,
# NODATA and NXDOMAIN.
python3 - "$WORK" <<'PY'
import random, sys
work = sys.argv[1]
random.seed(1)
lines = ["$ORIGIN bench.test.", "$TTL 3600",
         "@ IN SOA ns1 hostmaster 1 7200 900 1209600 300", "@ IN NS ns1", "ns1 IN A 192.0.2.1"]
for i in range(700):
    lines.append(f"host{i} IN A 192.0.2.{i % 250 + 1}")
for i in range(200):
    lines.append(f"host{i} IN AAAA 2001:db8::{i:x}")
for i in range(50):
    lines.append(f"mx{i} IN MX 10 host{i}")
for i in range(49):
    lines.append(f'txt{i} IN TXT "v=spf1 ip4:192.0.2.{i} -all"')
open(f"{work}/bench.test.zone", "w").write("\n".join(lines) + "\n")
queries = []
for _ in range(20000):
    r = random.random()
    if r < 0.6:
        queries.append(f"host{random.randrange(700)}.bench.test A")
    elif r < 0.75:
        queries.append(f"host{random.randrange(200)}.bench.test AAAA")
    elif r < 0.8:
        queries.append(f"mx{random.randrange(50)}.bench.test MX")
    elif r < 0.85:
        queries.append(f"host{random.randrange(300, 700)}.bench.test AAAA")
    else:
        queries.append(f"nx{random.randrange(100000)}.bench.test A")
open(f"{work}/queries.txt", "w").write("\n".join(queries) + "\n")
PY

PORT=15353
cat > "$WORK/postern.toml" <<CONF
[dns]
zones_dir = "."
watch = false
[[dns.acl]]
name = "rfc1918"
match = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
[[dns.view]]
name = "internal"
match_clients = ["!127.0.0.3", "127.0.0.2", "localhost", "rfc1918"]
[[dns.view.zone]]
name = "bench.test"
file = "bench.test.zone"
[[dns.view]]
name = "external"
match_clients = ["any"]
[[dns.view.zone]]
name = "bench.test"
file = "bench.test.zone"
CONF
cat > "$WORK/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$PORT
    rundir: $WORK
database:
    storage: $WORK/knotdb
zone:
  - domain: bench.test
    file: $WORK/bench.test.zone
    zonefile-sync: -1
    journal-content: none
CONF
cat > "$WORK/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1@$PORT
    zonesdir: "$WORK"
    pidfile: "$WORK/nsd.pid"
    xfrdfile: "$WORK/xfrd.state"
    zonelistfile: "$WORK/zone.list"
    database: ""
    username: ""
    server-count: 2
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: bench.test
    zonefile: bench.test.zone
CONF
cat > "$WORK/named.conf" <<CONF
options { directory "$WORK"; listen-on port $PORT { 127.0.0.1; }; listen-on-v6 { none; };
          recursion no; pid-file "$WORK/named.pid"; };
zone "bench.test" { type master; file "bench.test.zone"; };
CONF

(cd "$ROOT" && cargo build -q --release -p postern-dns --example serve)
SERVE=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve

wait_ready() {
  for _ in $(seq 100); do
    dig +short +time=1 +tries=1 -p $PORT @127.0.0.1 -b 127.0.0.3 host1.bench.test A 2>/dev/null | grep -q 192.0.2 && return 0
    sleep 0.1
  done
  echo "server did not come up" >&2; return 1
}

run() { # name, command...
  local name=$1; shift
  "$@" > "$WORK/$name.log" 2>&1 &
  PID=$!
  wait_ready
  dnsperf -s 127.0.0.1 -p $PORT -a 127.0.0.3 -d "$WORK/queries.txt" -l 2 -c 4 -q 200 > /dev/null 2>&1 # warm-up
  dnsperf -s 127.0.0.1 -p $PORT -a 127.0.0.3 -d "$WORK/queries.txt" -l "$SECONDS_PER_RUN" -c 4 -q 200 \
    > "$WORK/$name.perf" 2>&1
  local qps lost rss
  qps=$(awk '/Queries per second/ {print $4}' "$WORK/$name.perf")
  lost=$(awk '/Queries lost/ {print $3}' "$WORK/$name.perf")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
  printf '%-22s %12.0f %10s %10.1f\n' "$name" "$qps" "$lost" "$(echo "$rss / 1024" | bc -l)"
  stop
}

echo "zone: 1,000 records; $(wc -l < "$WORK/queries.txt") queries in the file; ${SECONDS_PER_RUN}s per server; $(nproc) cores"
printf '%-22s %12s %10s %10s\n' server QPS lost "RSS MiB"
run "postern (2 views)" "$SERVE" "$WORK/postern.toml" 127.0.0.1:$PORT
run "knot $(knotd -V | awk '{print $NF}')" knotd -c "$WORK/knot.conf"
run "nsd $(nsd -v 2>&1 | awk 'NR==1 {print $NF}')" nsd -d -c "$WORK/nsd.conf"
run "bind9 $(named -v | awk '{print $2}')" named -g -c "$WORK/named.conf" -u root
