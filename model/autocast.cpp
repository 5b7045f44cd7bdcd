#include "model/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "core/error.h"

// The device-generic API arrived in 2.4; the per-device functions before it are deprecated
// there (and warn at run time).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define LATHE_AUTOCAST_DEVICE_API 1
#else
#define LATHE_AUTOCAST_DEVICE_API 0
#endif

namespace lathe {
namespace {

void apply(const AutocastState& s) {
#if LATHE_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_enabled(at::kCPU, s.cpu);
  at::autocast::set_autocast_dtype(at::kCPU, s.cpu_dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, s.cuda);
  at::autocast::set_autocast_dtype(at::kCUDA, s.cuda_dtype);
#else
  at::autocast::set_cpu_enabled(s.cpu);
  at::autocast::set_autocast_cpu_dtype(s.cpu_dtype);
  at::autocast::set_enabled(s.cuda);
  at::autocast::set_autocast_gpu_dtype(s.cuda_dtype);
#endif
}

}  // namespace

AutocastState AutocastState::current() {
  AutocastState s;
#if LATHE_AUTOCAST_DEVICE_API
  s.cpu = at::autocast::is_autocast_enabled(at::kCPU);
  s.cpu_dtype = at::autocast::get_autocast_dtype(at::kCPU);
  s.cuda = at::autocast::is_autocast_enabled(at::kCUDA);
  s.cuda_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
#else
  s.cpu = at::autocast::is_cpu_enabled();
  s.cpu_dtype = at::autocast::get_autocast_cpu_dtype();
  s.cuda = at::autocast::is_enabled();
  s.cuda_dtype = at::autocast::get_autocast_gpu_dtype();
#endif
  return s;
}

AutocastScope::AutocastScope(const AutocastState& state) : saved_(AutocastState::current()) {
  at::autocast::increment_nesting();
  apply(state);
}

namespace {

AutocastState with_device(torch::Device device, torch::ScalarType dtype) {
  if (dtype != torch::kBFloat16 && dtype != torch::kHalf)
    fail(std::string("autocast dtype must be bf16 or f16, got ") + c10::toString(dtype));
  AutocastState s = AutocastState::current();
  if (device.is_cuda()) {
    s.cuda = true;
    s.cuda_dtype = dtype;
  } else if (device.is_cpu()) {
    s.cpu = true;
    s.cpu_dtype = dtype;
  } else {
    fail("autocast supports cpu and cuda devices, got " + device.str());
  }
  return s;
}

}  // namespace

AutocastScope::AutocastScope(torch::Device device, torch::ScalarType dtype)
    : AutocastScope(with_device(device, dtype)) {}

AutocastScope::~AutocastScope() {
  // The cache holds low-precision copies of trainable weights for one forward; they go stale
  // once the optimizer steps, so the outermost scope drops them (as torch.autocast does).
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  apply(saved_);
}

}  // namespace lathe
