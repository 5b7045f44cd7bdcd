#include "core/runtime.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include <torch/torch.h>

#include "core/error.h"

namespace lathe {

namespace {

constexpr const char* kReexecMarker = "LATHE_THREAD_ENV_SET";

void set_default_env(const char* name, const char* value) {
  if (std::getenv(name) == nullptr) ::setenv(name, value, 1);
}

}  // namespace

void prepare_process_environment(int argc, char** argv) {
  if (std::getenv(kReexecMarker) != nullptr) return;
  ::setenv(kReexecMarker, "1", 1);
  // Thread policy, chosen by measurement (docs/benchmarks.md, "Thread policy": bench_model
  // over 7 settings, and SFT steps). Idle OpenMP workers sleep instead of spinning: every
  // spinning OpenMP setting was slower, because a spinning worker holds a core another thread
  // needs. OpenBLAS's pool is sized in configure_threads.
  set_default_env("OMP_WAIT_POLICY", "PASSIVE");
  ::execv("/proc/self/exe", argv);
  // If the re-exec fails (no /proc), carry on with the environment as it is.
  (void)argc;
}

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

void configure_threads(int threads) {
  if (threads < 0) fail("--threads must be >= 0 (0 = all cores), got " + std::to_string(threads));
  const int n = threads == 0 ? available_cores() : threads;
  torch::set_num_threads(n);
  // OpenBLAS's pthread pool gets as many threads as LibTorch: on a quiet 2-core machine that
  // made decode 1.6-1.9x and an SFT step 1.6x faster than one OpenBLAS thread (OpenBLAS's
  // spinning workers only lose where other processes want the cores: scripts/test.sh runs
  // tests side by side with OPENBLAS_NUM_THREADS=1). A user's OPENBLAS_NUM_THREADS wins.
  // OpenBLAS exports openblas_set_num_threads; look it up so lathe links no BLAS directly.
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    const char* user = std::getenv("OPENBLAS_NUM_THREADS");
    fn(user ? std::max(1, std::atoi(user)) : n);
  }
}

torch::Device parse_device(const std::string& text) {
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text == "cuda" || text.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      fail("--device " + text + ": this LibTorch build has no CUDA or no GPU is visible; use --device cpu");
    int index = 0;
    if (text.size() > 5) {
      const std::string digits = text.substr(5);
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
        fail("--device " + text + ": expected cuda:N");
      index = std::stoi(digits);
      if (index >= static_cast<int>(torch::cuda::device_count()))
        fail("--device " + text + ": only " + std::to_string(torch::cuda::device_count()) + " GPU(s) visible");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail("--device " + text + ": expected cpu, cuda or cuda:N");
}

torch::ScalarType parse_dtype(const std::string& text) {
  if (text == "f32" || text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "bf16" || text == "bfloat16") return torch::kBFloat16;
  if (text == "f16" || text == "float16" || text == "fp16") return torch::kFloat16;
  fail("--dtype " + text + ": expected f32, bf16 or f16");
}

std::string dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "f32";
    case torch::kBFloat16: return "bf16";
    case torch::kFloat16: return "f16";
    default: return c10::toString(dtype);
  }
}

}  // namespace lathe
