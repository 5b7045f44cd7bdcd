#!/usr/bin/env bash
# `lathe sft` resumed into a full disk, and into a read-only run folder: one line naming the
# file, exit 1, and the last good checkpoint left whole, so that a later resume from it ends
# with the same weights as the same resume on a healthy disk.
# The full disk is RLIMIT_FSIZE (ulimit -f) with SIGXFSZ ignored: a write past the limit fails
# with EFBIG, as it would with ENOSPC, without privileges or a small mount. The read-only folder
# is chmod a-w; root ignores that, so as root the resume runs as nobody (setpriv).
# $1 = the lathe binary. Exit 77 = skipped (python3 absent: it checks the files).
set -euo pipefail
lathe="$1"
source "$(dirname "$0")/support.bash"
command -v python3 >/dev/null || { echo "skip: python3 absent (used to check checkpoint files)"; exit 77; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
chmod 755 "$work"  # nobody must reach the read-only run folder (mktemp makes it 700)

common=(--config configs/sft-tiny.yaml checkpoint.every=2 checkpoint.keep=2 eval.every=0 data.validation=
        training.threads=1 model.hidden_size=64 model.intermediate_size=128 tokenizer.num_merges=200)
# Four steps (checkpoints step-2 and step-4), copied three times, then each resumed to eight.
"$lathe" sft "${common[@]}" training.max_steps=4 --run-dir "$work/healthy" >/dev/null 2>"$work/first.log" \
  || fail "first part: $(tail -3 "$work/first.log")"
cp -a "$work/healthy" "$work/full"
cp -a "$work/healthy" "$work/readonly"
resume() { "$lathe" sft "${common[@]}" training.max_steps=8 --resume --run-dir "$@"; }
resume "$work/healthy" >/dev/null 2>"$work/healthy.log" || fail "healthy resume: $(tail -3 "$work/healthy.log")"

# Full disk: the step-6 checkpoint's weights (~530 KB) do not fit under a 256 KB file limit.
set +e
( trap '' XFSZ; ulimit -f 256; resume "$work/full" >/dev/null 2>"$work/full.log" )
rc=$?
set -e
[[ $rc == 1 ]] || fail "full disk: exit $rc (expected 1): $(tail -3 "$work/full.log")"
err=$(grep -v '^lathe \(info\|warning\)' "$work/full.log")
[[ $(echo "$err" | wc -l) == 1 ]] || fail "full disk: error is not one line: $err"
echo "$err" | grep -q "cannot write .*model.safetensors: File too large" || fail "full disk: unclear error: $err"
check_checkpoints "$work/full" "after the full disk"
[[ -f $work/full/checkpoints/step-4/state.json ]] || fail "full disk: step-4 is gone"
[[ -z $(ls -A "$work/full/checkpoints" | grep -v '^step-[24]$') ]] \
  || fail "full disk left more than step-2 and step-4: $(ls -A "$work/full/checkpoints")"
resume "$work/full" >/dev/null 2>"$work/full2.log" || fail "resume after the full disk: $(tail -3 "$work/full2.log")"
cmp "$work/healthy/model/model.safetensors" "$work/full/model/model.safetensors" \
  || fail "weights after the full disk differ from the healthy resume"

# Read-only run folder.
chmod -R a-w "$work/readonly"
as_reader=()
if [[ $(id -u) == 0 ]]; then
  command -v setpriv >/dev/null || { echo "skip: as root without setpriv the read-only case cannot be made"; exit 77; }
  as_reader=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
set +e
"${as_reader[@]}" "$lathe" sft "${common[@]}" training.max_steps=8 --resume --run-dir "$work/readonly" \
  >/dev/null 2>"$work/readonly-attempt.log"
rc=$?
set -e
[[ $rc == 1 ]] || fail "read-only: exit $rc (expected 1): $(tail -3 "$work/readonly-attempt.log")"
err=$(grep -v '^lathe \(info\|warning\)' "$work/readonly-attempt.log")
[[ $(echo "$err" | wc -l) == 1 ]] || fail "read-only: error is not one line: $err"
echo "$err" | grep -q "$work/readonly.*Permission denied" || fail "read-only: unclear error: $err"
chmod -R u+w "$work/readonly"
check_checkpoints "$work/readonly" "after the read-only attempt"
resume "$work/readonly" >/dev/null 2>"$work/readonly.log" || fail "resume after read-only: $(tail -3 "$work/readonly.log")"
cmp "$work/healthy/model/model.safetensors" "$work/readonly/model/model.safetensors" \
  || fail "weights after the read-only attempt differ from the healthy resume"
echo "sft unwritable e2e: ok"
