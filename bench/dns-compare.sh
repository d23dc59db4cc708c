#!/usr/bin/env bash
# Compare Postern's answers with BIND9 and Knot DNS for tricky queries on the same zone
# (zones/external/example.test.zone). Needs: bind9, knot, bind9-dnsutils (dig).
# Usage: bench/dns-compare.sh            (prints a per-query verdict and the differences)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/postern-dns-compare.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

BIND_PORT=15301 KNOT_PORT=15302
cp "$ROOT"/zones/external/* "$WORK/"
cat > "$WORK/named.conf" <<CONF
options { directory "$WORK"; listen-on port $BIND_PORT { 127.0.0.1; }; listen-on-v6 { none; };
          recursion no; pid-file "$WORK/named.pid"; allow-transfer { any; }; };
zone "example.test" { type master; file "example.test.zone"; };
CONF
cat > "$WORK/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$KNOT_PORT
    rundir: $WORK
database:
    storage: $WORK/knotdb
zone:
  - domain: example.test
    file: $WORK/example.test.zone
    zonefile-sync: -1
    journal-content: none
CONF
cat > "$WORK/postern.toml" <<CONF
[dns]
zones_dir = "."
watch = false
[[dns.view]]
name = "all"
[[dns.view.zone]]
name = "example.test"
file = "example.test.zone"
CONF

(cd "$ROOT" && cargo build -q --release -p postern-dns --example serve)
SERVE=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve
named -g -c "$WORK/named.conf" -u root > "$WORK/named.log" 2>&1 & PIDS+=($!)
knotd -c "$WORK/knot.conf" > "$WORK/knot.log" 2>&1 & PIDS+=($!)
"$SERVE" "$WORK/postern.toml" 127.0.0.1:0 > "$WORK/postern.out" 2> "$WORK/postern.log" & PIDS+=($!)
for _ in $(seq 50); do grep -q ready "$WORK/postern.out" 2>/dev/null && break; sleep 0.1; done
POSTERN_PORT=$(head -1 "$WORK/postern.out" | cut -d: -f2)
sleep 1

# Normalised answer: rcode, AA/TC flags, then each section's records sorted (TTL kept).
norm() { # port, dig args...
  local port=$1; shift
  dig -p "$port" @127.0.0.1 +noall +comments +answer +authority +additional +nocookie "$@" 2>&1 |
    awk '
      /->>HEADER<<-/ { for (i = 1; i <= NF; i++) if ($i == "status:") { s = $(i+1); sub(",", "", s); print "rcode " s } }
      /^;; flags:/ { f = $0; sub(/;; flags: /, "", f); sub(/;.*/, "", f); n = split(f, a, " ");
                      out = "flags"; for (i = 1; i <= n; i++) if (a[i] == "aa" || a[i] == "tc") out = out " " a[i]; print out }
      /^;; [A-Z]+ SECTION:/ { sec = $2; next }
      /^;/ || /^$/ { next }
      { $1 = $1; print sec " " $0 }' | sort
}

QUERIES=(
  "www.example.test A"
  "WwW.ExAmPlE.tEsT A"
  "nope.example.test A"
  "www.example.test MX"
  "example.test MX"
  "example.test NS"
  "example.test SOA"
  "_imaps._tcp.example.test SRV"
  "webmail.example.test A"
  "portal.example.test CNAME"
  "anything.apps.example.test A"
  "a.b.apps.example.test TXT"
  "exists.apps.example.test A"
  "lab.example.test A"
  "x.lab.example.test A"
  "dev.example.test NS"
  "host.dev.example.test A"
  "dev.example.test DS"
  "ns.dev.example.test A"
  "www.example.org A"
  "big.example.test TXT +ignore"
  "big.example.test TXT +ignore +noedns"
  "example.test TXT +noedns"
  "www.example.test ANY +notcp"
  "example.test A +norec"
)
same=0 differ=0
for q in "${QUERIES[@]}"; do
  # shellcheck disable=SC2086
  p=$(norm "$POSTERN_PORT" $q); b=$(norm "$BIND_PORT" $q); k=$(norm "$KNOT_PORT" $q)
  verdict=""
  [ "$p" == "$b" ] && verdict+="=bind " || verdict+="!bind "
  [ "$p" == "$k" ] && verdict+="=knot" || verdict+="!knot"
  printf '%-45s %s\n' "$q" "$verdict"
  if [ "$p" != "$b" ] || [ "$p" != "$k" ]; then
    differ=$((differ + 1))
    diff <(echo "$b") <(echo "$p") | sed 's/^/    bind< postern> /' | grep -v '^    bind< postern> [0-9]' || true
    diff <(echo "$k") <(echo "$p") | sed 's/^/    knot< postern> /' | grep -v '^    knot< postern> [0-9]' || true
  else
    same=$((same + 1))
  fi
done
echo "identical to both: $same, differing from at least one: $differ"
