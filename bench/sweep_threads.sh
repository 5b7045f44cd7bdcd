#!/usr/bin/env bash
# The thread-policy measurement behind core/runtime.cpp: bench_model under each candidate
# environment (OpenMP wait policy, OpenBLAS pool size and spin timeout), alternating so the
# settings share the machine's load; prints one RESULT line per configuration, tagged V0..V6.
#
#   bench/sweep_threads.sh [BIN] [ROUNDS] [bench_model flags...]
#   e.g. bench/sweep_threads.sh build-bench/bench/bench_model 2 --shapes tiny --repeats 3
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build-bench/bench/bench_model}"
rounds="${2:-2}"
shift $(( $# >= 2 ? 2 : $# ))
variants=(
  "OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1"
  "OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2 OPENBLAS_THREAD_TIMEOUT=4"
  "OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2"
  "OMP_WAIT_POLICY=ACTIVE OPENBLAS_NUM_THREADS=1"
  "OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=10000 OPENBLAS_NUM_THREADS=1"
  "OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=300000 OPENBLAS_NUM_THREADS=1"
  "OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=10000 OPENBLAS_NUM_THREADS=2 OPENBLAS_THREAD_TIMEOUT=4"
)
for i in "${!variants[@]}"; do echo "# V$i: ${variants[$i]}"; done
for ((r = 0; r < rounds; ++r)); do
  for i in "${!variants[@]}"; do
    # bench_model keeps an environment the user set (prepare_process_environment).
    env ${variants[$i]} "$bin" --no-bandwidth "$@" | grep '^RESULT' | sed "s/^RESULT /V$i /"
  done
done
