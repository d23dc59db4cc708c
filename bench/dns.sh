#!/usr/bin/env bash
# DNS benchmark: Postern (two views), Knot DNS, NSD and BIND9 (two views) serve the same three zones
# on loopback: bench.test (1,000 records), big.test (100,000 records) and small.test (5 records).
# Postern's and BIND's second view takes the zones from the first (Postern `in_view`, BIND
# `in-view`); queries come from 127.0.0.3 and fall through the first view to the second.
# Rounds are interleaved (each round runs every server once, in turn) and for every server and round:
#   - cold start: from exec to the first answer from big.test (wall time, and the server's CPU
#     seconds, which a loaded machine does not stretch), and memory (PSS, which is RSS for one
#     process and counts the pages NSD's forked servers share once) once it answers;
#   - dnsperf QPS over UDP with 8 and 64 clients and over TCP with 8, and the server's CPU seconds
#     during each run (utime + stime of its processes, /proc/PID/stat): QPS per CPU-second;
#   - p99 latency at a fixed 5,000 queries/s (dnsperf -v);
#   - reload: a one-line edit of small.test (with big.test beside), then four one-line edits of
#     big.test, each timed from the write (or the reload command) to the new answer; PSS 2 s after
#     the last one.
#     Postern reloads through its file watcher (so the times include `zone_settle_ms` = 100 ms),
#     Knot with `knotc zone-reload`, BIND with `rndc reload`; NSD is not reloaded.
# The query file mixes the 1k and the 100k zone half and half (hits, NODATA, NXDOMAIN).
# Prints one line per measurement and round, then min/median/max over the rounds.
#
# Needs the Debian packages dnsperf, knot, nsd, bind9 (and bind9-utils for rndc-confgen). Usage:
#   bench/dns.sh [rounds, default 3] [seconds per dnsperf run, default 10]
# SERVE=path/to/serve runs another build of Postern's `serve` example; BASELINE=path/to/serve adds
# an older build as one more server of each round ("postern baseline").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-3}
SECS=${2:-10}
WORK=$(mktemp -d /tmp/postern-dns-bench.XXXXXX)
PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
trap 'stop; rm -rf "$WORK"' EXIT
for tool in dnsperf knotd knotc nsd named rndc rndc-confgen; do
  command -v "$tool" > /dev/null || { echo "missing $tool: apt-get install dnsperf knot nsd bind9 bind9-utils" >&2; exit 1; }
done
PORT=15353 RNDC_PORT=15954

python3 - "$WORK" <<'PY'
import random, sys
work = sys.argv[1]
random.seed(1)

