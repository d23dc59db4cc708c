#!/usr/bin/env bash
# Zone transfers under load: while five AXFRs of a 100,000-record zone run back to back, how
# long do other clients' queries take? Postern, BIND9 and Knot DNS serve the same zone on
# loopback, one server at a time, rounds interleaved (postern, bind, knot, postern, ...). In each
# round, five `dig AXFR` loops from 127.0.0.1 keep transfers running while a prober from 127.0.0.2
# times UDP queries and TCP queries (a new connection each, like a stub falling back to TCP).
# Prints per server min/median/99th percentile/max in ms over all rounds, the AXFRs completed per second, and
# the answer to a transfer beyond each server's limit on concurrent outgoing transfers.
#
# Needs the Debian packages bind9, knot, bind9-dnsutils. Usage:
#   bench/dns-transfer.sh [rounds, default 3] [seconds per round, default 8] [servers, default "postern bind knot"]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-3}
SECONDS_PER_ROUND=${2:-8}
SERVERS=${3:-postern bind knot}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_workdir transfer
PORT=15355
for tool in knotd named dig python3; do
  command -v "$tool" > /dev/null || { echo "missing $tool: apt-get install knot bind9 bind9-dnsutils" >&2; exit 1; }
done

python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
lines = ["$ORIGIN big.test.", "$TTL 3600", "@ IN SOA ns1 hostmaster 1 7200 900 1209600 300",
         "@ IN NS ns1", "ns1 IN A 192.0.2.1"]
for i in range(100000):
    lines.append(f"h{i} IN A 10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
open(f"{work}/big.test.zone", "w").write("\n".join(lines) + "\n")
# For the limit check: about 10 MB, more than the kernel's socket buffers hold, so that a
# transfer to a slow reader stays in progress on the server.
lines = ["$ORIGIN fat.test.", "$TTL 3600", "@ IN SOA ns1 hostmaster 1 7200 900 1209600 300",
         "@ IN NS ns1", "ns1 IN A 192.0.2.1"]
for i in range(60000):
    lines.append(f'h{i} IN TXT "{"x" * 150}"')
open(f"{work}/fat.test.zone", "w").write("\n".join(lines) + "\n")
PY

cat > "$work/postern.toml" <<CONF
[dns]
zones_dir = "."
watch = false
[[dns.view]]
name = "all"
match_clients = ["any"]
allow_transfer = ["127.0.0.1"]
[[dns.view.zone]]
name = "big.test"
file = "big.test.zone"
[[dns.view.zone]]
name = "fat.test"
file = "fat.test.zone"
CONF
mkdir -p "$work/knot/db" "$work/bind"
cp "$work/big.test.zone" "$work/fat.test.zone" "$work/knot/"
cp "$work/big.test.zone" "$work/fat.test.zone" "$work/bind/"
cat > "$work/knot/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$PORT
    rundir: $work/knot
database:
    storage: $work/knot/db
acl:
  - id: xfr
    address: 127.0.0.1
    action: transfer
zone:
  - domain: big.test
    file: $work/knot/big.test.zone
    zonefile-sync: -1
    journal-content: none
    acl: xfr
  - domain: fat.test
    file: $work/knot/fat.test.zone
    zonefile-sync: -1
    journal-content: none
    acl: xfr
CONF
cat > "$work/bind/named.conf" <<CONF
options { directory "$work/bind"; listen-on port $PORT { 127.0.0.1; }; listen-on-v6 { none; };
          recursion no; pid-file "$work/bind/named.pid"; allow-transfer { 127.0.0.1; }; };
zone "big.test" { type primary; file "big.test.zone"; };
zone "fat.test" { type primary; file "fat.test.zone"; };
CONF

(cd "$ROOT" && cargo build -q --release -p postern-dns --example serve)
SERVE=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve

# The prober: queries from 127.0.0.2 for the whole round, alternating UDP and TCP; appends
# "udp ms" / "tcp ms" lines to the given file.
cat > "$work/probe.py" <<'PY'
import random, socket, struct, sys, time
port, seconds, out = int(sys.argv[1]), float(sys.argv[2]), open(sys.argv[3], "a")
def query(i):
    name = b"".join(bytes([len(l)]) + l for l in f"h{i}.big.test".encode().split(b".")) + b"\0"
    return struct.pack(">HHHHHH", i & 0xffff, 0, 1, 0, 0, 0) + name + b"\0\1\0\1"
def udp(i):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.2", 0)); s.settimeout(10)
        s.sendto(query(i), ("127.0.0.1", port)); s.recv(4096)
def tcp(i):
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0)); s.settimeout(10)
        s.connect(("127.0.0.1", port))
        q = query(i); s.sendall(struct.pack(">H", len(q)) + q)
        n = struct.unpack(">H", s.recv(2))[0]
        while n > 0: n -= len(s.recv(n))
