#!/usr/bin/env bash
# LoRA training benchmark: lathe (bench_sft, the recipe's step) beside the plain PyTorch eager
# step (bench/reference/sft_eager.py), each configuration in its own process (so each peak
# resident memory is that configuration's alone), lathe and Python alternately so both see
# the same load on a shared machine; then one table with the ratios.
#
#   bench/run_sft_bench.sh [--build DIR] [--rounds R] [--shapes LIST] [--dtypes LIST]
#                          [flags for both sides: --steps N --warmup W --seq T --scored F ...]
#
# Defaults: shapes tiny,qwen2.5-0.5b-shape; dtypes f32,bf16 (autocast is the third choice);
# one round. The Python side runs under Debian's /usr/bin/python3 with PY_ENV (default: the
# thread settings lathe itself uses, which are also Python's best, docs/benchmarks.md). Where
# that python3 has no torch (python3-torch not installed), only lathe's figures are measured
# and the table says the reference is absent.
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
    *) pass+=("$1"); shift ;;
  esac
done
if [[ -z "$build" ]]; then
  for d in build-bench build; do [[ -x "$d/bench/bench_sft" ]] && build="$d" && break; done
fi
bin="${build:-build}/bench/bench_sft"
[[ -x "$bin" ]] || { echo "run_sft_bench: $bin not built (scripts/setup.sh builds it; scripts/test.sh leaves benchmarks out)" >&2; exit 1; }
PY_ENV="${PY_ENV:-OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2}"
reference=yes
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  reference=no
  echo "# reference absent: /usr/bin/python3 has no torch (install python3-torch); lathe figures only"
fi

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
lscpu | sed -n 's/^Model name: *//p' | head -1 | sed 's/^/# cpu: /'
echo "# cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 0; r < rounds; ++r)); do
  for shape in ${shapes//,/ }; do
    for dtype in ${dtypes//,/ }; do
      "$bin" --shape "$shape" --dtype "$dtype" "${pass[@]}" | tee -a "$out"
      [[ $reference == yes ]] || continue
      env $PY_ENV /usr/bin/python3 bench/reference/sft_eager.py --shape "$shape" --dtype "$dtype" "${pass[@]}" \
        | tee -a "$out"
    done
  done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$reference" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        r = json.loads(line[7:])
        runs.setdefault((r["shape"], r["dtype"], r["impl"]), []).append(r)
hdr = ("| shape | dtype | batch x seq | lathe tok/s | python tok/s | ratio | median round ratio "
       "| CPU s/step lathe | python | ratio | lathe peak MB | python peak MB | memory ratio |")
print()
print(hdr)
print("|" + "---|" * (hdr.count("|") - 1))
for shape, dtype, impl in sorted(k for k in runs if k[2] == "lathe"):
    lathe, python = runs[(shape, dtype, "lathe")], runs.get((shape, dtype, "python"), [])
    lb = max(r["tok_s_best"] for r in lathe)
    lm = max(r["peak_rss_mb"] for r in lathe)
    cells = [shape, dtype, f"{lathe[0]['batch']} x {lathe[0]['seq']}", f"{lb:.1f}"]
    if python:
        pb = max(r["tok_s_best"] for r in python)
        pm = max(r["peak_rss_mb"] for r in python)
        # Rounds ran in pairs, so round i of each side saw similar load.
        rr = statistics.median(a["tok_s_median"] / b["tok_s_median"] for a, b in zip(lathe, python))
        lc = min(r["cpu_s_median"] for r in lathe)
        pc = min(r["cpu_s_median"] for r in python)
        cells += [f"{pb:.1f}", f"{lb / pb:.2f}", f"{rr:.2f}", f"{lc:.2f}", f"{pc:.2f}", f"{pc / lc:.2f}",
                  f"{lm:.0f}", f"{pm:.0f}", f"{lm / pm:.2f}"]
    else:
        cells += ["-", "-", "-", f"{min(r['cpu_s_median'] for r in lathe):.2f}", "-", "-", f"{lm:.0f}", "-", "-"]
    print("| " + " | ".join(cells) + " |")
if sys.argv[2] == "no":
    print("python columns: - (reference absent: no torch for /usr/bin/python3)")
print("tokens/s: best step of all rounds; ratio = lathe / python (above 1: lathe faster); median round ratio: "
      "of the per-round median steps; CPU s/step: lowest per-round median CPU time of a step, ratio = python / "
      "lathe (above 1: lathe does less work); peak MB: the process's ru_maxrss (memory ratio below 1: lathe "
      "smaller)")
PY
