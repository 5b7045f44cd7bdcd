#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
# Fuzzes lathe's parsers of outside input with libFuzzer (docs/reliability.md, "Fuzzing"):
# builds build-fuzz/ with clang (-fsanitize=fuzzer,address,undefined; tests and benchmarks
# off), then runs each target (all of them by default) for SECONDS_PER_TARGET seconds.
#
# Each run starts from a fresh copy of tests/fuzz/corpus/<target>/ in
# build-fuzz/fuzz-work/<target>/corpus/, so the repository's seed corpus never grows; the
# inputs libFuzzer adds stay there for inspection. tests/fuzz/dicts/<target>.dict (the field
# names and syntax the parser reads) steers the mutations. A crash, sanitizer report, escaped
# exception (abort), hang (-timeout) or memory blow-up (-rss_limit_mb) stops that target and
# leaves the input in build-fuzz/fuzz-work/<target>/crashes/: reproduce it with
#   build-fuzz/tests/fuzz/fuzz_<target> FILE
# then fix the library and commit the input under tests/fuzz/regressions/<target>/ (ctest's
# fuzz.<target> replays it in every build).
# Prints per target: executions, exec/s, coverage at start and end, inputs added, crashes;
# the same table goes to build-fuzz/fuzz-work/summary.tsv.
# Needs the packages scripts/setup.sh installs (LibTorch and the rest), plus clang and its
# runtime libraries, which this script installs (CI does not fuzz, so setup.sh does not).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "fuzz: SECONDS_PER_TARGET must be a positive integer" >&2; exit 2; }

# clang, and libclang_rt.fuzzer / asan / ubsan for Debian's default clang (libclang-rt-14-dev
# on Debian 12).
packages=(clang libclang-rt-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "fuzz: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DLATHE_BUILD_FUZZ=ON \
  -DLATHE_BUILD_TESTS=OFF -DLATHE_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null

targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/targets/*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
build_targets=()
for t in "${targets[@]}"; do
  [ -f "tests/fuzz/targets/$t.cpp" ] || { echo "fuzz: unknown target '$t' (see tests/fuzz/targets/)" >&2; exit 2; }
  build_targets+=("fuzz_$t")
done
build_start=$SECONDS
cmake --build build-fuzz -j "${LATHE_JOBS:-$(nproc)}" --target "${build_targets[@]}"
echo "fuzz: build took $((SECONDS - build_start)) s"

work=build-fuzz/fuzz-work
mkdir -p "$work"
summary=$work/summary.tsv
printf 'target\tseconds\texecutions\texec_per_s\tcov_start\tcov_end\tnew_inputs\tcrashes\n' >"$summary"
# A UBSan report is a finding like an ASan one. LibTorch keeps allocations alive in static
# state until exit, which LeakSanitizer would report after every run.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=0

status=0
for t in "${targets[@]}"; do
  dir=$work/$t
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/crashes" "$dir/tmp"
  cp -r "tests/fuzz/corpus/$t/." "$dir/corpus/"
  log=$dir/fuzz.log
  echo "fuzz: $t for $seconds s"
  rc=0
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=16384 -print_final_stats=1
           -artifact_prefix="$dir/crashes/")
  [ -f "tests/fuzz/dicts/$t.dict" ] && options+=(-dict="tests/fuzz/dicts/$t.dict")
  TMPDIR=$dir/tmp "build-fuzz/tests/fuzz/fuzz_$t" "$dir/corpus" "${options[@]}" >"$log" 2>&1 || rc=$?
  final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  coverage() { grep -E "^#[0-9]+[[:space:]]+$1" "$log" | sed -n 's/.* cov: \([0-9]*\).*/\1/p' | tail -1; }
  execs=$(final_stat number_of_executed_units)
  per_s=$(final_stat average_exec_per_sec)
  added=$(final_stat new_units_added)
  cov_start=$(coverage INITED)
  cov_end=$(coverage '[A-Z]+')
  crashes=$(find "$dir/crashes" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$seconds" "${execs:-?}" "${per_s:-?}" "${cov_start:-?}" \
    "${cov_end:-?}" "${added:-?}" "$crashes" >>"$summary"
  if ((rc != 0 || crashes > 0)); then
    status=1
    echo "fuzz: $t found a problem (exit $rc); the input is in $dir/crashes/, the report in $log:"
    grep -E "ERROR: |runtime error|lathe fuzz:|SUMMARY:" "$log" | head -5 | sed 's/^/  /'
  fi
done
rm -rf "$work"/*/tmp
echo
if command -v column >/dev/null; then column -t -s $'\t' "$summary"; else cat "$summary"; fi
exit $status
