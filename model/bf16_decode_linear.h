// bf16 products of a few rows (decode: one row per sequence of the batch) that read the bf16
// weight once, at memory bandwidth.
//
// On LibTorch 1.13 a one-row bf16 linear on an AMX CPU runs at 0.42 of the bandwidth bound for
// the 0.5B shape (docs/benchmarks.md): oneDNN prepares the weight for every call. Here each
// weight row is widened to f32 in registers (bf16 is the top half of an f32) and dotted with
// every input row while it is in L1, the output rows split over LibTorch's threads. Sums are in
// f32 and rounded to bf16 once, as a native bf16 GEMM does, up to summation order.
#pragma once
#include <torch/torch.h>

#include "model/bf16_decode_kernels.h"

namespace lathe {

// The most input rows the kernel takes; more go to the GEMM paths.
constexpr int64_t kBf16DecodeMaxRows = kBf16KernelMaxRows;

// Whether bf16_decode_linear takes these arguments: CPU bf16 x [..., in] of at most
// kBf16DecodeMaxRows rows, a contiguous bf16 weight [out, in], a bf16 bias or none, no gradient
// wanted.
bool bf16_decode_linear_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// The kernels, widest first; `best` is the widest this CPU runs (chosen once, at first use).
enum class Bf16DecodeKernel { best, avx512, avx2, scalar };
// Whether this CPU (and build) can run `kernel`.
bool bf16_decode_kernel_available(Bf16DecodeKernel kernel);

// y [..., out] = x W^T (+ b), for arguments bf16_decode_linear_applies accepts; tests name the
// kernel, everything else takes the best.
torch::Tensor bf16_decode_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                 Bf16DecodeKernel kernel = Bf16DecodeKernel::best);

}  // namespace lathe
