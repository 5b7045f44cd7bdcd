# Helpers sourced by the e2e scripts (not itself a test: ctest runs only *.sh here).
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_error PATTERN COMMAND...: exit status 1 and one line on stderr naming PATTERN.
expect_error() {
  local pattern=$1; shift
  set +e; err=$("$@" 2>&1 >/dev/null); rc=$?; set -e
  [[ $rc == 1 ]] || fail "exit $rc (expected 1) for: $* -> $err"
  [[ $(echo "$err" | wc -l) == 1 ]] || fail "error is not one line for: $* -> $err"
  echo "$err" | grep -q -- "$pattern" || fail "error lacks '$pattern': $err"
}

# check_checkpoints RUN_DIR WHEN: every step-N folder of RUN_DIR is whole: state.json parses,
# and each safetensors file is as long as its header says (a torn write would be shorter or
# have no header). WHEN ends the failure message. Needs python3.
check_checkpoints() {
  python3 - "$1" <<'PY' || fail "a checkpoint on disk is incomplete $2"
import json, os, struct, sys
root = os.path.join(sys.argv[1], "checkpoints")
if not os.path.isdir(root):
    sys.exit(0)
for name in os.listdir(root):
    if not name.startswith("step-"):
        continue  # .tmp-* folders are the unfinished writes the next save removes
    d = os.path.join(root, name)
    json.load(open(os.path.join(d, "state.json")))
    for f in ("optimizer.pt", "rng.pt", "model/model.safetensors"):
        assert os.path.getsize(os.path.join(d, f)) > 0, (d, f)
    path = os.path.join(d, "model/model.safetensors")
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    assert os.path.getsize(path) == 8 + n + end, path
PY
}
