#!/usr/bin/env bash
# The main job on the embedded default, on a new machine: install, start the local Conversions API
# sandbox, `meltano run tap-demo-orders target-openai-capi`, then show what arrived.
# Needs python3 (3.10+) and access to PyPI. Everything stays inside the repository (.venv/,
# .meltano/, output/). DEMO_PORT picks another port for the sandbox (default 8787).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${DEMO_PORT:-8787}"
PIXEL_ID="px_demo"
SANDBOX_KEY="sk-svcacct-demo-sandbox-only"  # the dummy key meltano.yml's dev environment uses
OUT="output"

echo "== Installing (scripts/setup.sh)"
scripts/setup.sh
PY=.venv/bin/python

port_busy() {
  "$PY" - "$1" <<'EOF'
import socket, sys
with socket.socket() as s:
    s.settimeout(0.5)
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

if port_busy "$PORT"; then
  echo "Port $PORT on 127.0.0.1 is already in use (another sandbox, or something else)." >&2
  echo "Stop it, or run on another port: DEMO_PORT=8788 $0" >&2
  exit 1
fi

mkdir -p "$OUT"
echo "== Starting the sandbox on 127.0.0.1:$PORT (log: $OUT/sandbox.log)"
.venv/bin/openai-capi-sandbox --port "$PORT" --api-key "$SANDBOX_KEY" --pixel-id "$PIXEL_ID" \
  >"$OUT/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill "$SANDBOX_PID" 2>/dev/null || true; wait "$SANDBOX_PID" 2>/dev/null || true' EXIT

BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 50); do
  if "$PY" -c "import urllib.request; urllib.request.urlopen('$BASE/sandbox/stats', timeout=1)" \
    2>/dev/null; then
    break
  fi
  if ! kill -0 "$SANDBOX_PID" 2>/dev/null; then
    echo "The sandbox did not start:" >&2
    cat "$OUT/sandbox.log" >&2
    exit 1
  fi
  sleep 0.2
done

export TARGET_OPENAI_CAPI_API_URL="$BASE/v1/events"
export MELTANO_ENVIRONMENT=dev
rm -f "$OUT/capi-dead-letter.jsonl"  # one demo run's rejections, not every run's

echo "== meltano install"
.venv/bin/meltano install

echo "== meltano run tap-demo-orders target-openai-capi (log: $OUT/meltano-run.log)"
.venv/bin/meltano run tap-demo-orders target-openai-capi 2>&1 | tee "$OUT/meltano-run.log"

echo
echo "== What arrived at the sandbox"
"$PY" - "$BASE" "$PIXEL_ID" "$OUT" <<'EOF'
import json, pathlib, sys, urllib.request

base, pixel, out = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])

def get(path):
    with urllib.request.urlopen(base + path, timeout=5) as answer:
        return json.load(answer)

print("GET /sandbox/stats")
print(json.dumps(get("/sandbox/stats"), indent=2))
events = get(f"/sandbox/events?pid={pixel}")["events"]
print(f"\n{len(events)} events stored for pixel {pixel}; the first two:")
print(json.dumps(events[:2], indent=2))
by_currency = {}
for event in events:
    data = event["data"]
    by_currency[data["currency"]] = by_currency.get(data["currency"], 0) + data["amount"]
print("\nOrder value by currency (minor units):", json.dumps(by_currency, sort_keys=True))
with_oppref = sum(1 for event in events if "oppref" in event)
print(f"Events carrying an oppref: {with_oppref} of {len(events)}")

summary = [l for l in (out / "meltano-run.log").read_text().splitlines() if "Run summary" in l]
print("\n" + (summary[-1].split("target-openai-capi", 1)[-1].strip() if summary else
      "No run summary found in the log"))
dead = out / "capi-dead-letter.jsonl"
if dead.exists():
    rejected = [json.loads(l) for l in dead.read_text().splitlines() if '"dead_letter"' in l]
    for line in rejected:
        letter = line["dead_letter"]
        print(f"Rejected {letter['key']} at {letter['stage']}: {letter['reason']} (see {dead})")
EOF

echo
echo "The sandbox's event stream page (latest events, their identifiers, rejected batches): $BASE/"
if [ "${DEMO_KEEP_SANDBOX:-}" = 1 ]; then
  echo "The sandbox keeps running for you to browse it; Ctrl-C stops it."
  wait "$SANDBOX_PID" || true
else
  echo "(It stops with this script: DEMO_KEEP_SANDBOX=1 ./scripts/demo.sh keeps it open.)"
fi
