#!/usr/bin/env bash
# dialtone benchmarks. Each prints its figures beside a baseline measured in the same run.
#   bench/run.sh            # frame building (ratio vs baseline) + a 60 s call's pacing
#   SECONDS_OF_CALL=20 bench/run.sh
# Load capacity against the shared harness's sink (floorgen, loadgen, peers, ratios):
#   bench/capacity.py            (see docs/load.md)
# Full calls (load --webhook, <Connect><Stream> to the same sink) beside --stream and floorgen:
#   bench/capacity.py --gens dialtone-calls dialtone floorgen --ladder 250 500 1000
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p dialtone -p dialtone-bench

echo "== frame building"
target/release/frames

secs=${SECONDS_OF_CALL:-60}
echo
echo "== pacing of one ${secs} s call (reference app, release build)"
# The built-in caller audio lasts 6.72 s; the tail keeps the stream open for the rest.
tail=$(python3 -c "print(max(0.0, $secs - 6.72))")
out=$(mktemp)
target/release/dialtone call --tail "${tail}s" --json --quiet > "$out" || true
python3 - "$out" "$secs" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); secs = float(sys.argv[2])
s = r["streams"][0]; l = s["lateness"]
expected = int(round(secs * 50))
print(f"  status {r['status']}  frames sent {s['frames_sent']} (schedule: {expected})")
print(f"  lateness against start + 20 ms*k: p50 {l['p50_ms']:.3f} ms  p99 {l['p99_ms']:.3f} ms  max {l['max_ms']:.3f} ms")
PY
rm -f "$out"
