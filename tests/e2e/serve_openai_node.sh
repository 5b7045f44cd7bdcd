#!/usr/bin/env bash
# Drives `lathe serve` with the official openai npm package (tests/serve/node, installed by
# scripts/setup.sh with `npm ci`): chat, completions, streaming, models listing, errors.
# Skipped (exit 77) with a message when Node or the package is missing. $1 = the lathe binary.
set -euo pipefail
lathe="$1"
node_dir=tests/serve/node
command -v node >/dev/null || { echo "node is missing; skipping the openai-node client test"; exit 77; }
[[ -f $node_dir/node_modules/openai/package.json ]] || {
  echo "$node_dir/node_modules/openai is missing (scripts/setup.sh installs it with npm ci); skipping"
  exit 77
}
command -v python3 >/dev/null || { echo "python3 is missing (it writes the test adapter); skipping"; exit 77; }
work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$lathe" init-model --preset tiny --out "$work/tiny" --seed 5 >/dev/null
python3 tests/e2e/write_lora_adapter.py "$work/tiny" "$work/adapter" --rank 8 --seed 2
"$lathe" serve --model "$work/tiny" --port 0 --served-model-name tiny --lora-modules "inventory=$work/adapter" \
  --api-key node-test 2>"$work/serve.log" &
pid=$!
url=""
for _ in $(seq 1 300); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/serve.log" | head -1 || true)
  [[ -n $url ]] && curl -sf "$url/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "server exited: $(cat "$work/serve.log")"
  sleep 0.1
done
[[ -n $url ]] || fail "server did not come up: $(cat "$work/serve.log")"

LATHE_BASE_URL="$url/v1" LATHE_API_KEY=node-test LATHE_MODEL=tiny LATHE_ADAPTER=inventory \
  node --test "$node_dir/openai_client.test.mjs"
kill -TERM "$pid"
wait "$pid" || fail "server exit status after SIGTERM"
pid=""
echo "serve_openai_node: ok"
