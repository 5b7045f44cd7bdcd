# Every dependency is a Debian package installed by scripts/setup.sh; an official LibTorch 2.x
# distribution works too (-DCMAKE_PREFIX_PATH=/path/to/libtorch).
find_package(Torch REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)   # the agent's PostgreSQL backend

# Torch's own flags (e.g. -D_GLIBCXX_USE_CXX11_ABI) must reach every target that includes it.
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${TORCH_CXX_FLAGS}")
# OpenMP for model/bf16_decode_kernels.cpp only (its comment says why), and only with GCC,
# whose libgomp is the runtime LibTorch already uses; elsewhere those kernels run on one thread.
find_package(OpenMP COMPONENTS CXX)
if(OpenMP_CXX_FOUND AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(LATHE_OPENMP_FLAGS "${OpenMP_CXX_FLAGS}")
  set(LATHE_OPENMP_LIBRARIES ${OpenMP_CXX_LIBRARIES})
else()
  set(LATHE_OPENMP_FLAGS "")
  set(LATHE_OPENMP_LIBRARIES "")
  message(STATUS "lathe: no GCC OpenMP; the bf16 decode kernels run on one thread")
endif()
