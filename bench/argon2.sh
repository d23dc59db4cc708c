#!/usr/bin/env bash
# Time of one Argon2id password verification with Postern's parameters (what one login guess costs
# the server), release build, min/median/max of 20 on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p postern-store --example argon2_verify_time
