// The raw kernels behind bf16_decode_linear (model/bf16_decode_linear.h), kept free of
// LibTorch so this one file can be built with OpenMP: lathe's other sources are compiled
// without it, and there at::parallel_for runs its body on the calling thread only.
#pragma once
#include <cstdint>

namespace lathe {

// The most input rows the kernels take.
constexpr int64_t kBf16KernelMaxRows = 8;

enum class Bf16DecodeIsa { scalar, avx2, avx512 };

// The widest kernel this CPU runs.
Bf16DecodeIsa bf16_decode_best_isa();

// y [rows, out] = x [rows, in] . w [out, in]^T (+ bias [out], or null), all bf16 bits, row-major,
// 1 <= rows <= 8: summed in f32, the bias added in f32, rounded to bf16 once. With threads > 1
// the output rows are split over the OpenMP pool in contiguous chunks; each output element is
// summed the same way whatever the split, so results do not depend on the thread count.
void bf16_rows_product(Bf16DecodeIsa isa, const uint16_t* w, int64_t out, int64_t in, const uint16_t* x, int64_t rows,
                       const uint16_t* bias, uint16_t* y, int threads);

}  // namespace lathe
