#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace lathe {

namespace {

torch::Tensor default_inv_freq(double base, int64_t dim) {
  // 1 / base^(2j/D), in f32 like transformers' _compute_default_rope_parameters.
  auto exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<float>(dim);
  return 1.0 / torch::pow(torch::scalar_tensor(base, torch::kFloat32), exponents);
}

torch::Tensor llama3_inv_freq(const RopeScaling& s, torch::Tensor inv_freq) {
  const double orig = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = orig / s.low_freq_factor;
  const double high_wavelen = orig / s.high_freq_factor;
  auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
  auto smooth = (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  auto is_medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
  return torch::where(is_medium, smoothed, scaled);
}

double yarn_correction_dim(double num_rotations, int64_t dim, double base, double max_pos) {
  return (dim * std::log(max_pos / (num_rotations * 2 * M_PI))) / (2 * std::log(base));
}

torch::Tensor yarn_inv_freq(const RopeScaling& s, double base, int64_t dim, int64_t max_pos) {
  const double orig = s.original_max_position_embeddings > 0 ? s.original_max_position_embeddings : max_pos;
  auto exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<float>(dim);
  auto pos_freqs = torch::pow(torch::scalar_tensor(base, torch::kFloat32), exponents);
  auto extrapolation = 1.0 / pos_freqs;
  auto interpolation = 1.0 / (s.factor * pos_freqs);
  double low = std::floor(yarn_correction_dim(s.beta_fast, dim, base, orig));
  double high = std::ceil(yarn_correction_dim(s.beta_slow, dim, base, orig));
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // avoid a zero-width ramp, as transformers does
  auto ramp = ((torch::arange(dim / 2, torch::kFloat32) - low) / (high - low)).clamp(0, 1);
  auto extrapolation_factor = 1 - ramp;
  return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
}

}  // namespace

RopeTables rope_tables(const ModelConfig& config, int64_t seq_len) {
  const int64_t dim = config.head_dim;
  const RopeScaling& s = config.rope_scaling;
  RopeTables t;
  if (s.type == "default") {
    t.inv_freq = default_inv_freq(config.rope_theta, dim);
  } else if (s.type == "linear") {
    t.inv_freq = default_inv_freq(config.rope_theta, dim) / s.factor;
  } else if (s.type == "dynamic") {
    double base = config.rope_theta;
    const double max_pos = static_cast<double>(config.max_position_embeddings);
    if (seq_len > config.max_position_embeddings) {
      base = config.rope_theta *
             std::pow((s.factor * seq_len / max_pos) - (s.factor - 1), static_cast<double>(dim) / (dim - 2));
    }
    t.inv_freq = default_inv_freq(base, dim);
  } else if (s.type == "llama3") {
    RopeScaling scaled = s;
    if (scaled.original_max_position_embeddings <= 0) scaled.original_max_position_embeddings = 8192;
    t.inv_freq = llama3_inv_freq(scaled, default_inv_freq(config.rope_theta, dim));
  } else if (s.type == "yarn") {
    t.inv_freq = yarn_inv_freq(s, config.rope_theta, dim, config.max_position_embeddings);
    t.attention_scaling = s.attention_factor ? *s.attention_factor : 0.1 * std::log(s.factor) + 1.0;
  } else {
    TORCH_CHECK(false, "unsupported rope_scaling type ", s.type);
  }
  return t;
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const RopeTables& tables, const torch::Tensor& positions,
                                                     torch::ScalarType dtype) {
  auto inv_freq = tables.inv_freq.to(positions.device());
  // [B, T, 1] * [D/2] -> [B, T, D/2] -> [B, T, D]
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq;
  auto emb = torch::cat({freqs, freqs}, -1);
  auto cos = emb.cos(), sin = emb.sin();
  if (tables.attention_scaling != 1.0) {
    cos = cos * tables.attention_scaling;
    sin = sin * tables.attention_scaling;
  }
  return {cos.to(dtype), sin.to(dtype)};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  // cos/sin [B, T, D] -> [B, 1, T, D] to broadcast over heads
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

}  // namespace lathe