def zone(origin, a, aaaa, mx, txt, serial=1):
    lines = [f"$ORIGIN {origin}.", "$TTL 3600",
             f"@ IN SOA ns1 hostmaster {serial} 7200 900 1209600 300", "@ IN NS ns1", "ns1 IN A 192.0.2.1"]
    lines += [f"host{i} IN A 10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(a)]
    lines += [f"host{i} IN AAAA 2001:db8::{i:x}" for i in range(aaaa)]
    lines += [f"mx{i} IN MX 10 host{i}" for i in range(mx)]
    lines += [f'txt{i} IN TXT "v=spf1 ip4:192.0.2.{i % 250} -all"' for i in range(txt)]
    return "\n".join(lines) + "\n"

open(f"{work}/bench.test.zone", "w").write(zone("bench.test", 700, 200, 50, 49))
open(f"{work}/big.test.zone", "w").write(zone("big.test", 70000, 20000, 5000, 4997))
open(f"{work}/small.test.zone", "w").write(zone("small.test", 1, 0, 0, 0))
queries = []
for _ in range(40000):
    origin, a, aaaa, mx = random.choice([("bench.test", 700, 200, 50), ("big.test", 70000, 20000, 5000)])
    r = random.random()
    if r < 0.6:
        queries.append(f"host{random.randrange(a)}.{origin} A")
    elif r < 0.75:
        queries.append(f"host{random.randrange(aaaa)}.{origin} AAAA")
    elif r < 0.8:
        queries.append(f"mx{random.randrange(mx)}.{origin} MX")
    elif r < 0.85:
        queries.append(f"host{random.randrange(aaaa, a)}.{origin} AAAA")
    else:
        queries.append(f"nx{random.randrange(1000000)}.{origin} A")
open(f"{work}/queries.txt", "w").write("\n".join(queries) + "\n")
PY
cp "$WORK/big.test.zone" "$WORK/big.test.zone.orig"
cp "$WORK/small.test.zone" "$WORK/small.test.zone.orig"

cat > "$WORK/postern.toml" <<CONF
[dns]
zones_dir = "."
watch = true
zone_settle_ms = 100
[[dns.view]]
name = "internal"
match_clients = ["!127.0.0.3", "127.0.0.2", "localhost"]
CONF
for z in bench big small; do
  printf '[[dns.view.zone]]\nname = "%s.test"\nfile = "%s.test.zone"\n' $z $z >> "$WORK/postern.toml"
done
printf '[[dns.view]]\nname = "external"\nmatch_clients = ["any"]\n' >> "$WORK/postern.toml"
for z in bench big small; do
  printf '[[dns.view.zone]]\nname = "%s.test"\nin_view = "internal"\n' $z >> "$WORK/postern.toml"
done

{
  printf 'server:\n    listen: 127.0.0.1@%s\n    rundir: %s\n' $PORT "$WORK"
  printf 'control:\n    listen: %s/knot.sock\n' "$WORK"
  printf 'database:\n    storage: %s/knotdb\nzone:\n' "$WORK"
  for z in bench big small; do
    printf '  - domain: %s.test\n    file: %s/%s.test.zone\n    zonefile-sync: -1\n    journal-content: none\n' $z "$WORK" $z
  done
} > "$WORK/knot.conf"
{
  printf 'server:\n    ip-address: 127.0.0.1@%s\n    zonesdir: "%s"\n    pidfile: "%s/nsd.pid"\n' $PORT "$WORK" "$WORK"
  printf '    xfrdfile: "%s/xfrd.state"\n    zonelistfile: "%s/zone.list"\n    database: ""\n' "$WORK" "$WORK"
  printf '    username: ""\n    server-count: 2\n    rrl-ratelimit: 0\nremote-control:\n    control-enable: no\n'
  for z in bench big small; do printf 'zone:\n    name: %s.test\n    zonefile: %s.test.zone\n' $z $z; done
} > "$WORK/nsd.conf"
rndc-confgen -a -c "$WORK/rndc.key" -k rndc-key > /dev/null 2>&1
{
  printf 'include "%s/rndc.key";\n' "$WORK"
  printf 'controls { inet 127.0.0.1 port %s allow { 127.0.0.1; } keys { "rndc-key"; }; };\n' $RNDC_PORT
  printf 'options { directory "%s"; listen-on port %s { 127.0.0.1; }; listen-on-v6 { none; };\n' "$WORK" $PORT
  printf '          recursion no; pid-file "%s/named.pid"; };\n' "$WORK"
  printf 'view "internal" { match-clients { !127.0.0.3; 127.0.0.2; localhost; };\n'
  for z in bench big small; do printf '  zone "%s.test" { type master; file "%s.test.zone"; };\n' $z $z; done
  printf '};\nview "external" { match-clients { any; };\n'
  for z in bench big small; do printf '  zone "%s.test" { in-view "internal"; };\n' $z; done
  printf '};\n'
} > "$WORK/named.conf"

if [ -z "${SERVE:-}" ]; then
  (cd "$ROOT" && cargo build -q --release -p postern-dns --example serve)
  SERVE=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve
fi
HZ=$(getconf CLK_TCK)
RESULTS="$WORK/results.tsv"
: > "$RESULTS"

now() { date +%s.%N; }
# answer NAME TYPE: the first answer's data, from 127.0.0.3.
answer() { dig +short +time=1 +tries=1 -p $PORT @127.0.0.1 -b 127.0.0.3 "$1" "${2:-A}" 2>/dev/null | head -1; }
# wait_for NAME TYPE EXPECTED: polls until the answer is EXPECTED (60 s at most).
wait_for() {
  local deadline=$(( $(date +%s) + 60 ))
  until [ "$(answer "$1" "$2")" = "$3" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "no answer $3 for $1" >&2; return 1; }
    sleep 0.01
  done
}
# The process and its descendants (NSD forks its servers).
tree() { local p=$1; echo "$p"; for c in $(pgrep -P "$p" || true); do tree "$c"; done; }
# utime + stime (fields 14 and 15; the command name before them may hold spaces).
cpu_ticks() { local t=0 p; for p in $(tree "$PID"); do
    t=$(( t + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0) )); done; echo $t; }
# Proportional set size, so that pages NSD's forked servers share count once.
rss_mib() { local t=0 p; for p in $(tree "$PID"); do
    t=$(( t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0) )); done; echo "scale=1; $t / 1024" | bc; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; printf '  %-18s %-16s %s\n' "$1" "$2" "$3"; }
elapsed() { echo "scale=3; ($(now) - $1) / 1" | bc; }

perf() { # server, label, dnsperf args...
  local server=$1 label=$2; shift 2
  local before after qps done cpu
  before=$(cpu_ticks)
  dnsperf -s 127.0.0.1 -p $PORT -a 127.0.0.3 -d "$WORK/queries.txt" -l "$SECS" "$@" > "$WORK/perf.out" 2>&1
  after=$(cpu_ticks)
  qps=$(awk '/Queries per second/ {printf "%.0f", $4}' "$WORK/perf.out")
  done=$(awk '/Queries completed/ {print $3}' "$WORK/perf.out")
  cpu=$(echo "scale=3; ($after - $before) / $HZ" | bc)
  record "$server" "$label qps" "$qps"
  record "$server" "$label qps/cpu-s" "$(echo "scale=0; $done / $cpu" | bc)"
}

