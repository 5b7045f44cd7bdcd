#include "model/bf16_decode_kernels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LATHE_X86_KERNELS 1
#endif

namespace lathe {
namespace {

using Isa = Bf16DecodeIsa;

float bf16_bits_to_float(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &widened, sizeof f);
  return f;
}

// One block of R weight rows against M input rows: out[r * M + m] = w_r . x_m. The kernels
// differ only in vector width; each keeps R * M <= 8 accumulators so nothing spills.
template <int M, int R>
void block_scalar(const uint16_t* w, int64_t in, const float* x, float* out) {
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) {
      float sum = 0;
      for (int64_t k = 0; k < in; ++k) sum += bf16_bits_to_float(w[r * in + k]) * x[m * in + k];
      out[r * M + m] = sum;
    }
}

// The AVX-512 and AVX2 kernels below have the same shape on purpose: each needs its own
// target attribute, which one template cannot vary per instantiation.

// The columns after the last full vector.
template <int M, int R>
void add_tail(const uint16_t* w, int64_t in, const float* x, int64_t k0, float* out) {
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m)
      for (int64_t k = k0; k < in; ++k) out[r * M + m] += bf16_bits_to_float(w[r * in + k]) * x[m * in + k];
}

#ifdef LATHE_X86_KERNELS
// Software prefetch this far ahead in each weight row (they are contiguous, so it runs on into
// the next rows): one-thread bf16 streaming rose from ~7.5 to ~10 GB/s, two threads from ~14 to
// ~18-20 (0.5B head, AMX Xeon; 512 and 2048 bytes were in between, 8192 no better).
constexpr int kPrefetchBytes = 4096;

// GCC 12 flags _mm512_slli_epi32's own undefined pass-through operand as uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Through memory: once per weight row, and GCC 12 warns inside its own reduce intrinsics.
__attribute__((target("avx512f"))) float horizontal_sum_avx512(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float sum = 0;
  for (float lane : lanes) sum += lane;
  return sum;
}

template <int M, int R>
__attribute__((target("avx512f"))) void block_avx512(const uint16_t* w, int64_t in, const float* x, float* out) {
  __m512 acc[R][M];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= in; k += 16) {
    __m512 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w + r * in + k) + kPrefetchBytes, _MM_HINT_T0);
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * in + k));
      wv[r] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      const __m512 xv = _mm512_loadu_ps(x + m * in + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][m] = _mm512_fmadd_ps(wv[r], xv, acc[r][m]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) out[r * M + m] = horizontal_sum_avx512(acc[r][m]);
  add_tail<M, R>(w, in, x, k, out);
}

__attribute__((target("avx2,fma"))) float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}

template <int M, int R>
__attribute__((target("avx2,fma"))) void block_avx2(const uint16_t* w, int64_t in, const float* x, float* out) {
  __m256 acc[R][M];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) acc[r][m] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= in; k += 8) {
    __m256 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w + r * in + k) + kPrefetchBytes, _MM_HINT_T0);
      const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + r * in + k));
      wv[r] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      const __m256 xv = _mm256_loadu_ps(x + m * in + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][m] = _mm256_fmadd_ps(wv[r], xv, acc[r][m]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) out[r * M + m] = horizontal_sum(acc[r][m]);
  add_tail<M, R>(w, in, x, k, out);
}
#pragma GCC diagnostic pop
#endif

template <int M, int R>
void run_block(Isa isa, const uint16_t* w, int64_t in, const float* x, float* out) {
#ifdef LATHE_X86_KERNELS
  if (isa == Isa::avx512) return block_avx512<M, R>(w, in, x, out);
  if (isa == Isa::avx2) return block_avx2<M, R>(w, in, x, out);
#endif
  (void)isa;
  block_scalar<M, R>(w, in, x, out);
}

// Output rows [begin, end) for M input rows: y [M, out] (+ bias [out]).
// f32 -> bf16 bits, rounding to nearest even (as c10::BFloat16 does); NaN stays a quiet NaN.
uint16_t float_to_bf16_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// Output rows [begin, end) for M input rows: y [M, out] = x . w^T (+ bias), rounded to bf16.
template <int M>
void rows_for(Isa isa, const uint16_t* w, int64_t in, int64_t out_features, const float* x, const uint16_t* bias,
              uint16_t* y, int64_t begin, int64_t end) {
  constexpr int R = M == 1 ? 4 : (M == 2 ? 4 : (M <= 4 ? 2 : 1));  // R * M <= 8 accumulators
  float block[R * M];
  auto store = [&](int64_t row, int rows) {
    for (int r = 0; r < rows; ++r)
      for (int m = 0; m < M; ++m)
        y[m * out_features + row + r] =
            float_to_bf16_bits(block[r * M + m] + (bias ? bf16_bits_to_float(bias[row + r]) : 0.0f));
  };
  int64_t o = begin;
  for (; o + R <= end; o += R) {
    run_block<M, R>(isa, w + o * in, in, x, block);
    store(o, R);
  }
  for (; o < end; ++o) {
    run_block<M, 1>(isa, w + o * in, in, x, block);
    store(o, 1);
  }
}

using RowsFn = void (*)(Isa, const uint16_t*, int64_t, int64_t, const float*, const uint16_t*, uint16_t*, int64_t,
                        int64_t);
constexpr RowsFn kRowsFor[kBf16KernelMaxRows] = {rows_for<1>, rows_for<2>, rows_for<3>, rows_for<4>,
                                                  rows_for<5>, rows_for<6>, rows_for<7>, rows_for<8>};

}  // namespace

Bf16DecodeIsa bf16_decode_best_isa() {
#ifdef LATHE_X86_KERNELS
  if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::scalar;
}

void bf16_rows_product(Bf16DecodeIsa isa, const uint16_t* w, int64_t out, int64_t in, const uint16_t* x, int64_t rows,
                       const uint16_t* bias, uint16_t* y, int threads) {
  // The inputs widened once, into a buffer each calling thread keeps (up to 8 x in floats).
  thread_local std::vector<float> widened;
  widened.resize(static_cast<size_t>(rows * in));
  for (int64_t i = 0; i < rows * in; ++i) widened[i] = bf16_bits_to_float(x[i]);
  const float* xf = widened.data();
  const RowsFn fn = kRowsFor[rows - 1];
#ifdef _OPENMP
  if (threads > 1) {
    // No num_threads clause (LibTorch avoids it: GOMP rebuilds its pool when the count
    // changes); the calling thread's pool size is LibTorch's, set by torch::set_num_threads.
#pragma omp parallel
    {
      const int64_t n = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t chunk = (out + n - 1) / n;
      const int64_t begin = std::min(out, t * chunk), end = std::min(out, begin + chunk);
      if (begin < end) fn(isa, w, in, out, xf, bias, y, begin, end);
    }
    return;
  }
#endif
  (void)threads;
  fn(isa, w, in, out, xf, bias, y, 0, out);
}

}  // namespace lathe
