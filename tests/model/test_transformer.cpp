// The decoder against independent formulations: RoPE against its direct formula in double,
// grouped-query attention against multi-head attention with repeated k/v, cached decoding
// against a full forward, and left-padded batches against rows run alone.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model/fast_linear.h"
#include "model/model_init.h"
#include "model/rope.h"
#include "model/transformer.h"
#include "tests/support/test_models.h"

namespace lathe {
namespace {

using testing::random_test_model;
using testing::small_gqa_config;

// Direct inv_freq in double, written from the formulas in ../shared/docs/INTEROP.md.
std::vector<double> direct_inv_freq(const ModelConfig& c, int64_t seq_len) {
  const int64_t d = c.head_dim;
  const auto& s = c.rope_scaling;
  double base = c.rope_theta;
  if (s.type == "dynamic" && seq_len > c.max_position_embeddings)
    base *= std::pow(s.factor * seq_len / c.max_position_embeddings - (s.factor - 1), double(d) / (d - 2));
  std::vector<double> out;
  for (int64_t j = 0; j < d / 2; ++j) {
    double f = std::pow(base, -2.0 * j / d);
    if (s.type == "linear") f /= s.factor;
    if (s.type == "llama3") {
      const double orig = s.original_max_position_embeddings;
      const double wavelen = 2 * M_PI / f;
      if (wavelen > orig / s.low_freq_factor) {
        f /= s.factor;
      } else if (wavelen >= orig / s.high_freq_factor) {
        const double smooth = (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    if (s.type == "yarn") {
      const double orig = s.original_max_position_embeddings;
      auto corr = [&](double rot) { return d * std::log(orig / (rot * 2 * M_PI)) / (2 * std::log(base)); };
      double low = std::max(std::floor(corr(s.beta_fast)), 0.0);
      double high = std::min(std::ceil(corr(s.beta_slow)), double(d - 1));
      if (low == high) high += 0.001;
      const double ramp = std::clamp((j - low) / (high - low), 0.0, 1.0);
      const double extrapolation_weight = 1 - ramp;
      f = (f / s.factor) * (1 - extrapolation_weight) + f * extrapolation_weight;
    }
    out.push_back(f);
  }
  return out;
}

void check_rope(const ModelConfig& c, int64_t seq_len) {
  auto tables = rope_tables(c, seq_len);
  auto direct = direct_inv_freq(c, seq_len);
  ASSERT_EQ(tables.inv_freq.numel(), (int64_t)direct.size());
  for (size_t j = 0; j < direct.size(); ++j)
    EXPECT_NEAR(tables.inv_freq[j].item<double>(), direct[j], 1e-6 * std::max(1.0, direct[j])) << c.rope_scaling.type << " j=" << j;

  // Rotation: q'_j = q_j cos(p f_j) - q_{j+D/2} sin(p f_j); q'_{j+D/2} = q_{j+D/2} cos + q_j sin.
  torch::manual_seed(3);
  const int64_t D = c.head_dim, T = 5;
  auto x = torch::randn({1, 1, T, D}, torch::kFloat64);
  auto positions = torch::tensor({int64_t{0}, int64_t{1}, int64_t{7}, int64_t{30}, seq_len - 1}, torch::kInt64).view({1, T});
  auto [cos, sin] = rope_cos_sin(tables, positions, torch::kFloat64);
  auto y = apply_rope(x, cos, sin);
  const double scale = c.rope_scaling.type == "yarn" ? 0.1 * std::log(c.rope_scaling.factor) + 1 : 1.0;
  for (int64_t t = 0; t < T; ++t) {
    const double p = positions[0][t].item<double>();
    for (int64_t j = 0; j < D / 2; ++j) {
      // transformers computes the angle in f32; compare at f32 precision
      const double angle = double(float(p) * float(direct[j]));
      const double a = x[0][0][t][j].item<double>(), b = x[0][0][t][j + D / 2].item<double>();
      EXPECT_NEAR(y[0][0][t][j].item<double>(), scale * (a * std::cos(angle) - b * std::sin(angle)), 2e-5);
      EXPECT_NEAR(y[0][0][t][j + D / 2].item<double>(), scale * (b * std::cos(angle) + a * std::sin(angle)), 2e-5);
    }
  }
}

TEST(Rope, DefaultMatchesDirectFormula) { check_rope(small_gqa_config(), 40); }

TEST(Rope, ScalingTypesMatchDirectFormula) {
  auto c = small_gqa_config();
  c.head_dim = 64;
  c.rope_theta = 500000;
  c.rope_scaling.type = "linear";
  c.rope_scaling.factor = 4;
  check_rope(c, 40);
  c.rope_scaling.type = "dynamic";
  c.rope_scaling.factor = 2;
  check_rope(c, 40);
  check_rope(c, 200);  // beyond max_position_embeddings: base rescaled
  c.rope_scaling = RopeScaling{};
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8;
  c.rope_scaling.low_freq_factor = 1;
  c.rope_scaling.high_freq_factor = 4;
  c.rope_scaling.original_max_position_embeddings = 8192;
  check_rope(c, 40);
  c.rope_scaling = RopeScaling{};
  c.rope_scaling.type = "yarn";
  c.rope_scaling.factor = 4;
  c.rope_scaling.original_max_position_embeddings = 32;
  check_rope(c, 40);
}

TEST(Attention, GroupedQueryEqualsMultiHeadWithRepeatedKV) {
  torch::NoGradGuard ng;
  auto gqa_config = small_gqa_config("qwen2");  // 4 heads, 2 kv heads, q/k/v bias
  auto gqa = random_test_model(gqa_config);
  auto mha_config = gqa_config;
  mha_config.num_key_value_heads = mha_config.num_attention_heads;
  CausalLM mha(mha_config);
  auto src = gqa->named_parameters(), dst = mha->named_parameters();
  const int64_t G = 2, D = gqa_config.head_dim;
  for (auto& p : dst) {
    auto from = src[p.key()];
    if (p.key().find("k_proj") != std::string::npos || p.key().find("v_proj") != std::string::npos) {
      // kv head j serves query heads j*G .. j*G+G-1: repeat each head's rows G times.
      auto sizes = from.sizes().vec();
      auto heads = from.view({gqa_config.num_key_value_heads, D, -1});
      from = heads.repeat_interleave(G, 0).reshape({-1}).view(p.value().sizes());
    }
    p.value().copy_(from);
  }
  mha->eval();
  auto ids = torch::randint(0, 50, {2, 9}, torch::kInt64);
  auto a = gqa->forward_full(ids), b = mha->forward_full(ids);
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
}

void check_cache_matches_full(const ModelConfig& c) {
  torch::NoGradGuard ng;
  auto m = random_test_model(c, 7);
  const int64_t B = 2, T = 12, prefix = 5;
  auto ids = torch::randint(0, c.vocab_size, {B, T}, torch::kInt64);
  auto full = m->forward_full(ids);  // [B, T, V]
  KVCache cache(c, B, T, torch::kFloat32, torch::kCPU);
  cache.key_valid().fill_(true);
  auto positions = torch::arange(T, torch::kInt64).expand({B, T});
  auto first = m->forward(ids.narrow(1, 0, prefix), positions.narrow(1, 0, prefix),
                          cache.key_valid().narrow(1, 0, prefix), &cache, LogitsFor::All);
  EXPECT_LT((first - full.narrow(1, 0, prefix)).abs().max().item<double>(), 1e-5);
  for (int64_t t = prefix; t < T; ++t) {
    auto step = m->forward(ids.narrow(1, t, 1), positions.narrow(1, t, 1), cache.key_valid().narrow(1, 0, t + 1),
                           &cache, LogitsFor::Last);
    EXPECT_LT((step.squeeze(1) - full.select(1, t)).abs().max().item<double>(), 1e-5) << "position " << t;
  }
  EXPECT_EQ(cache.length(), T);
}

TEST(KVCache, DecodeMatchesFullForwardLlama) { check_cache_matches_full(small_gqa_config()); }
TEST(KVCache, DecodeMatchesFullForwardQwen2) { check_cache_matches_full(small_gqa_config("qwen2")); }

TEST(Batching, LeftPaddedRowsMatchRowsAlone) {
  torch::NoGradGuard ng;
  auto c = small_gqa_config("qwen2");
  auto m = random_test_model(c, 11);
  auto long_ids = torch::randint(0, 50, {1, 10}, torch::kInt64);
  auto short_ids = torch::randint(0, 50, {1, 4}, torch::kInt64);
  auto alone_long = m->forward_full(long_ids);
  auto alone_short = m->forward_full(short_ids);
  auto batch = torch::zeros({2, 10}, torch::kInt64);
  auto mask = torch::zeros({2, 10}, torch::kInt64);
  batch[0].copy_(long_ids[0]);
  mask[0].fill_(1);
  batch[1].narrow(0, 6, 4).copy_(short_ids[0]);
  batch[1].narrow(0, 0, 6).fill_(3);  // arbitrary padding id: must not matter
  mask[1].narrow(0, 6, 4).fill_(1);
  auto logits = m->forward_full(batch, mask);
  EXPECT_LT((logits[0] - alone_long[0]).abs().max().item<double>(), 1e-5);
  EXPECT_LT((logits[1].narrow(0, 6, 4) - alone_short[0]).abs().max().item<double>(), 1e-5);
  EXPECT_FALSE(torch::isnan(logits).any().item<bool>());
}

TEST(Transformer, ParameterNamesAreHuggingFaceKeys) {
  auto llama = CausalLM(small_gqa_config());
  auto names = llama->named_parameters().keys();
  std::set<std::string> set(names.begin(), names.end());
  EXPECT_TRUE(set.count("model.embed_tokens.weight"));
  EXPECT_TRUE(set.count("model.layers.1.self_attn.q_proj.weight"));
  EXPECT_TRUE(set.count("model.layers.0.mlp.down_proj.weight"));
  EXPECT_TRUE(set.count("model.layers.0.post_attention_layernorm.weight"));
  EXPECT_TRUE(set.count("model.norm.weight"));
  EXPECT_TRUE(set.count("lm_head.weight"));
  EXPECT_FALSE(set.count("model.layers.0.self_attn.q_proj.bias"));
  auto qwen = CausalLM(small_gqa_config("qwen2"));
  auto qnames = qwen->named_parameters().keys();
  std::set<std::string> qset(qnames.begin(), qnames.end());
  EXPECT_TRUE(qset.count("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_FALSE(qset.count("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_FALSE(qset.count("lm_head.weight"));  // tied
  EXPECT_EQ(qset.size(), 2u + 2 * (2 + 6 + 1 + 3));  // embed, norm; per layer: 2 norms, q/k/v + biases, o, mlp
}

TEST(Transformer, Bf16ForwardTracksF32) {
  torch::NoGradGuard ng;
  auto c = small_gqa_config();
  auto m = random_test_model(c, 5);
  auto ids = torch::randint(0, 50, {2, 8}, torch::kInt64);
  auto f32 = m->forward_full(ids);
  m->to(torch::kBFloat16);
  auto bf16 = m->forward_full(ids);
  EXPECT_EQ(bf16.scalar_type(), torch::kFloat32);  // logits always f32
  EXPECT_LT((bf16 - f32).abs().max().item<double>(), 0.1);
}

// Fast paths against their references (STYLE rule 10); the speed is in docs/benchmarks.md.
TEST(FastPaths, DecodeMaskEqualsGeneralMask) {
  auto key_valid = torch::rand({3, 9}) > 0.4;
  key_valid.select(1, 8).fill_(false);  // a padding query still sees itself
  auto fast = decode_allowed_mask(key_valid);
  auto general = allowed_mask(key_valid, 8, 1);
  ASSERT_EQ(fast.sizes(), general.sizes());
  EXPECT_TRUE(torch::equal(fast, general));
}

TEST(FastPaths, GemvLinearEqualsReference) {
  torch::manual_seed(3);
  auto w = torch::randn({37, 29}), b = torch::randn({37});
  for (auto x : {torch::randn({29}), torch::randn({1, 29}), torch::randn({1, 1, 29})}) {
    ASSERT_TRUE(linear_uses_gemv(x, w));
    for (const auto& bias : {b, torch::Tensor()}) {
      auto fast = linear_base(x, w, bias), ref = linear_reference(x, w, bias);
      ASSERT_EQ(fast.sizes(), ref.sizes());
      EXPECT_LT((fast - ref).abs().max().item<double>(), 1e-5);
    }
  }
  // A weight large enough for the row-split gemv, under inference mode as in decode.
  {
    c10::InferenceMode inference;
    auto big_w = torch::randn({3000, 400}), big_b = torch::randn({3000}), x = torch::randn({1, 1, 400});
    for (const auto& bias : {big_b, torch::Tensor()}) {
      auto fast = linear_base(x, big_w, bias), ref = linear_reference(x, big_w, bias);
      EXPECT_LT((fast - ref).abs().max().item<double>(), 1e-4);
    }
  }
  // More than one row, another dtype: the reference itself.
  EXPECT_FALSE(linear_uses_gemv(torch::randn({2, 29}), w));
  EXPECT_FALSE(linear_uses_gemv(torch::randn({1, 29}).to(torch::kBFloat16), w.to(torch::kBFloat16)));
}

}  // namespace
}  // namespace lathe
