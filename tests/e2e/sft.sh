#!/usr/bin/env bash
# `lathe sft` black-box on configs/sft-tiny.yaml (shrunk by overrides to run in seconds): a bad
# key and contradictory keys fail in one line naming the key before a run folder exists;
# SIGTERM mid-run saves a checkpoint and exits 128 + 15; --resume finishes the run; the run
# folder holds the documented files; progress off a terminal is plain lines.
# $1 = path of the lathe binary.
set -euo pipefail
lathe="$(realpath "$1")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
small=(model.hidden_size=64 model.intermediate_size=128 training.batch_size=4 data.max_seq_len=128
       training.threads=2 tokenizer.num_merges=200 checkpoint.every=5 log.every=5)

if out=$("$lathe" sft --config configs/sft-tiny.yaml --run-dir "$work/bad" training.lrr=1 2>&1); then
  echo "FAIL: an unknown key was accepted"; exit 1
fi
[[ $(wc -l <<<"$out") -eq 1 && $out == *"unknown key training.lrr (did you mean training.lr?)"* ]] ||
  { echo "FAIL: unknown key error: $out"; exit 1; }
if out=$("$lathe" sft --config configs/sft-tiny.yaml --run-dir "$work/bad" data.validation= 2>&1); then
  echo "FAIL: eval.every without data.validation was accepted"; exit 1
fi
[[ $out == *"eval.every=50 needs data.validation"* ]] || { echo "FAIL: cross-key error: $out"; exit 1; }
[[ ! -e $work/bad ]] || { echo "FAIL: a rejected config created its run folder"; exit 1; }

# Stopped by SIGTERM once the first checkpoint exists.
"$lathe" sft --config configs/sft-tiny.yaml --run-dir "$work/run" training.max_steps=400 "${small[@]}" \
  >"$work/log1" 2>&1 &
pid=$!
for _ in $(seq 600); do [[ -f $work/run/checkpoints/step-5/state.json ]] && break; sleep 0.1; done
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[[ $status -eq 143 ]] || { echo "FAIL: SIGTERM exit status $status, expected 143"; cat "$work/log1"; exit 1; }
grep -q "checkpoint saved, continue with --resume" "$work/log1" || { echo "FAIL: no stop message"; cat "$work/log1"; exit 1; }
stopped=$(ls "$work/run/checkpoints" | sed -n 's/^step-//p' | sort -n | tail -1)
[[ $stopped -ge 5 && $stopped -lt 400 ]] || { echo "FAIL: newest checkpoint step-$stopped"; exit 1; }

# Resumed and finished (max_steps lowered to just past the stop: the run warns that the key
# differs from its config.yaml and carries on).
end=$((stopped + 5))
"$lathe" sft --config configs/sft-tiny.yaml --run-dir "$work/run" --resume training.max_steps=$end "${small[@]}" \
  >"$work/log2" 2>&1 || { echo "FAIL: --resume"; cat "$work/log2"; exit 1; }
grep -q "resuming from .*step-$stopped" "$work/log2" || { echo "FAIL: did not resume from step $stopped"; cat "$work/log2"; exit 1; }
grep -q "training.max_steps differs" "$work/log2" || { echo "FAIL: no warning for the changed key"; exit 1; }
grep -q "^step $end/$end " "$work/log2" || { echo "FAIL: no plain progress line for the last step"; cat "$work/log2"; exit 1; }
if grep -q $'\033' "$work/log1" "$work/log2"; then echo "FAIL: escape codes in output that is not a terminal"; exit 1; fi
for f in config.yaml metrics.jsonl tokenizer/tokenizer.json model/config.json model/model.safetensors \
         "checkpoints/step-$end/state.json" "checkpoints/step-$end/optimizer.pt" best/model.safetensors; do
  [[ -f $work/run/$f ]] || { echo "FAIL: run/$f missing"; exit 1; }
done
command -v python3 >/dev/null || { echo "sft e2e: ok (metrics.jsonl fields not checked: no python3)"; exit 0; }
python3 - "$work/run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
steps = [r for r in rows if "loss" in r]
keys = {"step", "epoch", "loss", "lr", "grad_norm", "tokens", "target_tokens", "tokens_per_s", "memory_mb", "elapsed_s"}
assert steps and all(keys <= set(r) for r in steps), steps[:1]
assert any("eval_loss" in r and "eval_token_accuracy" in r for r in rows), "no evaluation line"
PY
echo "sft e2e: ok"
