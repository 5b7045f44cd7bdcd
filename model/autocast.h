// Automatic mixed precision (what torch.autocast does in Python) for LibTorch C++, on CPU and
// CUDA: inside an AutocastScope the matmul-like ops (linear, matmul, mm, bmm, ...) run in the
// low-precision dtype while weights stay as they are (f32 master weights), and ops autocast
// lists as precision-sensitive stay in f32. LibTorch 1.13 has the C++ switches
// (at::autocast::set_cpu_enabled, set_autocast_cpu_dtype); 2.4 renamed them to
// set_autocast_enabled(device_type, ...) and friends, so both spellings are hidden here.
// Like Python's context manager, the outermost scope clears autocast's cast cache on exit.
#pragma once
#include <torch/types.h>

namespace lathe {

// Autocast settings of the calling thread, for CPU and CUDA.
struct AutocastState {
  bool cpu = false;
  torch::ScalarType cpu_dtype = torch::kBFloat16;
  bool cuda = false;
  torch::ScalarType cuda_dtype = torch::kHalf;
  static AutocastState current();
};

// Applies `state` for the scope's lifetime and restores the previous settings after.
class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& state);
  // Autocast to `dtype` on `device`'s type (the other device type left as it is).
  AutocastScope(torch::Device device, torch::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState saved_;
};

}  // namespace lathe