p99() { # server
  dnsperf -s 127.0.0.1 -p $PORT -a 127.0.0.3 -d "$WORK/queries.txt" -l 3 -Q 5000 -c 8 -v 2> /dev/null |
    awk '/^> / {print $NF * 1000}' | sort -n > "$WORK/lat.txt"
  record "$1" "p99 ms @5k" "$(awk '{a[NR] = $1} END {printf "%.3f", a[int(NR * 0.99)]}' "$WORK/lat.txt")"
}

# edit ZONE SERIAL ADDRESS: rewrites the zone's host0 A record and its serial.
edit() {
  sed -e "s/hostmaster 1 /hostmaster $2 /" -e "s/^host0 IN A .*/host0 IN A $3/" "$WORK/$1.zone.orig" > "$WORK/$1.zone.new"
  mv "$WORK/$1.zone.new" "$WORK/$1.zone"
}

reload() { # server, zone, serial, address
  local server=$1 t0
  t0=$(now)
  edit "$2" "$3" "$4"
  case $server in
    knot*) knotc -s "$WORK/knot.sock" -b zone-reload "$2" > /dev/null ;;
    bind*) rndc -k "$WORK/rndc.key" -s 127.0.0.1 -p $RNDC_PORT reload "$2" IN internal > /dev/null ;;
  esac
  wait_for "host0.$2" A "$4"
  elapsed "$t0"
}

run() { # server, command...
  local server=$1 t0; shift
  cp "$WORK/big.test.zone.orig" "$WORK/big.test.zone"
  cp "$WORK/small.test.zone.orig" "$WORK/small.test.zone"
  rm -rf "$WORK/knotdb"
  t0=$(now)
  "$@" > "$WORK/$server.log" 2>&1 &
  PID=$!
  wait_for host69999.big.test A 10.1.17.111
  record "$server" "cold start s" "$(elapsed "$t0")"
  record "$server" "cold start CPU s" "$(echo "scale=2; $(cpu_ticks) / $HZ" | bc)"
  record "$server" "PSS MiB start" "$(rss_mib)"
  dnsperf -s 127.0.0.1 -p $PORT -a 127.0.0.3 -d "$WORK/queries.txt" -l 2 -c 8 > /dev/null 2>&1 # warm-up
  perf "$server" "udp c8" -c 8
  perf "$server" "udp c64" -c 64
  perf "$server" "tcp c8" -c 8 -m tcp
  p99 "$server"
  case $server in
    nsd*) ;;
    *)
      record "$server" "reload small s" "$(reload "$server" small.test 2 192.0.2.2)"
      local i
      for i in 2 3 4 5; do
        record "$server" "reload big s" "$(reload "$server" big.test $i "192.0.2.$i")"
      done
      sleep 2 # the swap is over: the old zones are freed
      record "$server" "PSS MiB reloaded" "$(rss_mib)"
      ;;
  esac
  stop
}

echo "zones: 1,000 + 100,000 + 5 records; $(wc -l < "$WORK/queries.txt") queries in the file;" \
  "${SECS}s per dnsperf run; $ROUNDS rounds; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  run "postern" "$SERVE" "$WORK/postern.toml" 127.0.0.1:$PORT
  if [ -n "${BASELINE:-}" ]; then run "postern baseline" "$BASELINE" "$WORK/postern.toml" 127.0.0.1:$PORT; fi
  run "knot $(knotd -V | awk '{print $NF}')" knotd -c "$WORK/knot.conf"
  run "nsd $(nsd -v 2>&1 | awk 'NR==1 {print $NF}')" nsd -d -c "$WORK/nsd.conf"
  run "bind9 $(named -v | awk '{print $2}' | cut -d- -f1)" named -g -c "$WORK/named.conf" -u root
done

echo
echo "min / median / max over $ROUNDS rounds"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
servers, metrics = [], []
for line in open(sys.argv[1]):
    server, metric, value = line.rstrip("\n").split("\t")
    if not value: continue
    if server not in servers: servers.append(server)
    if metric not in metrics: metrics.append(metric)
    rows.setdefault((server, metric), []).append(float(value))
def cell(values):
    if not values: return "-"
    fmt = (lambda v: f"{v:.0f}") if max(values) >= 100 else (lambda v: f"{v:.2f}")
    return f"{fmt(min(values))} / {fmt(statistics.median(values))} / {fmt(max(values))}"
print("| metric | " + " | ".join(servers) + " |")
print("|---|" + "---|" * len(servers))
for m in metrics:
    print(f"| {m} | " + " | ".join(cell(rows.get((s, m), [])) for s in servers) + " |")
PY
