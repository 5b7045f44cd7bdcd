#!/usr/bin/env bash
# GRPO step time and its split (generation / rewards / old log-probs / reference / policy) on
# the tiny shape (hidden 256, 4 layers, 8 heads, 4 kv heads, intermediate 688) with G = 8,
# read from the metrics.jsonl of real `lathe grpo` runs on random weights (every completion
# runs to max_completion_length: the worst case for generation).
#
#   bench/bench_grpo.sh [--build DIR] [--steps N] [--prompts P] [--length L] [--threads T]
#
# Prints one line per configuration: median seconds per step of each part over steps 2..N
# (step 1 pays one-off allocation), tokens/s, and the share of the step spent generating.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build steps=6 prompts=2 length=64 threads=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --prompts) prompts="$2"; shift 2 ;;
    --length) length="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "bench_grpo: unknown flag $1" >&2; exit 2 ;;
  esac
done
lathe="$build/cli/lathe"
[[ -x "$lathe" ]] || { echo "bench_grpo: $lathe not built (scripts/setup.sh)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A tokenizer that knows the prompts' Chinese and SQL, so prompts are realistic in length.
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)  # chat rows and prompt/completion rows
    for text in [m["content"] for m in row.get("messages", [])] + [row.get("prompt", ""), row.get("completion", "")]:
        print(text)' configs/data/inventory-sft-train.jsonl > "$work/corpus.txt"
"$lathe" init-model --preset tiny --corpus "$work/corpus.txt" --out "$work/model" --seed 0 >/dev/null

lscpu | sed -n 's/^Model name: *//p' | head -1 | sed 's/^/# cpu: /'
echo "# cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# tiny shape, G=8, $prompts prompts/step, max_completion_length $length, $steps steps (median of 2..$steps)"

run() {
  local name="$1"; shift
  "$lathe" grpo --config configs/grpo-tiny.yaml --run-dir "$work/$name" \
    model.path="$work/model" grpo.num_generations=8 training.batch_size=$((prompts * 8)) \
    grpo.max_completion_length="$length" training.max_steps="$steps" training.threads="$threads" \
    checkpoint.every=0 log.rollouts_every=0 "$@" >/dev/null 2>"$work/$name.log" \
    || { cat "$work/$name.log" >&2; exit 1; }
  python3 - "$name" "$work/$name/metrics.jsonl" <<'EOF'
import json, statistics, sys
name, path = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path)][1:]
med = lambda k: statistics.median(r[k] for r in rows)
step = med("time/step_s")
parts = ["generation", "rewards", "old_logprobs", "reference", "policy"]
split = "  ".join(f"{p} {med('time/' + p + '_s'):.3f}" for p in parts)
print(f"{name:<16} step {step:.3f} s  [{split}]  generation share {med('time/generation_s') / step:.0%}  "
      f"{med('tokens_per_s'):.0f} generated tokens/s  peak {max(r['memory_mb'] for r in rows):.0f} MB")
EOF
}

run "beta0.04-mu1" grpo.beta=0.04 grpo.num_iterations=1
run "beta0-mu1" grpo.beta=0 grpo.num_iterations=1
run "beta0.04-mu2" grpo.beta=0.04 grpo.num_iterations=2
