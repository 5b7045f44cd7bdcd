#!/usr/bin/env bash
# Data-parallel failures, black box. Two `lathe sft` ranks started by hand with torchrun's
# environment on loopback: a rank killed mid-run, a rank frozen (SIGSTOP, so its sockets stay
# open) and rank 0 (the store's host) killed — each time the survivor exits non-zero within
# distributed.timeout_seconds plus the few seconds it takes to name the rank, naming it. Then
# `lathe launch`: prefixed output, torchrun's variables, a rank that fails or is killed stops
# the others and fails the launch, naming that rank, and SIGTERM stops the group together.
# $1 = path of the lathe binary. Exit 77 = skipped (no Gloo in this build, or python3 absent).
set -euo pipefail
lathe="$1"
command -v python3 >/dev/null || { echo "skip: python3 absent (picks free ports)"; exit 77; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -n 20 "$f"; done; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

timeout_s=6
# A run far longer than the test; ranks are stopped from outside.
sft_args=(sft --config configs/sft-tiny.yaml model.hidden_size=32 model.intermediate_size=64 tokenizer.num_merges=100
          training.batch_size=2 training.max_steps=1000000 training.threads=1 data.validation= eval.every=0
          checkpoint.every=0 log.every=1 distributed.timeout_seconds=$timeout_s)

# wait_steps RUN_DIR: until rank 0 has logged two steps (true), or two minutes (false).
wait_steps() {
  for _ in $(seq 1 1200); do
    [[ -f $1/metrics.jsonl ]] && (($(wc -l <"$1/metrics.jsonl") >= 2)) && return 0
    sleep 0.1
  done
  return 1
}

# start_ranks NAME: two ranks of one run; returns once rank 0 has logged two steps.
start_ranks() {
  local port
  port=$(free_port)
  for r in 0 1; do
    RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$lathe" "${sft_args[@]}" run.dir="$work/$1" >"$work/$1.rank$r.log" 2>&1 &
    pids[$r]=$!
  done
  for _ in $(seq 1 1200); do
    if [[ -f $work/$1/metrics.jsonl ]] && (($(wc -l <"$work/$1/metrics.jsonl") >= 2)); then return 0; fi
    if grep -q "without c10d's Gloo\|built without Gloo" "$work/$1.rank0.log" 2>/dev/null; then
      echo "skip: this lathe was built without c10d's Gloo backend"; exit 77
    fi
    sleep 0.1
  done
  fail "$1: the ranks did not start training"
}

# expect_named NAME SURVIVOR PATTERN: the survivor exits non-zero in time, naming the rank.
expect_named() {
  local start=$SECONDS rc=0
  wait "${pids[$2]}" || rc=$?
  local took=$((SECONDS - start))
  ((rc != 0)) || fail "$1: rank $2 exited 0"
  grep -q "$3" "$work/$1.rank$2.log" || fail "$1: rank $2 did not say '$3'"
  ((took <= timeout_s + 8)) || fail "$1: rank $2 took ${took}s (timeout ${timeout_s}s)"
  echo "ok: $1: rank $2 exited $rc after ${took}s: $(grep -o "$3.*" "$work/$1.rank$2.log" | head -c 200)"
}

start_ranks killed
kill -9 "${pids[1]}"
expect_named killed 0 "rank 1 died or stopped responding"

start_ranks frozen
kill -STOP "${pids[1]}"
expect_named frozen 0 "rank 1 died or stopped responding"
kill -9 "${pids[1]}"

start_ranks store
kill -9 "${pids[0]}"
expect_named store 1 "rank 0 (which hosts the rendezvous store at 127.0.0.1:[0-9]*) died or stopped responding"

# lathe launch: variables and prefixes; a failing rank stops the others.
start=$SECONDS
if out=$("$lathe" launch --nproc 3 --grace-seconds 5 -- sh -c \
    'echo "rank $RANK of $WORLD_SIZE local $LOCAL_RANK/$LOCAL_WORLD_SIZE at $MASTER_ADDR:$MASTER_PORT"
     echo "to stderr" >&2; [ "$RANK" = 1 ] && sleep 1 && exit 3; exec sleep 60' 2>&1); then
  fail "launch: exited 0 with a failing rank"
fi
((SECONDS - start < 10)) || fail "launch: the other ranks were not stopped promptly"
grep -q '^\[rank 2\] rank 2 of 3 local 2/3 at 127.0.0.1:[0-9]' <<<"$out" || fail "launch: no prefixed rank 2 line: $out"
grep -q '^\[rank 0\] to stderr' <<<"$out" || fail "launch: stderr not prefixed: $out"
grep -q 'lathe: launch: rank 1 exited with status 3; stopped rank(s) 0, 2' <<<"$out" || fail "launch: $out"
echo "ok: launch: a failing rank stops the others"

# A training rank killed under lathe launch: the launch fails naming it.
"$lathe" launch --nproc 2 -- lathe "${sft_args[@]}" run.dir="$work/launched" >"$work/launched.log" 2>&1 &
launcher=$!
pids+=("$launcher")
wait_steps "$work/launched" || fail "launched: the ranks did not start training"
victim=""
for child in $(pgrep -P "$launcher"); do
  tr '\0' '\n' <"/proc/$child/environ" | grep -qx 'RANK=1' && victim=$child
done
[[ -n $victim ]] || fail "launched: rank 1 not found among the launcher's children"
kill -9 "$victim"
rc=0
wait "$launcher" || rc=$?
((rc != 0)) || fail "launched: lathe launch exited 0"
grep -q 'lathe: launch: rank 1 was killed by signal 9' "$work/launched.log" || fail "launched: rank not named"
echo "ok: launched: $(grep -o 'launch: rank 1.*' "$work/launched.log")"

# SIGTERM to lathe launch: passed to both ranks, which agree to stop after the same step,
# checkpoint it (rank 0 writes) and exit 128 + 15.
"$lathe" launch --nproc 2 -- lathe "${sft_args[@]}" run.dir="$work/stopped" >"$work/stopped.log" 2>&1 &
launcher=$!
pids+=("$launcher")
wait_steps "$work/stopped" || fail "stopped: the ranks did not start training"
kill -TERM "$launcher"
rc=0
wait "$launcher" || rc=$?
((rc == 143)) || fail "stopped: lathe launch exited $rc, expected 143"
checkpoint=$(ls -d "$work"/stopped/checkpoints/step-* 2>/dev/null | tail -n 1)
[[ -n $checkpoint ]] || fail "stopped: no checkpoint written"
grep -q '"world_size": *2' "$checkpoint/state.json" || fail "stopped: $checkpoint/state.json lacks world_size 2"
echo "ok: stopped: both ranks stopped together, $(basename "$checkpoint") saved"
echo "distributed: all checks passed"
