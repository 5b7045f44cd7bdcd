#!/usr/bin/env bash
# Crash safety of `lathe sft`: SIGKILL at random moments (a checkpoint after every step, so
# kills land before, during and after checkpoint writes), then resume, again and again until
# the run finishes. At every kill each checkpoint on disk must be complete; the final weights
# must equal those of a run that was never killed, byte for byte.
# $1 = the lathe binary. Exit 77 = skipped (python3 absent: it checks the files).
set -euo pipefail
lathe="$1"
source "$(dirname "$0")/support.bash"
command -v python3 >/dev/null || { echo "skip: python3 absent (used to check checkpoint files)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

common=(--config configs/sft-tiny.yaml training.max_steps=16 checkpoint.every=1 checkpoint.keep=2
        eval.every=0 data.validation= training.threads=1 model.hidden_size=64 model.intermediate_size=128
        tokenizer.num_merges=200 log.every=1)
"$lathe" sft "${common[@]}" --run-dir "$work/straight" >/dev/null 2>"$work/straight.log" \
  || fail "uninterrupted run: $(tail -3 "$work/straight.log")"

RANDOM=11
kills=0
finished=0
for attempt in $(seq 1 30); do
  args=("${common[@]}" --run-dir "$work/crashy")
  if compgen -G "$work/crashy/checkpoints/step-*" >/dev/null; then args+=(--resume); fi
  "$lathe" sft "${args[@]}" >/dev/null 2>"$work/log" &
  pid=$!
  # 0.3 to 2.3 s: start-up (tokenizer, model) takes part of it, so later attempts die mid-run.
  sleep "$(( RANDOM % 3 )).$(( RANDOM % 10 ))"
  kill -9 "$pid" 2>/dev/null || true
  set +e; wait "$pid"; rc=$?; set -e
  if [[ $rc == 0 ]]; then finished=1; break; fi
  [[ $rc == 137 ]] || fail "attempt $attempt exited $rc: $(tail -3 "$work/log")"
  kills=$((kills + 1))
  check_checkpoints "$work/crashy" "after kill $kills"
done
[[ $finished == 1 ]] || fail "the run never finished in 30 attempts ($kills kills)"
(( kills >= 3 )) || fail "only $kills kills landed; the test did not exercise resume"
cmp "$work/straight/model/model.safetensors" "$work/crashy/model/model.safetensors" \
  || fail "final weights after $kills kills differ from the uninterrupted run"
echo "sft crash e2e: ok ($kills kills)"
