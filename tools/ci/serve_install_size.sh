#!/usr/bin/env bash
# What `deno task serve` puts on disk on a fresh clone with an empty Deno cache: clone the committed tree, start the
# server with its own DENO_DIR, wait until it listens, stop it, and count the Deno cache plus node_modules (du counts
# hard links once). Prints one line: "serve install: N MB (M npm packages)".
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
git clone -q "$repo" "$tmp/clone"
cd "$tmp/clone"
export DENO_DIR="$tmp/deno-dir" PORT=0 DATA_DIR="$tmp/data"
deno task serve >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 240); do
  grep -q "listening on" "$tmp/serve.log" && break
  kill -0 "$pid" 2>/dev/null || { echo "serve exited early:"; tail -20 "$tmp/serve.log"; exit 1; }
  sleep 0.5
done
grep -q "listening on" "$tmp/serve.log" || { echo "serve did not start in 120 s"; tail -20 "$tmp/serve.log"; exit 1; }
kill "$pid"; wait "$pid" 2>/dev/null || true
mb=$(du -scm "$DENO_DIR" node_modules 2>/dev/null | tail -1 | cut -f1)
reg="$DENO_DIR/npm/registry.npmjs.org"
pkgs=$( (ls -d "$reg"/[!@]*/*/ "$reg"/@*/*/*/ 2>/dev/null || true) | wc -l)
echo "serve install: ${mb} MB (${pkgs} npm packages)"
