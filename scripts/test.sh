#!/usr/bin/env bash
# Set-up (scripts/setup.sh), then every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests need no benchmark binaries; leaving them out keeps a clean CI run inside its
# 30 minutes on 2 cores (the bench scripts and scripts/demo.sh build them).
LATHE_BUILD_BENCH=${LATHE_BUILD_BENCH:-OFF} scripts/setup.sh

# Headless Chromium renders the run report (tests/e2e/report_render.sh); only the tests need it,
# so it is installed here rather than in setup.sh. Without it that test skips with a message.
if ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
    echo "test: could not install chromium; the report rendering test will skip"
  fi
fi

# ctest runs as many tests at once as there are cores, each with LibTorch's threads; a second
# OpenBLAS thread per process would only spin against them (core/runtime.cpp), so one each.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@")

# A second build with AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/) runs the
# unit tests of the libraries that read outside input: core (configs, JSON, HTTP client),
# data (datasets, CSV/JSONL, SQL) and agent (SQL/XML extraction, executors). The model, train,
# rl and serve suites stay out: sanitized LibTorch compute would take CI past its 30 minutes.
# To fit, only those three libraries and their tests are compiled, at -O0: the model library
# and the test helpers come uninstrumented from build/ (LATHE_PREBUILT). Measured on 2 cores:
# about 6 minutes, where compiling everything at -O1 took 18 (docs/reliability.md).
# LATHE_SANITIZED_TESTS=0 skips it; so does a filtered run (arguments for ctest).
if [ "${LATHE_SANITIZED_TESTS:-1}" = 1 ] && [ $# -eq 0 ]; then
  sanitized_start=$SECONDS
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O0 -DNDEBUG" \
    -DLATHE_SANITIZE=address,undefined -DLATHE_PREBUILT="$PWD/build" -DLATHE_BUILD_BENCH=OFF \
    ${LATHE_CMAKE_ARGS:-} >/dev/null
  cmake --build build-asan -j "${LATHE_JOBS:-$(nproc)}" --target core_tests data_tests agent_tests
  # Leaks are not checked: LibTorch's and SentencePiece's process-lifetime singletons would be
  # reported on every exit. Any UBSan finding fails the run, as an ASan one does.
  for suite in core data agent; do
    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      "build-asan/tests/$suite/${suite}_tests" --gtest_brief=1
  done
  echo "test: sanitized build and unit tests took $((SECONDS - sanitized_start)) s"
fi
