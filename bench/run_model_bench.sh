#!/usr/bin/env bash
# Model-core benchmark: lathe (bench_model, through lathe::generate) beside the plain PyTorch
# eager reference (bench/reference/model_eager.py), one shape x dtype at a time alternately so
# both see the same load on a shared machine; then a side-by-side table with lathe / python.
#
#   bench/run_model_bench.sh [--build DIR] [--rounds R] [flags for both, e.g. --quick,
#                            --shapes tiny --dtypes f32 --batches 1,8 --repeats 3]
#
# BUILD defaults to build-bench, then build. The Python side runs under Debian's
# /usr/bin/python3 with python3-torch (installed by `LATHE_BENCH=1 scripts/setup.sh`), with PY_ENV (default: the best settings found for it, docs/benchmarks.md).
# With --rounds R each pair runs R times and the table keeps the best figure of each side.
set -euo pipefail
cd "$(dirname "$0")/.."

build=""
rounds=1
shapes="tiny,qwen2.5-0.5b-shape"
dtypes="f32,bf16"
pass=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --shapes) shapes="$2"; shift 2 ;;
    --dtypes) dtypes="$2"; shift 2 ;;
    --quick) shapes="tiny"; dtypes="f32"; pass+=(--repeats 2); shift ;;
    *) pass+=("$1"); shift ;;
  esac
done
if [[ -z "$build" ]]; then
  for d in build-bench build; do [[ -x "$d/bench/bench_model" ]] && build="$d" && break; done
fi
bin="${build:-build}/bench/bench_model"
[[ -x "$bin" ]] || { echo "run_model_bench: $bin not built (scripts/setup.sh builds it; scripts/test.sh leaves benchmarks out)" >&2; exit 1; }
PY_ENV="${PY_ENV:-OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2}"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
lscpu | sed -n 's/^Model name: *//p' | head -1 | sed 's/^/# cpu: /' | tee -a "$out"
echo "# cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
"$bin" --shapes tiny --dtypes f32 --batches 1 --new-tokens 2 --repeats 1 | grep bandwidth | tee -a "$out"
for ((r = 0; r < rounds; ++r)); do
  for shape in ${shapes//,/ }; do
    for dtype in ${dtypes//,/ }; do
      "$bin" --no-bandwidth --shapes "$shape" --dtypes "$dtype" "${pass[@]}" | tee -a "$out"
      env $PY_ENV /usr/bin/python3 bench/reference/model_eager.py --shapes "$shape" --dtypes "$dtype" "${pass[@]}" \
        | tee -a "$out"
    done
  done
done

python3 - "$out" <<'EOF'
import json, statistics, sys
best, bw, mm, rounds = {}, None, None, {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    r = json.loads(line[7:])
    if r.get("kind") == "bandwidth":
        bw = r["read_gb_s"] * 1e9
        mm = (r.get("matmul_gflops_f32"), r.get("matmul_gflops_bf16"))
        continue
    key = (r["shape"], r["dtype"], r["batch"], r["impl"])
    rounds.setdefault(key, []).append(r["decode_tok_s"])
    old = best.setdefault(key, dict(r))
    for f in ("prefill_tok_s", "decode_tok_s"):
        old[f] = max(old[f], r[f])
print()
print(f"read bandwidth: {bw / 1e9:.1f} GB/s" if bw else "read bandwidth: not measured")
if mm and mm[0]:
    print(f"linear 1024x896->4864: f32 {mm[0]:.1f} GFLOP/s (OpenBLAS), bf16 {mm[1]:.1f} GFLOP/s (oneDNN), "
          f"bf16/f32 {mm[1] / mm[0]:.2f}")
hdr = ("| shape | dtype | batch | prefill lathe | prefill python | ratio | decode lathe | decode python | ratio "
       "| median round ratio | bound tok/s | lathe x of bound |")
print(hdr)
print("|" + "---|" * (hdr.count("|") - 1))
for (shape, dtype, batch, impl) in sorted(k for k in best if k[3] == "lathe"):
    l = best[(shape, dtype, batch, "lathe")]
    p = best.get((shape, dtype, batch, "python"))
    bound = bw / l["weight_bytes"] if bw else None
    cells = [shape, dtype, str(batch), f"{l['prefill_tok_s']:.1f}",
             f"{p['prefill_tok_s']:.1f}" if p else "-",
             f"{l['prefill_tok_s'] / p['prefill_tok_s']:.2f}" if p else "-",
             f"{l['decode_tok_s']:.1f}", f"{p['decode_tok_s']:.1f}" if p else "-",
             f"{l['decode_tok_s'] / p['decode_tok_s']:.2f}" if p else "-",
             # Rounds ran in pairs, so round i of each side saw similar load.
             f"{statistics.median(a / b for a, b in zip(rounds[(shape, dtype, batch, 'lathe')], rounds[(shape, dtype, batch, 'python')])):.2f}" if p else "-",
             f"{bound:.2f}" if bound and batch == 1 else "-",
             f"{bound / l['decode_tok_s']:.2f}" if bound and batch == 1 else "-"]
    print("| " + " | ".join(cells) + " |")
print("tokens/s, best of all rounds; ratio = lathe / python; median round ratio: decode, per round; bound = read bandwidth / weight bytes (batch 1: one pass over the weights per token)")
EOF
