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

cd build
ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@"
