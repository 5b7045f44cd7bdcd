# Sanitizers and the fuzz build, applied to every target lathe defines (its libraries, tests,
# benchmarks and the binary; not the prebuilt LibTorch or Debian libraries).
# * LATHE_SANITIZE=address,undefined (any -fsanitize= list): compile and link with it and
#   frame pointers, for a second build folder that runs the unit tests (docs/reliability.md).
#   UBSan reports and continues unless UBSAN_OPTIONS=halt_on_error=1 (the fuzz script and the
#   measured test runs set it), so one rule decides whether undefined behaviour fails a run.
# * LATHE_BUILD_FUZZ: one libFuzzer executable per parser (tests/fuzz/); needs clang. Every
#   lathe target then carries libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link)
#   and, unless LATHE_SANITIZE says otherwise, ASan and UBSan.
# * LATHE_PREBUILT=DIR: link DIR's lathe_model and test helpers (DIR an ordinary build folder,
#   already built) instead of compiling them here (lathe_prebuilt_library). The sanitized test
#   build uses it: the core, data and agent code under test is instrumented, while the
#   LibTorch-heavy model library and the test helpers — over five minutes under ASan on 2
#   cores — are not compiled a second time.
set(LATHE_PREBUILT "" CACHE PATH "A built lathe folder whose model library and test helpers to link instead of building them")
set(LATHE_SANITIZE "" CACHE STRING "Sanitizers for lathe's own targets, e.g. address,undefined (empty = none)")
option(LATHE_BUILD_FUZZ "Build the libFuzzer targets (clang)" OFF)

if(LATHE_BUILD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "LATHE_BUILD_FUZZ needs clang (CC=clang CXX=clang++; scripts/fuzz.sh sets them), "
                        "not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  if(LATHE_SANITIZE STREQUAL "")
    set(LATHE_SANITIZE address,undefined)
  endif()
  # Line tables only: file:line in sanitizer reports without full debug info, which would
  # multiply the size of the LibTorch precompiled header.
  add_compile_options(-fsanitize=fuzzer-no-link -gline-tables-only)
endif()

if(NOT LATHE_SANITIZE STREQUAL "")
  add_compile_options(-fsanitize=${LATHE_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${LATHE_SANITIZE})
  message(STATUS "lathe sanitizers: ${LATHE_SANITIZE}")
endif()
