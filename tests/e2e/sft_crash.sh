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

common=(--config configs/sft-tiny.yaml training.max_steps=40 checkpoint.every=1 checkpoint.keep=2
        eval.every=0 data.validation= training.threads=1 model.hidden_size=64 model.intermediate_size=128
        tokenizer.num_merges=200 log.every=1)
"$lathe" sft "${common[@]}" --run-dir "$work/straight" >/dev/null 2>"$work/straight.log" \
  || fail "uninterrupted run: $(tail -3 "$work/straight.log")"

RANDOM=11
kills=0
finished=0
metrics="$work/crashy/metrics.jsonl"
logged_steps() { if [[ -f $metrics ]]; then wc -l < "$metrics"; else echo 0; fi; }
for attempt in $(seq 1 80); do
  args=("${common[@]}" --run-dir "$work/crashy")
  if compgen -G "$work/crashy/checkpoints/step-*" >/dev/null; then args+=(--resume); fi
  logged=$(logged_steps)
  "$lathe" sft "${args[@]}" >/dev/null 2>"$work/log" &
  pid=$!
  # The first kill lands in start-up; every later one after this attempt has logged a step
  # (waiting for it makes the test independent of how loaded the machine is), plus 0-0.19 s,
  # so kills fall before, during and after checkpoint writes and every attempt progresses.
  # The delay stays short and the run long (40 steps) so that on a fast CPU (~65 ms a step)
  # one attempt cannot run to the end before its kill.
  if (( attempt == 1 )); then
    sleep 0.5
  else
    for _ in $(seq 1 600); do
      (( $(logged_steps) > logged )) || ! kill -0 "$pid" 2>/dev/null && break
      sleep 0.1
    done
    sleep "0.$(printf %02d $(( RANDOM % 20 )))"
  fi
  kill -9 "$pid" 2>/dev/null || true
  set +e; wait "$pid"; rc=$?; set -e
  if [[ $rc == 0 ]]; then finished=1; break; fi
  [[ $rc == 137 ]] || fail "attempt $attempt exited $rc: $(tail -3 "$work/log")"
  kills=$((kills + 1))
  check_checkpoints "$work/crashy" "after kill $kills"
done
[[ $finished == 1 ]] || fail "the run never finished in 80 attempts ($kills kills)"
(( kills >= 3 )) || fail "only $kills kills landed; the test did not exercise resume"
cmp "$work/straight/model/model.safetensors" "$work/crashy/model/model.safetensors" \
  || fail "final weights after $kills kills differ from the uninterrupted run"
echo "sft crash e2e: ok ($kills kills)"