end = time.monotonic() + seconds
while time.monotonic() < end:
    for kind, f in (("udp", udp), ("tcp", tcp)):
        i = random.randrange(100000)
        t = time.monotonic()
        try:
            f(i)
            out.write(f"{kind} {(time.monotonic() - t) * 1000:.2f}\n")
        except OSError:
            out.write(f"{kind} 10000\n")
    time.sleep(0.02)
PY

# Waits until the last name is served.
wait_ready() {
  for _ in $(seq 600); do
    dig +time=1 +tries=1 -p $PORT @127.0.0.1 h99999.big.test A +short 2>/dev/null | grep -q 10.1.134.159 && return 0
    sleep 0.1
  done
  echo "server did not come up" >&2; return 1
}

# One round: start the server, five AXFR loops, the prober, stop everything.
round() { # name, command...
  local name=$1; shift
  "$@" > "$work/$name.log" 2>&1 &
  local pid=$! loops=()
  pids+=("$pid")
  wait_ready
  local stop=$((SECONDS + SECONDS_PER_ROUND))
  for i in 1 2 3 4 5; do
    ( while [ $SECONDS -lt $stop ]; do
        dig -b 127.0.0.1 -p $PORT @127.0.0.1 big.test AXFR +tries=1 +time=10 > /dev/null 2>&1 && echo >> "$work/$name.axfr"
      done ) &
    loops+=($!)
  done
  python3 "$work/probe.py" $PORT "$SECONDS_PER_ROUND" "$work/$name.times"
  wait "${loops[@]}" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# A sixth transfer beyond a limit of five, read slowly by five holders: the RCODE it gets.
over_limit() { # name, command...
  local name=$1; shift
  "$@" > "$work/$name-limit.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_ready
  python3 - $PORT <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
def axfr(i):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port)); s.settimeout(10)
    q = struct.pack(">HHHHHH", i, 0, 1, 0, 0, 0) + b"\3fat\4test\0\0\xfc\0\1"
    s.sendall(struct.pack(">H", len(q)) + q)
    return s
holders = [axfr(i) for i in range(5)]
time.sleep(1)
s = axfr(99)
try:
    head = s.recv(6)
    print(["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"][head[5] & 15] if len(head) == 6 else "closed")
except OSError as e:
    print(f"no answer ({e.__class__.__name__})")
PY
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

declare -A cmd
cmd[postern]="$SERVE $work/postern.toml 127.0.0.1:$PORT"
cmd[bind]="named -g -c $work/bind/named.conf -u root"
cmd[knot]="knotd -c $work/knot/knot.conf"
for r in $(seq "$ROUNDS"); do
  for s in $SERVERS; do
    echo "round $r: $s" >&2
    # shellcheck disable=SC2086
    round "$s" ${cmd[$s]}
  done
done

stats() { # file, kind
  awk -v k="$2" '$1 == k { print $2 }' "$1" | sort -n | awk '
    { v[NR] = $1 } END { printf "%8.2f %8.2f %8.2f %8.2f %6d", v[1], v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.5)], v[NR], NR }'
}
echo "zone: 100,000 A records; 5 concurrent AXFR loops; $ROUNDS rounds x ${SECONDS_PER_ROUND}s interleaved; $(nproc) cores"
printf '%-8s %-4s %8s %8s %8s %8s %6s %10s\n' server kind "min ms" "med ms" "p99 ms" "max ms" n "AXFR/s"
for s in $SERVERS; do
  axfrs=$(wc -l < "$work/$s.axfr" 2>/dev/null || echo 0)
  rate=$(echo "scale=1; $axfrs / ($ROUNDS * $SECONDS_PER_ROUND)" | bc)
  printf '%-8s %-4s %s %10s\n' "$s" udp "$(stats "$work/$s.times" udp)" "$rate"
  printf '%-8s %-4s %s\n' "$s" tcp "$(stats "$work/$s.times" tcp)"
done
echo "a 6th transfer while 5 are held open (limit 5: Postern max_transfers, BIND transfers-out):"
sed -i 's/^\[dns\]$/[dns]\nmax_transfers = 5/' "$work/postern.toml"
sed -i 's/allow-transfer { 127.0.0.1; };/allow-transfer { 127.0.0.1; }; transfers-out 5;/' "$work/bind/named.conf"
for s in $SERVERS; do
  # shellcheck disable=SC2086
  printf '%-8s %s\n' "$s" "$(over_limit "$s" ${cmd[$s]})"
done
