#!/usr/bin/env bash
# Server soak (docs/reliability.md, "Server soak"): `lathe serve` on a tiny random model with
# three small PEFT adapters, under 64 concurrent clients for a bounded time mixing good
# requests with malformed JSON, oversized bodies, unknown adapters, hang-ups and hot reloads
# (the client is bench/serve_soak.mjs, which says what it checks). Afterwards the server must
# still answer, and SIGTERM must stop it with exit status 0.
#
#   bench/serve_soak.sh [--build DIR] [--warmup S (60)] [--duration S (180)] [--quick]
#                       [--clients N (64)] [--threads T (1)] [--deadline S (30)]
#                       [--rss-bound-mib M (16)] [--seed S]
#
# The load runs for warm-up + duration seconds; the server's RSS must grow by at most M MiB
# from the warm-up's end to the last sample. --quick: 5 + 20 s, RSS reported, not judged.
#
# Exit status 0 when every check passed. Needs node (>= 18) and python3 (it writes the adapters).
set -euo pipefail
cd "$(dirname "$0")/.."

build=build warmup=60 duration=180 judge_rss=1 clients=64 threads=1 deadline=30 rss_bound=16 seed=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --quick) warmup=5 duration=20 judge_rss=0; shift ;;
    --clients) clients="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --deadline) deadline="$2"; shift 2 ;;
    --rss-bound-mib) rss_bound="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) echo "serve_soak: unknown flag $1" >&2; exit 2 ;;
  esac
done
lathe="$build/cli/lathe"
[[ -x "$lathe" ]] || { echo "serve_soak: $lathe not built (cmake --build $build --target lathe)" >&2; exit 1; }
command -v node >/dev/null || { echo "serve_soak: node is missing (scripts/setup.sh installs it)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "serve_soak: python3 is missing (it writes the adapters)" >&2; exit 1; }

work="$(mktemp -d)"
pid=""
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The tiny preset (hidden 256, 4 layers, a ~700-token BPE vocabulary): the server's compute
# stays small, so the soak exercises the HTTP layer, the scheduler and the adapters.
"$lathe" init-model --preset tiny --out "$work/model" --seed 7 >/dev/null
python3 tests/e2e/write_lora_adapter.py "$work/model" "$work/adapters/A" --rank 8 --seed 1
python3 tests/e2e/write_lora_adapter.py "$work/model" "$work/adapters/B" --rank 4 --seed 2
python3 tests/e2e/write_lora_adapter.py "$work/model" "$work/adapters/C" --rank 16 --seed 3

max_body=$((1 << 20))
"$lathe" serve --model "$work/model" --port 0 --served-model-name tiny \
  --lora-modules "a=$work/adapters/A" "b=$work/adapters/B" "swap=$work/adapters/C" \
  --max-loras 5 --max-lora-rank 16 --max-model-len 256 --max-body-bytes "$max_body" \
  --threads "$threads" 2>"$work/serve.log" &
pid=$!
url=""
for _ in $(seq 1 600); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/serve.log" | head -1 || true)
  [[ -n $url ]] && curl -sf "$url/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "serve_soak: the server exited: $(cat "$work/serve.log")" >&2; exit 1; }
  sleep 0.1
done
[[ -n $url ]] || { echo "serve_soak: the server did not come up: $(cat "$work/serve.log")" >&2; exit 1; }

lscpu | sed -n 's/^Model name: *//p' | head -1 | sed 's/^/# cpu: /'
echo "# $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $clients clients, ${warmup} s warm-up + ${duration} s, server --threads $threads, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
node bench/serve_soak.mjs --url "$url" --pid "$pid" --adapters-dir "$work/adapters" --warmup "$warmup" --duration "$duration" \
  --clients "$clients" --deadline "$deadline" --max-body-bytes "$max_body" --rss-bound-mib "$rss_bound" \
  --judge-rss "$judge_rss" --seed "$seed" || status=1
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# The server's own log: anything but its start-up and adapter (un)load lines is shown.
others=$(grep -v -e 'serve: .* on http' -e 'loaded LoRA adapter' -e 'unloaded LoRA adapter' "$work/serve.log" || true)
if [[ -n $others ]]; then
  echo "server log lines besides loads and unloads ($(echo "$others" | wc -l)):"
  echo "$others" | sort | uniq -c | sort -rn | head -20
fi

if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  if wait "$pid"; then echo "ok   SIGTERM: exit status 0"; else echo "FAIL SIGTERM: exit status $?"; status=1; fi
else
  wait "$pid" || true
  echo "FAIL the server is gone"
  status=1
fi
pid=""
exit $status
