// The libFuzzer entry of one target (LATHE_BUILD_FUZZ; CMake names it with
// LATHE_FUZZ_TARGET). An exception other than lathe::Error escaping the parser is reported
// with its type and message and aborts, so libFuzzer records the input as a crash.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "tests/fuzz/fuzz_target.h"

#ifndef LATHE_FUZZ_TARGET
#error "compile with -DLATHE_FUZZ_TARGET=\"name\""
#endif

namespace {
const lathe::fuzz::FuzzTarget* fuzzed_target = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzzed_target = lathe::fuzz::find_fuzz_target(LATHE_FUZZ_TARGET);
  if (!fuzzed_target) {
    std::fprintf(stderr, "lathe fuzz: no target named %s\n", LATHE_FUZZ_TARGET);
    std::abort();
  }
  lathe::fuzz::prepare_fuzzing();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lathe::fuzz::run_fuzz_input(*fuzzed_target, data, size);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lathe fuzz: %s escaped %s: %s\n", lathe::fuzz::current_exception_type().c_str(),
                 LATHE_FUZZ_TARGET, e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "lathe fuzz: %s escaped %s\n", lathe::fuzz::current_exception_type().c_str(), LATHE_FUZZ_TARGET);
    std::abort();
  }
  return 0;
}
