#!/usr/bin/env bash
# Set-up (scripts/setup.sh), then every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@"
