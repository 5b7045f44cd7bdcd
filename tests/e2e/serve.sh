#!/usr/bin/env bash
# Black-box checks of `lathe serve`: it binds 127.0.0.1 unless told otherwise; /health,
# /v1/models (with an adapter), completions, streaming and chat answer over curl; an API key
# from --api-key or VLLM_API_KEY makes /v1 routes 401 without it; SIGTERM during a streaming
# request lets the request finish and the process exit 0; bad flags are one-line errors.
# $1 = the lathe binary.
set -euo pipefail
lathe="$1"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing; skipping the serve checks"; exit 77; }
command -v python3 >/dev/null || { echo "python3 is missing (it writes the test adapter); skipping"; exit 77; }

"$lathe" init-model --preset tiny --out "$work/tiny" --seed 3 >/dev/null
python3 tests/e2e/write_lora_adapter.py "$work/tiny" "$work/adapter" --rank 8 --seed 1

# start_server LOG ARGS...: starts `lathe serve` on a free port; sets $pid and $url once
# /health answers.
start_server() {
  local log=$1
  shift
  "$lathe" serve --model "$work/tiny" --port 0 "$@" 2>"$log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 300); do
    url=$(grep -o 'http://[0-9.]*:[0-9]*' "$log" | head -1 || true)
    if [[ -n $url ]] && curl -sf "$url/health" >/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || fail "server exited: $(cat "$log")"
    sleep 0.1
  done
  fail "server did not come up: $(cat "$log")"
}

post() {  # post URL JSON [curl args...]
  local u=$1 body=$2
  shift 2
  curl -s -X POST -H 'Content-Type: application/json' -d "$body" "$@" "$u"
}

start_server "$work/serve.log" --served-model-name tiny --lora-modules "inventory=$work/adapter"
[[ $url == http://127.0.0.1:* ]] || fail "not bound to 127.0.0.1 by default: $url"

models=$(curl -s "$url/v1/models")
echo "$models" | grep -q '"id":"tiny"' || fail "models lacks the base: $models"
echo "$models" | grep -q '"id":"inventory"' || fail "models lacks the adapter: $models"
echo "$models" | grep -q '"parent":"tiny"' || fail "the adapter card does not name its parent: $models"

out=$(post "$url/v1/completions" '{"model": "tiny", "prompt": "SELECT", "max_tokens": 5, "temperature": 0}')
echo "$out" | grep -q '"object":"text_completion"' || fail "completion: $out"
base_text=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
out=$(post "$url/v1/completions" '{"model": "inventory", "prompt": "SELECT", "max_tokens": 5, "temperature": 0}')
adapter_text=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
[[ $base_text != "$adapter_text" ]] || fail "the adapter did not change the output: $base_text"

out=$(post "$url/v1/chat/completions" \
  '{"model": "inventory", "messages": [{"role": "user", "content": "宝马在上海有几辆在库？"}], "max_tokens": 6}')
echo "$out" | grep -q '"role":"assistant"' || fail "chat: $out"

stream=$(post "$url/v1/completions" '{"prompt": "SELECT", "max_tokens": 5, "stream": true}' -N)
[[ $stream == data:* ]] || fail "stream does not start with data: $stream"
[[ $(echo "$stream" | grep -v '^$' | tail -n 1) == "data: [DONE]" ]] || fail "stream does not end with [DONE]: $stream"

code=$(post "$url/v1/completions" '{"prompt": "x", "model": "nope"}' -o /dev/null -w '%{http_code}')
[[ $code == 404 ]] || fail "unknown model gave $code"

# SIGTERM while a request streams: the request finishes, the server exits 0.
post "$url/v1/completions" '{"prompt": "SELECT", "max_tokens": 400, "ignore_eos": true, "stream": true}' -N \
  >"$work/long.sse" &
client=$!
for _ in $(seq 1 100); do
  grep -q '^data: {' "$work/long.sse" 2>/dev/null && break
  sleep 0.05
done
grep -q '^data: {' "$work/long.sse" || fail "the long stream never started"
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
[[ $rc == 0 ]] || fail "server exited $rc after SIGTERM: $(tail -3 "$work/serve.log")"
wait "$client" || true
last=$(grep -v '^$' "$work/long.sse" | tail -n 1)
[[ $last == "data: [DONE]" ]] || fail "the running stream was cut at shutdown: ...$(tail -c 300 "$work/long.sse")"
grep -q '"finish_reason":"length"' "$work/long.sse" || fail "the running request did not finish"

# API key: the flag, and VLLM_API_KEY when the flag is absent.
start_server "$work/key.log" --api-key sekret
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models")
[[ $code == 401 ]] || fail "no key gave $code"
[[ $(curl -s "$url/v1/models") == '{"error":"Unauthorized"}' ]] || fail "401 body"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sekret' "$url/v1/models")
[[ $code == 200 ]] || fail "the right key gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/health")
[[ $code == 200 ]] || fail "/health needs no key, gave $code"
kill -TERM "$pid"
wait "$pid" || fail "exit status after SIGTERM"
VLLM_API_KEY=envkey start_server "$work/env.log"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer envkey' "$url/v1/models")
[[ $code == 200 ]] || fail "VLLM_API_KEY was not used ($code)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models")
[[ $code == 401 ]] || fail "VLLM_API_KEY: no key gave $code"
busy_port=${url##*:}

# Bad flags: one line on stderr naming the problem, exit status 1.
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1
  shift
  set +e
  err=$("$lathe" serve "$@" 2>&1 >/dev/null)
  rc=$?
  set -e
  [[ $rc == 1 ]] || fail "exit $rc (expected 1) for: serve $* -> $err"
  [[ $(echo "$err" | wc -l) == 1 ]] || fail "error is not one line for: serve $* -> $err"
  echo "$err" | grep -q -- "$pattern" || fail "error lacks '$pattern': $err"
}
expect_error "give the model folder"
expect_error "max-lora-rank" --model "$work/tiny" --max-lora-rank 7
expect_error "No adapter found" --model "$work/tiny" --lora-modules "x=$work/missing"
expect_error "max-loras" --model "$work/tiny" --lora-modules "a=$work/adapter" "b=$work/adapter"
expect_error "cannot listen" --model "$work/tiny" --port "$busy_port"
echo "serve: ok"
