#!/usr/bin/env bash
# Runs the bench's `warm` workload as a pod would (../shared/bench/sandbox.sh), twice on one
# --cache-dir volume, the second time after an app-only change and with --timings, and prints
# where the rebuild's time went (one line per span of the Chrome trace).
#
#   scripts/warm-trace.sh [EXECUTOR]      default bin/executor; needs ../shared/bench/setup.sh run
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-bin/executor}")
bench=$(realpath ../shared/bench)
ctx=$(mktemp -d /tmp/warm-trace-ctx.XXXX)
cache=$(mktemp -d /tmp/warm-trace-cache.XXXX)
trap 'rm -rf "$ctx" "$cache"' EXIT
cp "$bench"/workloads/warm/* "$ctx"/
(cd "$ctx" && sh prepare.sh)
args=(--force --context dir:///workspace --dockerfile /workspace/Dockerfile
	--destination localhost:5000/bench/warm:trace --insecure --insecure-pull
	--cache=true --cache-repo "localhost:5000/bench/cache-trace$RANDOM" --cache-dir /cache)
SBX_CACHE=$cache bash "$bench/sandbox.sh" "$bin" "$ctx" "${args[@]}" >/dev/null 2>&1
(cd "$ctx" && sh prepare.sh)
SBX_TIME=$ctx/time SBX_CACHE=$cache bash "$bench/sandbox.sh" "$bin" "$ctx" "${args[@]}" --timings /workspace/trace.json
echo "wall s, peak RSS KiB of the rebuild: $(tail -n 1 "$ctx/time")"
python3 - "$ctx/trace.json" <<'PY'
import json, sys
events = sorted((e for e in json.load(open(sys.argv[1]))["traceEvents"] if e.get("ph") == "X"), key=lambda e: e["ts"])
t0 = events[0]["ts"]
for e in events:
    print(f'{(e["ts"] - t0) / 1000:8.0f} ms {e["dur"] / 1000:8.0f} ms  {e["name"][:100]}')
PY
