#!/usr/bin/env bash
# SFT step throughput with and without the shared prefix (training.shared_prefix): LoRA r=16
# on all seven projections of the tiny shape (hidden 256, 4 layers, 8 heads, 4 kv heads,
# intermediate 688), batch 8, on the pipeline's real inventory SFT rows (a ~2 KB system
# prompt every row shares, then the question and its answer).
#
#   bench/bench_sft_prefix.sh [--build DIR] [--steps N] [--rounds R] [--threads T]
#
# The two settings alternate for R rounds (the machine is shared: compare within a round).
# Prints per round the median wall seconds per step over steps 2..N and row tokens/s of each,
# and their ratio; the last line is the median ratio.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build steps=8 rounds=3 threads=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "bench_sft_prefix: unknown flag $1" >&2; exit 2 ;;
  esac
done
lathe="$build/cli/lathe"
[[ -x "$lathe" ]] || { echo "bench_sft_prefix: $lathe not built (scripts/setup.sh)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The inventory rows exactly as the pipeline writes them, and a tokenizer learned on them.
"$lathe" pipeline --config configs/inventory-tiny.yaml --run-dir "$work/p" 'run.stages=[data]' >/dev/null 2>&1
data="$work/p/data/sft_train.jsonl"
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    for m in json.loads(line)["messages"]:
        print(m["content"])' "$data" > "$work/corpus.txt"
"$lathe" init-model --preset tiny --corpus "$work/corpus.txt" --out "$work/model" --seed 0 >/dev/null

lscpu | sed -n 's/^Model name: *//p' | head -1 | sed 's/^/# cpu: /'
echo "# cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# tiny shape, LoRA r=16 x7, batch 8, $steps steps (median of 2..$steps), $rounds rounds"

run() {  # NAME SHARED -> "seconds_per_step tokens_per_s"
  "$lathe" sft --config configs/sft-tiny.yaml --run-dir "$work/$1" model.init=load model.path="$work/model" \
    lora.enabled=true lora.r=16 lora.alpha=32 \
    'lora.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]' \
    data.train="$data" data.validation= data.max_seq_len=640 training.batch_size=8 training.max_steps="$steps" \
    training.lr=1e-3 eval.every=0 \
    training.threads="$threads" training.shared_prefix="$2" log.every=1 checkpoint.every=0 \
    >/dev/null 2>"$work/$1.log" || { cat "$work/$1.log" >&2; exit 1; }
  python3 - "$work/$1/metrics.jsonl" <<'EOF'
import json, statistics, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if "tokens_per_s" in r]
t = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(rows, rows[1:])]
print(f"{statistics.median(t):.3f} {statistics.median(r['tokens_per_s'] for r in rows[1:]):.0f}")
EOF
}

ratios=()
for r in $(seq 1 "$rounds"); do
  read -r whole_s whole_tps < <(run "whole-$r" false)
  read -r shared_s shared_tps < <(run "shared-$r" true)
  ratio=$(python3 -c "print(f'{$whole_s / $shared_s:.2f}')")
  ratios+=("$ratio")
  echo "round $r: whole rows ${whole_s} s/step (${whole_tps} tok/s)  shared prefix ${shared_s} s/step (${shared_tps} tok/s)  speed-up ${ratio}x"
done
echo "median speed-up $(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p")x"
