#!/usr/bin/env bash
# Floods a release build on loopback (tests/load/flood_memory.py) and prints
# its RSS before, during and AFTER seconds after. Fails when the server dies
# or one of the three calls kept up through the flood is lost.
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${PORT:-15970}
AFTER=${AFTER:-60}
cargo build --release -q --bin confab
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
./target/release/confab --sip-listen 127.0.0.1:$PORT --grpc-listen 127.0.0.1:$((PORT + 1)) \
  --data-dir "$dir/data" --log warn > "$dir/log" 2>&1 &
pid=$!
sleep 2
status=0
python3 tests/load/flood_memory.py 127.0.0.1:$PORT "$pid" --after "$AFTER" || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
  echo "flood: the server died"; tail -20 "$dir/log"; exit 1
fi
echo "flood: server healthy; warnings it logged: $(grep -c WARN "$dir/log" || true)"
exit $status
