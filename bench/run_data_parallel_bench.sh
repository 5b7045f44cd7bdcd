#!/usr/bin/env bash
# Data-parallel SFT throughput: tokens/s of `lathe sft` on the tiny preset shape (hidden 256,
# 4 layers, the run's own BPE) as 1 process × batch 16 against `lathe launch --nproc 2` × batch 8
# (the same global batch, so the same training), each process with 1 thread, for full
# fine-tuning and for LoRA r=16 on all seven projections; then the gradient bytes each step
# all-reduces (bench_allreduce_bytes). tokens/s = tokens of steps 6..N (global, all ranks)
# divided by the wall time between step 5 and step N, from rank 0's metrics.jsonl.
#   bench/run_data_parallel_bench.sh [BUILD_DIR]     (STEPS=40 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
lathe=$build/cli/lathe
steps=${STEPS:-40}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

common=(sft --config configs/sft-tiny.yaml model.hidden_size=256 model.intermediate_size=688 model.num_layers=4
        model.num_heads=8 model.num_kv_heads=4 training.max_steps=$steps training.threads=1 data.validation=
        eval.every=0 checkpoint.every=0 log.every=1 training.warmup_steps=0)
lora=(lora.enabled=true lora.r=16 lora.alpha=32 'lora.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]')

throughput() {  # metrics.jsonl -> tokens/s over steps 6..N
  python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
rest = rows[5:]
print("%.0f" % (sum(r["tokens"] for r in rest) / (rows[-1]["elapsed_s"] - rows[4]["elapsed_s"])))
PY
}

printf "| run | processes × batch | threads each | tokens/s | speed-up |\n|---|---|---|---|---|\n"
for kind in full lora; do
  extra=()
  [[ $kind == lora ]] && extra=("${lora[@]}")
  "$lathe" "${common[@]}" "${extra[@]}" training.batch_size=16 run.dir="$work/$kind-1" >"$work/$kind-1.log" 2>&1
  "$lathe" launch --nproc 2 -- lathe "${common[@]}" "${extra[@]}" training.batch_size=8 run.dir="$work/$kind-2" \
    >"$work/$kind-2.log" 2>&1
  one=$(throughput "$work/$kind-1/metrics.jsonl")
  two=$(throughput "$work/$kind-2/metrics.jsonl")
  printf "| %s | 1 × 16 | 1 | %s | |\n| %s | 2 × 8 | 1 | %s | %.2fx |\n" "$kind" "$one" "$kind" "$two" \
    "$(python3 -c "print($two / $one)")"
done
echo
"$build/bench/bench_allreduce_bytes"
