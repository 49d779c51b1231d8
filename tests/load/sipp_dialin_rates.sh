#!/usr/bin/env bash
# SIPp dial-in load against a release build on loopback: each call is
# INVITE/200/ACK, 3 s of G.711 RTP (sip-tester's pcap), BYE. Per rate it
# prints successful and failed calls, the peak of concurrent calls, and
# the server's CPU time per call (from /proc). Bounded: RATE*SECS calls.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${SECS:-10}
RATES=${RATES:-"10 25 50 100"}
PORT=${PORT:-15970}
cargo build --release -q
./target/release/confab --sip-listen 127.0.0.1:$PORT --rtp-ports 30000-39999 --max-room-size 10000 \
    --rate-per-source 1000000 --max-calls-per-source 100000 --log warn &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
sleep 1
work=$(mktemp -d)
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
for rate in $RATES; do
  n=$((rate * SECS))
  before=$(cpu)
  (cd "$work" && timeout $((SECS * 3 + 60)) sipp 127.0.0.1:$PORT -sf "$OLDPWD/tests/sipp/dialin_pcap.xml" -s load \
      -i 127.0.0.1 -p 0 -mi 127.0.0.1 -mp 16000 -m $n -r $rate -l $((rate * 10)) -nostdin \
      -trace_stat -stf stat.csv -fd 1 >/dev/null 2>&1) || true
  after=$(cpu)
  last=$(tail -1 "$work/stat.csv")
  ok=$(echo "$last" | awk -F';' '{print $16}')
  bad=$(echo "$last" | awk -F';' '{print $18}')
  peak=$(awk -F';' 'NR>1 && $14+0>m {m=$14+0} END {print m+0}' "$work/stat.csv")
  cpu_ms=$(( (after - before) * 1000 / ticks ))
  echo "rate=$rate/s calls=$n successful=$ok failed=$bad peak_concurrent=$peak server_cpu_ms=$cpu_ms cpu_ms_per_call=$(( cpu_ms / (n > 0 ? n : 1) ))"
  rm -f "$work/stat.csv"
done
