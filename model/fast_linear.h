// The base matmul of a linear layer, y = x W^T + b, with one CPU fast path for decode.
//
// Why: Debian's LibTorch 1.13 sends every f32 linear to OpenBLAS sgemm, and sgemm packs
// the whole weight matrix before multiplying even when x is a single row — for a one-token
// decode step that is a copy of every weight per token. sgemv reads W once (measured 2.7-3.5x
// faster for a 4864x896 weight, docs/benchmarks.md). bf16/f16 go to oneDNN, which has no such
// problem, and CUDA is left to cuBLAS.
#pragma once
#include <torch/torch.h>

namespace lathe {

// x [..., in], weight [out, in], bias [out] or undefined -> [..., out]. Chooses the path.
torch::Tensor linear_base(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// The plain reference: torch's linear, always.
torch::Tensor linear_reference(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// Whether linear_base takes the gemv path for these arguments.
bool linear_uses_gemv(const torch::Tensor& x, const torch::Tensor& weight);

}  // namespace lathe
