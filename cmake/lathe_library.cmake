# lathe_library(NAME SOURCES ... DEPS ...): one static library per source folder.
# Libraries that include LibTorch share one precompiled header (the torch headers dominate
# compile time: a plain torch TU takes ~15 s, with the PCH ~3 s).
set(LATHE_TORCH_PCH_OWNER "" CACHE INTERNAL "")

function(lathe_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_options(${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(ARG_TORCH)
    lathe_use_torch_pch(${name})
  endif()
endfunction()

function(lathe_use_torch_pch target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
  if(LATHE_TORCH_PCH_OWNER STREQUAL "")
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
    set(LATHE_TORCH_PCH_OWNER ${target} CACHE INTERNAL "")
  else()
    target_precompile_headers(${target} REUSE_FROM ${LATHE_TORCH_PCH_OWNER})
  endif()
endfunction()

# lathe_folder_library(NAME [TORCH] DEPS ...): the library of one source folder, built from
# every .cpp in it (so parallel work on a folder never fights over a source list).
function(lathe_folder_library name)
  cmake_parse_arguments(ARG "TORCH" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  if(sources)
    if(ARG_TORCH)
      lathe_library(${name} TORCH SOURCES ${sources} DEPS ${ARG_DEPS})
    else()
      lathe_library(${name} SOURCES ${sources} DEPS ${ARG_DEPS})
    endif()
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
  endif()
endfunction()

# lathe_test_suite(PREFIX DEPS ...): one GoogleTest binary, PREFIX_tests, from every .cpp in a
# tests/ folder; each TEST becomes its own ctest entry. One binary per folder rather than per
# file: every link against LibTorch costs seconds, and CI builds everything on 2 cores.
function(lathe_test_suite prefix)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  set(name ${prefix}_tests)
  add_executable(${name} ${sources})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} lathe_test_support GTest::gtest_main)
  # -O1: test code only drives the libraries (built -O3); it compiles ~20% faster than at -O3,
  # and __OPTIMIZE__ stays defined, so the shared precompiled header still applies. A sanitized
  # build keeps its own level for everything: a PCH built at another -O level is not used.
  target_compile_options(${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(LATHE_SANITIZE STREQUAL "")
    target_compile_options(${name} PRIVATE -O1)
  endif()
  lathe_use_torch_pch(${name})
  gtest_discover_tests(${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} DISCOVERY_TIMEOUT 120)
endfunction()

# lathe_prebuilt_library(NAME SUBDIR DEPS ...): with LATHE_PREBUILT set (cmake/sanitizers.cmake),
# NAME is DIR/SUBDIR/libNAME.a from that already-built folder instead of being compiled here.
# Sets LATHE_USE_PREBUILT in the caller: true when it imported.
function(lathe_prebuilt_library name subdir)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  set(LATHE_USE_PREBUILT FALSE PARENT_SCOPE)
  if(NOT LATHE_PREBUILT)
    return()
  endif()
  set(file ${LATHE_PREBUILT}/${subdir}/lib${name}.a)
  if(NOT EXISTS ${file})
    message(FATAL_ERROR "LATHE_PREBUILT: ${file} does not exist; build ${name} in ${LATHE_PREBUILT} first")
  endif()
  add_library(${name} STATIC IMPORTED GLOBAL)
  set_target_properties(${name} PROPERTIES IMPORTED_LOCATION ${file}
    INTERFACE_INCLUDE_DIRECTORIES ${PROJECT_SOURCE_DIR} INTERFACE_LINK_LIBRARIES "${ARG_DEPS}")
  set(LATHE_USE_PREBUILT TRUE PARENT_SCOPE)
endfunction()
