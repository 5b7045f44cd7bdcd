#include "model/fast_linear.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "model/autocast.h"
#include "model/bf16_decode_linear.h"

namespace lathe {

torch::Tensor linear_reference(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return torch::nn::functional::linear(x, weight, bias);
}

bool linear_uses_gemv(const torch::Tensor& x, const torch::Tensor& weight) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && weight.scalar_type() == torch::kFloat32 &&
         x.dim() >= 1 && x.numel() == x.size(-1) && weight.dim() == 2 && weight.is_contiguous();
}

namespace {

// Large weights: the output rows in blocks, one sgemv each (serially: see the header; each
// sgemv runs on OpenBLAS's pool). This still beat plain linear (tiny batch-1 decode 674
// against 438 tokens/s, 2026-12-02): plain linear is sgemm, which packs the weight.
constexpr int64_t kParallelWeightElements = int64_t(1) << 20;

torch::Tensor parallel_gemv(const torch::Tensor& weight, const torch::Tensor& x, const torch::Tensor& bias) {
  const int64_t out = weight.size(0), in = weight.size(1);
  auto y = torch::empty({out}, x.options());
  const bool inference = c10::InferenceMode::is_enabled();
  at::parallel_for(0, out, std::max<int64_t>(1, kParallelWeightElements / 4 / in), [&](int64_t begin, int64_t end) {
    // Worker threads do not inherit the caller's inference mode; writing into an
    // inference tensor needs it.
    c10::InferenceMode mode(inference);
    auto part = y.narrow(0, begin, end - begin);
    auto rows = weight.narrow(0, begin, end - begin);
    if (bias.defined()) torch::addmv_out(part, bias.narrow(0, begin, end - begin), rows, x);
    else torch::mv_out(part, rows, x);
  });
  return y;
}

}  // namespace

bool cpu_has_native_bf16_matmul() {
  static const bool native = [] {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line))
      if (line.rfind("flags", 0) == 0)
        return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
    return true;  // not Linux/x86: leave bf16 to LibTorch
  }();
  return native;
}

bool device_has_native_bf16_matmul(torch::Device device) {
  return device.is_cuda() || (device.is_cpu() && cpu_has_native_bf16_matmul());
}

bool bf16_matmul_in_f32(const torch::Tensor& a) {
  return a.device().is_cpu() && a.scalar_type() == torch::kBFloat16 && a.dim() >= 2 &&
         a.numel() / a.size(-1) >= 4 && !cpu_has_native_bf16_matmul();
}

namespace {

namespace F = torch::nn::functional;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class Bf16LinearViaF32 : public torch::autograd::Function<Bf16LinearViaF32> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const c10::optional<torch::Tensor>& bias) {
    // Only bf16 tensors are kept (x only when the weight trains); f32 copies are transient.
    ctx->save_for_backward({weight.requires_grad() ? x : torch::Tensor(), weight});
    ctx->saved_data["bias_dtype"] = bias ? static_cast<int64_t>(bias->scalar_type()) : int64_t(-1);
    AutocastScope exact{AutocastState{}};  // an outer autocast would cast back to bf16
    const torch::Tensor b = bias ? bias->to(torch::kFloat32) : torch::Tensor();
    return F::linear(x.to(torch::kFloat32), weight.to(torch::kFloat32), b).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    AutocastScope exact{AutocastState{}};
    const auto gy = grad_outputs[0].to(torch::kFloat32);         // [..., out]
    const auto gy2 = gy.reshape({-1, gy.size(-1)});              // [rows, out]
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) dx = torch::matmul(gy, weight.to(torch::kFloat32)).to(weight.scalar_type());
    if (ctx->needs_input_grad(1))
      dw = torch::matmul(gy2.t(), x.reshape({-1, x.size(-1)}).to(torch::kFloat32)).to(weight.scalar_type());
    const int64_t bias_dtype = ctx->saved_data["bias_dtype"].toInt();  // -1: no bias (and no such input)
    if (bias_dtype >= 0 && ctx->needs_input_grad(2)) db = gy2.sum(0).to(static_cast<torch::ScalarType>(bias_dtype));
    return {dx, dw, db};
  }
};

}  // namespace

torch::Tensor bf16_linear_via_f32(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool needs_grad = at::GradMode::is_enabled() &&
                          (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (!needs_grad) {
    AutocastScope exact{AutocastState{}};
    const torch::Tensor b = bias.defined() ? bias.to(torch::kFloat32) : torch::Tensor();
    return F::linear(x.to(torch::kFloat32), weight.to(torch::kFloat32), b).to(x.scalar_type());
  }
  c10::optional<torch::Tensor> b;
  if (bias.defined()) b = bias;
  return Bf16LinearViaF32::apply(x, weight, b);
}

torch::Tensor linear_base(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (bf16_decode_linear_applies(x, weight, bias)) return bf16_decode_linear(x, weight, bias);
  if (weight.scalar_type() == torch::kBFloat16 && bf16_matmul_in_f32(x)) return bf16_linear_via_f32(x, weight, bias);
  if (!linear_uses_gemv(x, weight)) return linear_reference(x, weight, bias);
  // One row: W [out, in] @ x [in] -> [out], then the caller's leading dims back.
  const auto v = x.reshape({-1});
  const bool needs_grad = at::GradMode::is_enabled() &&
                          (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  torch::Tensor y;
  if (!needs_grad && at::get_num_threads() > 1 && weight.numel() >= kParallelWeightElements)
    y = parallel_gemv(weight, v, bias);  // out= kernels: inference only
  else
    y = bias.defined() ? torch::addmv(bias, weight, v) : torch::mv(weight, v);
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return y.view(sizes);
}

}  // namespace lathe
