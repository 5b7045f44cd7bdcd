// The base matmul of a linear layer, y = x W^T + b, with CPU fast paths.
//
// Decode: Debian's LibTorch 1.13 sends every f32 linear to OpenBLAS sgemm, and sgemm packs
// the whole weight matrix before multiplying even when x is a single row — for a one-token
// decode step that is a copy of every weight per token. sgemv reads W once (measured 2.7-3.5x
// faster for a 4864x896 weight, docs/benchmarks.md). CUDA is left to cuBLAS.
//
// Many rows in f32 (prefill, training) go to plain linear (OpenBLAS sgemm on its own pool).
// lathe's sources are built without -fopenmp, and LibTorch's inline at::parallel_for forks
// only under _OPENMP: the gemv blocks below run one after another, each sgemv on OpenBLAS's
// pool. A row split of sgemm, and OpenMP here, both measured slower (docs/benchmarks.md).
//
// bf16 decode rows (at most 8, no gradient) take model/bf16_decode_linear.h, lathe's one
// OpenMP source, before any of the paths here.
//
// bf16 on CPUs without bf16 instructions (no AVX512-BF16, no AMX: Zen 3 and older, most
// AVX2-only machines): LibTorch's bf16 GEMM there runs a generic kernel measured 20-40x
// slower than f32 sgemm (docs/benchmarks.md, "LoRA training"), while one-row products stay
// on a fast gemv. So a bf16 product of several rows is computed in f32 instead — the bf16
// inputs are exact in f32, the sum is accumulated in f32 and the result rounded to bf16 once,
// which is what a native bf16 GEMM does too, up to summation order — without keeping f32
// copies of the weights for backward.
#pragma once
#include <torch/torch.h>

namespace lathe {

// x [..., in], weight [out, in], bias [out] or undefined -> [..., out]. Chooses the path.
torch::Tensor linear_base(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// The plain reference: torch's linear, always.
torch::Tensor linear_reference(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// Whether linear_base takes the gemv path for these arguments.
bool linear_uses_gemv(const torch::Tensor& x, const torch::Tensor& weight);

// Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16 in /proc/cpuinfo).
bool cpu_has_native_bf16_matmul();
// Whether bf16 matmuls on `device` run on native instructions (CUDA, or a CPU as above), so
// bf16 autocast pays for its casts.
bool device_has_native_bf16_matmul(torch::Device device);
// Whether a bf16 matmul with `a` as its left operand [..., rows, k] should run in f32: a CPU
// bf16 tensor of at least 4 rows on a CPU without native bf16 (fewer rows stay on the gemv).
bool bf16_matmul_in_f32(const torch::Tensor& a);
// The bf16 linear computed in f32 (any CPU; linear_base picks it via bf16_matmul_in_f32).
// Differentiable in x, weight and bias; backward recasts the saved bf16 tensors.
torch::Tensor bf16_linear_via_f32(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace lathe
