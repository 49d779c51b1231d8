#!/usr/bin/env bash
# SIPp OPTIONS at increasing rates against a release build on loopback.
# Prints, per rate, the successful and failed transactions; the figure is the
# highest rate with zero failures. Bounded: each step runs RATE*SECS requests.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${SECS:-5}
RATES=${RATES:-"1000 2000 4000 6000 8000 10000 12000"}
PORT=${PORT:-15960}
cargo build --release -q
./target/release/confab --sip-listen 127.0.0.1:$PORT --rate-per-source 1000000 --log warn &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
sleep 1
work=$(mktemp -d)
for rate in $RATES; do
  n=$((rate * SECS))
  t0=$(date +%s.%N)
  (cd "$work" && timeout $((SECS * 4 + 20)) sipp 127.0.0.1:$PORT -sf "$OLDPWD/tests/sipp/options.xml" -s room \
      -i 127.0.0.1 -p 0 -m $n -r $rate -l $((rate * 2)) -nostdin -trace_stat -stf stat.csv >/dev/null 2>&1) || true
  last=$(tail -1 "$work/stat.csv")
  ok=$(echo "$last" | awk -F';' '{print $16}')
  bad=$(echo "$last" | awk -F';' '{print $18}')
  t1=$(date +%s.%N)
  achieved=$(echo "$n $t0 $t1" | awk '{printf "%.0f", $1 / ($3 - $2)}')
  echo "target=$rate/s achieved=${achieved}/s requests=$n successful=$ok failed=$bad"
  rm -f "$work/stat.csv"
done
