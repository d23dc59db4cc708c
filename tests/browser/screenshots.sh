#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png, the pictures in the README. Run by hand (not part of CI)
# after changing a page: starts target/debug/postern on a scratch directory with the example
# zones (zones/), fills it with demo data through the UI and photographs the main pages with
# headless chromium (tests/browser/screenshots.mjs).
# Needs: cargo build --bin postern, npm ci --prefix tests/browser, chromium, python3.
# Usage: bash tests/browser/screenshots.sh [OUT_DIR]   (default docs/screenshots)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$repo/docs/screenshots}
dir=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
cat > "$dir/postern.toml" <<TOML
data_dir = "data"
hostname = "mail.example.test"
database_url = "sqlite://$dir/postern.db"

[listeners]
admin = ["127.0.0.1:0"]
dns = ["127.0.0.1:0"]
smtp = ["127.0.0.1:0"]
submissions = ["127.0.0.1:0"]
imaps = ["127.0.0.1:0"]

TOML
sed "s|zones_dir = \".\"|zones_dir = \"$repo/zones\"|" "$repo/zones/dns.example.toml" >> "$dir/postern.toml"
"$repo/target/debug/postern" --config "$dir/postern.toml" serve > "$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
  [[ -f $dir/data/listeners.json ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
  sleep 0.1
done
admin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listeners"]["admin"][0])' "$dir/data/listeners.json")
password=$(grep -o 'password "[0-9a-f]*"' "$dir/serve.log" | head -1 | cut -d'"' -f2)
node "$repo/tests/browser/screenshots.mjs" "http://$admin" "$password" "$out"
ls -l "$out"
