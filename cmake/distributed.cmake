# Which c10d backends this LibTorch build can link (train/distributed.cpp). TorchConfig.cmake
# does not say, and the c10d headers need more than LibTorch ships:
# * Gloo: ProcessGroupGloo.hpp includes gloo's own headers. Debian's LibTorch links the
#   system libgloo (headers: libgloo-dev, installed by scripts/setup.sh); the official
#   distributions bundle Gloo inside libtorch_cpu without its headers, so point
#   LATHE_GLOO_INCLUDE_DIR at a gloo checkout of the same version (pytorch's third_party/gloo,
#   with its generated gloo/config.h).
# * NCCL: ProcessGroupNCCL.hpp includes <nccl.h> (NCCL's development files or the nvidia-nccl
#   wheel's include folder: LATHE_NCCL_INCLUDE_DIR).
# LibTorch's targets define USE_C10D_GLOO / USE_C10D_NCCL for the backends the build has; a
# backend is compiled in only when a probe program using its header (under that define alone)
# links against this LibTorch. Without it, asking for the backend at run time is an error that
# says so.
include(CheckCXXSourceCompiles)

find_path(LATHE_GLOO_INCLUDE_DIR gloo/rendezvous/store.h HINTS ${TORCH_INCLUDE_DIRS}
          DOC "gloo headers matching LibTorch's Gloo (for ProcessGroupGloo)")
find_library(LATHE_GLOO_LIBRARY gloo DOC "the system libgloo, when LibTorch links it (Debian)")
find_path(LATHE_NCCL_INCLUDE_DIR nccl.h HINTS ${TORCH_INCLUDE_DIRS} ENV NCCL_ROOT ENV CUDA_HOME
          PATH_SUFFIXES include DOC "nccl.h (for ProcessGroupNCCL)")

set(LATHE_C10D_INCLUDE_DIRS "")
set(LATHE_C10D_LIBRARIES "")

function(lathe_probe_c10d result header code include_dir extra_libs)
  set(CMAKE_REQUIRED_QUIET ON)
  set(CMAKE_REQUIRED_FLAGS "${TORCH_CXX_FLAGS}")
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS} ${include_dir})
  set(CMAKE_REQUIRED_LIBRARIES ${TORCH_LIBRARIES} ${extra_libs})
  check_cxx_source_compiles("#include <${header}>\nint main() { ${code} }" ${result})
endfunction()

set(LATHE_HAVE_C10D_GLOO OFF)
if(LATHE_GLOO_INCLUDE_DIR)
  set(gloo_code "auto d = c10d::ProcessGroupGloo::createDeviceForHostname(\"127.0.0.1\"); return d ? 0 : 1;")
  lathe_probe_c10d(LATHE_C10D_GLOO_LINKS torch/csrc/distributed/c10d/ProcessGroupGloo.hpp
                   "${gloo_code}" "${LATHE_GLOO_INCLUDE_DIR}" "")
  if(LATHE_C10D_GLOO_LINKS)
    set(LATHE_HAVE_C10D_GLOO ON)
  elseif(LATHE_GLOO_LIBRARY)
    # Debian: gloo's symbols come from libgloo.so, which must then be named on the link line.
    lathe_probe_c10d(LATHE_C10D_GLOO_LINKS_WITH_LIBGLOO torch/csrc/distributed/c10d/ProcessGroupGloo.hpp
                     "${gloo_code}" "${LATHE_GLOO_INCLUDE_DIR}" "${LATHE_GLOO_LIBRARY}")
    if(LATHE_C10D_GLOO_LINKS_WITH_LIBGLOO)
      set(LATHE_HAVE_C10D_GLOO ON)
      list(APPEND LATHE_C10D_LIBRARIES ${LATHE_GLOO_LIBRARY})
    endif()
  endif()
  if(LATHE_HAVE_C10D_GLOO)
    list(APPEND LATHE_C10D_INCLUDE_DIRS ${LATHE_GLOO_INCLUDE_DIR})
  endif()
endif()

set(LATHE_HAVE_C10D_NCCL OFF)
if(LATHE_NCCL_INCLUDE_DIR AND TORCH_CUDA_LIBRARIES)
  lathe_probe_c10d(LATHE_C10D_NCCL_LINKS torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp
                   "auto o = c10d::ProcessGroupNCCL::Options::create(); return o ? 0 : 1;"
                   "${LATHE_NCCL_INCLUDE_DIR}" "")
  if(LATHE_C10D_NCCL_LINKS)
    set(LATHE_HAVE_C10D_NCCL ON)
    list(APPEND LATHE_C10D_INCLUDE_DIRS ${LATHE_NCCL_INCLUDE_DIR})
  endif()
endif()

message(STATUS "lathe distributed backends: gloo ${LATHE_HAVE_C10D_GLOO}, nccl ${LATHE_HAVE_C10D_NCCL}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/c10d_backends.h.in ${PROJECT_BINARY_DIR}/generated/train/c10d_backends.h)
