#!/usr/bin/env bash
# Installs what is missing (Debian packages), then configures and builds build/ in Release.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake g++ make pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU)
  libgloo-dev             # headers of the Gloo LibTorch links: c10d's ProcessGroupGloo (data-parallel sft/grpo)
  libopenblas0-pthread    # not optional: the reference BLAS is ~50x slower for fp32 matmul
  libsentencepiece-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev
  libsqlite3-dev libcpp-httplib-dev googletest libgtest-dev
  libpq-dev               # the agent's PostgreSQL backend (libpq)
  postgresql              # its tests start a throwaway server on loopback (initdb, pg_ctl)
  curl                    # tests/e2e/serve.sh talks to `lathe serve` over HTTP
)
# Node for the openai-node client test, from Debian only where the machine has none (a
# NodeSource nodejs already bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null || packages+=(nodejs npm)
# The benchmarks' Python references (bench/reference: the same models in plain PyTorch eager)
# need Debian's PyTorch; tests do not, so CI skips the download unless asked.
[[ ${LATHE_BENCH:-0} == 1 ]] && packages+=(python3-torch)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# LibTorch must use OpenBLAS (pthread build), not the reference BLAS.
if command -v update-alternatives >/dev/null; then
  blas=$(ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 2>/dev/null || true)
  if [ -n "$blas" ]; then
    ${SUDO:-} update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas" >/dev/null 2>&1 || true
  fi
fi

# The official openai npm package, pinned by tests/serve/node/package-lock.json; installed
# again only when the lockfile changed. Without network the client test skips itself.
node_dir=tests/serve/node
if command -v npm >/dev/null; then
  if [ ! -f "$node_dir/node_modules/.package-lock.json" ] ||
     [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
      echo "setup: npm ci in $node_dir failed (offline?); tests/e2e/serve_openai_node.sh will skip"
  fi
else
  echo "setup: npm is missing; tests/e2e/serve_openai_node.sh will skip"
fi

echo "setup: packages ready after ${SECONDS} s"
jobs=${LATHE_JOBS:-$(nproc)}
# LATHE_BUILD_BENCH=OFF (scripts/test.sh) leaves the benchmark binaries out of the build.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLATHE_BUILD_BENCH="${LATHE_BUILD_BENCH:-ON}" ${LATHE_CMAKE_ARGS:-} >/dev/null
build_start=$SECONDS
cmake --build build -j "$jobs"
echo "setup: build took $((SECONDS - build_start)) s"
