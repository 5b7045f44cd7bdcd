// Process-wide compute settings: threads, BLAS/OpenMP cooperation, device and dtype parsing.
//
// Why a re-exec: libgomp reads its environment (OMP_WAIT_POLICY, ...) once, when the
// library loads — before main() runs. To set them
// inside lathe rather than in the user's shell, main() calls prepare_process_environment(),
// which sets what the user left unset and re-executes the binary once.
#pragma once
#include <torch/types.h>

#include <string>

namespace lathe {

// Sets the thread environment lathe was tuned with (see docs/benchmarks.md) unless the user
// set it, then re-executes /proc/self/exe once. Returns normally in the re-executed process.
void prepare_process_environment(int argc, char** argv);

// Sets LibTorch's intra-op threads (0 = all available cores) and OpenBLAS's own pool to the
// same count unless OPENBLAS_NUM_THREADS is set (docs/benchmarks.md, "Thread policy").
void configure_threads(int threads);
int available_cores();

// "cpu", "cuda", "cuda:N". Throws lathe::Error for anything else or when CUDA is missing.
torch::Device parse_device(const std::string& text);
// "f32" | "bf16" | "f16" (also "float32", "bfloat16", "float16").
torch::ScalarType parse_dtype(const std::string& text);
std::string dtype_name(torch::ScalarType dtype);

}  // namespace lathe
