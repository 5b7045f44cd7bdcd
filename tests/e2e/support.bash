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
