#include "model/transformer.h"

#include <torch/version.h>

#include <cmath>

#include "core/error.h"
#include "model/activation_checkpoint.h"
#include "model/bf16_decode_linear.h"
#include "model/fast_linear.h"

namespace lathe {
namespace F = torch::nn::functional;

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto x32 = x.to(torch::kFloat32);
  auto variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  x32 = x32 * torch::rsqrt(variance + eps);
  return weight * x32.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const ModelConfig& c, int64_t layer_index)
    : layer_(layer_index), heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  q_proj = register_module("q_proj", Linear(c.hidden_size, heads_ * head_dim_, c.qkv_bias));
  k_proj = register_module("k_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  v_proj = register_module("v_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  o_proj = register_module("o_proj", Linear(heads_ * head_dim_, c.hidden_size, c.o_bias));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const AttentionContext& ctx) {
  const int64_t B = x.size(0), T = x.size(1), G = heads_ / kv_heads_;
  auto q = q_proj(x).view({B, T, heads_, head_dim_}).transpose(1, 2);     // [B, H, T, D]
  auto k = k_proj(x).view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // [B, K, T, D]
  auto v = v_proj(x).view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // [B, K, T, D]
  q = apply_rope(q, ctx.cos, ctx.sin);
  k = apply_rope(k, ctx.cos, ctx.sin);
  if (ctx.cache) std::tie(k, v) = ctx.cache->append(layer_, k, v);      // [B, K, S, D]
  if (ctx.prefix) {
    auto& prefix = *ctx.prefix;
    if (prefix.recording) {
      if (static_cast<int64_t>(prefix.keys.size()) <= layer_) prefix.keys.resize(layer_ + 1), prefix.values.resize(layer_ + 1);
      prefix.keys[layer_] = k, prefix.values[layer_] = v;
    } else {
      k = torch::cat({prefix.keys.at(layer_).expand({B, -1, -1, -1}), k}, 2);  // [B, K, P + T, D]
      v = torch::cat({prefix.values.at(layer_).expand({B, -1, -1, -1}), v}, 2);
    }
  }
  const int64_t S = k.size(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));

  torch::Tensor out;  // [B, H, T, D]
#if TORCH_VERSION_MAJOR >= 2
  if (x.is_cuda()) {
    // Fused attention kernels; k/v repeated to H heads (enable_gqa is not in every 2.x).
    auto k_rep = k.repeat_interleave(G, 1), v_rep = v.repeat_interleave(G, 1);
    auto mask = ctx.allowed.squeeze(2);  // [B, 1, T, S]
    out = at::scaled_dot_product_attention(q, k_rep, v_rep, mask);
  } else
#endif
  {
    // Grouped path: the G query heads that share a kv head are batched against it, so k/v
    // are never copied G times.  q [B, K, G*T, D] @ k^T [B, K, D, S] -> [B, K, G, T, S].
    // bf16 on a CPU without bf16 instructions multiplies in f32 (model/fast_linear.h), and so
    // does decode's few query rows on any CPU: there each bf16 bmm pays oneDNN's per-call set-up
    // (43-55 us against 17-27 us for the cast and f32 bmm, 7 rows x 140 keys, AMX Xeon).
    auto qg = q.reshape({B, kv_heads_, G * T, head_dim_});
    const bool in_f32 = bf16_matmul_in_f32(qg) || (qg.device().is_cpu() && qg.scalar_type() == torch::kBFloat16 &&
                                                   qg.size(2) <= kBf16DecodeMaxRows * 2);
    const auto math = in_f32 ? torch::kFloat32 : q.scalar_type();
    auto scores = torch::matmul(qg.to(math), k.to(math).transpose(2, 3)).view({B, kv_heads_, G, T, S});
    scores = scores.to(torch::kFloat32) * scale;
    if (ctx.blocked_bias.defined()) scores = scores + ctx.blocked_bias;
    auto probs = torch::softmax(scores, -1).to(math).view({B, kv_heads_, G * T, S});
    out = torch::matmul(probs, v.to(math)).to(q.scalar_type()).view({B, heads_, T, head_dim_});
  }
  out = out.transpose(1, 2).reshape({B, T, heads_ * head_dim_});
  return o_proj(out);
}

MLPImpl::MLPImpl(const ModelConfig& c) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  return down_proj(F::silu(gate_proj(x)) * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c, int64_t layer_index) {
  self_attn = register_module("self_attn", Attention(c, layer_index));
  mlp = register_module("mlp", MLP(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const AttentionContext& ctx) {
  auto h = x + self_attn(input_layernorm(x), ctx);
  return h + mlp(post_attention_layernorm(h));
}

DecoderStackImpl::DecoderStackImpl(const ModelConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layer_list.emplace_back(c, i);
    layers->push_back(layer_list.back());
  }
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

CausalLMImpl::CausalLMImpl(const ModelConfig& c) : config_(c) {
  model = register_module("model", DecoderStack(c));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", Linear(c.hidden_size, c.vocab_size, false));
}

torch::ScalarType CausalLMImpl::dtype() const { return model->embed_tokens->weight.scalar_type(); }
torch::Device CausalLMImpl::device() const { return model->embed_tokens->weight.device(); }

torch::Tensor CausalLMImpl::project_logits(const torch::Tensor& hidden) {
  auto logits = lm_head ? lm_head(hidden) : linear_base(hidden, model->embed_tokens->weight, {});
  return logits.to(torch::kFloat32);
}

torch::Tensor CausalLMImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& positions,
                                    const torch::Tensor& key_valid, KVCache* cache, LogitsFor which) {
  const int64_t T = input_ids.size(1);
  const int64_t past = cache ? cache->length() : 0;
  const int64_t S = past + T;
  TORCH_CHECK(key_valid.size(1) == S, "key_valid covers ", key_valid.size(1), " positions, expected ", S);

  prepare_rope(positions);
  auto h = model->embed_tokens(input_ids);  // [B, T, C]
  AttentionContext ctx;
  std::tie(ctx.cos, ctx.sin) = rope_cos_sin(rope_, positions, h.scalar_type());
  ctx.cache = cache;
  if (cache && T == 1) {
    // Rows of different lengths each see themselves at their own write position.
    ctx.allowed = cache->aligned() ? decode_allowed_mask(key_valid) : decode_allowed_mask(key_valid, cache->positions());
  } else {
    if (cache && !cache->aligned()) fail("forward: several new positions need a cache whose rows share one length");
    ctx.allowed = allowed_mask(key_valid, past, T);
  }
  // Built once for all layers. On CPU a batch without padding skips masking altogether in
  // decode (every key is allowed); the check is a host read, which on CUDA would be a sync.
  const bool nothing_blocked = T == 1 && !input_ids.is_cuda() && ctx.allowed.all().item<bool>();
  if (!nothing_blocked) ctx.blocked_bias = blocked_bias_from(ctx.allowed);
  const bool checkpoint = activation_checkpointing_ && !cache && at::GradMode::is_enabled();
  for (auto& layer : model->layer_list)
    h = checkpoint ? checkpointed_layer_forward(layer, h, ctx) : layer->forward(h, ctx);
  if (cache) cache->advance(T);
  if (which == LogitsFor::Last) h = h.narrow(1, T - 1, 1);
  h = model->norm(h);
  if (which == LogitsFor::None) return h;
  return project_logits(h);
}

void CausalLMImpl::prepare_rope(const torch::Tensor& positions) {
  // Dynamic NTK rescales with the longest position seen; other types build the tables once
  // (so decode steps skip the max and its host sync).
  const bool dynamic = config_.rope_scaling.type == "dynamic";
  if (rope_seq_len_ < 0 || dynamic) {
    const int64_t needed = positions.numel() ? positions.max().item<int64_t>() + 1 : 1;
    if (rope_seq_len_ < 0 || needed != rope_seq_len_) {
      rope_ = rope_tables(config_, needed);
      rope_seq_len_ = needed;
    }
  }
}

std::pair<torch::Tensor, torch::Tensor> CausalLMImpl::forward_shared_prefix(const torch::Tensor& prefix_ids,
                                                                            const torch::Tensor& suffix_ids,
                                                                            const torch::Tensor& suffix_mask) {
  TORCH_CHECK(prefix_ids.size(0) == 1, "forward_shared_prefix: the prefix is one row");
  const int64_t P = prefix_ids.size(1), B = suffix_ids.size(0), T = suffix_ids.size(1);
  const auto long_options = torch::TensorOptions().dtype(torch::kInt64).device(suffix_ids.device());
  const auto key_valid = suffix_mask.to(torch::kBool);
  auto prefix_positions = torch::arange(P, long_options).unsqueeze(0);  // [1, P]
  auto suffix_positions = positions_from_mask(key_valid) + P;           // [B, T]: P + t on real tokens
  // One table for both passes, sized by the whole rows (as forward() on them would build).
  prepare_rope(suffix_positions);

  SharedPrefixKV shared;
  AttentionContext ctx;
  ctx.prefix = &shared;
  auto prefix_hidden = model->embed_tokens(prefix_ids);  // [1, P, C]
  std::tie(ctx.cos, ctx.sin) = rope_cos_sin(rope_, prefix_positions, prefix_hidden.scalar_type());
  ctx.allowed = allowed_mask(torch::ones({1, P}, long_options.dtype(torch::kBool)), 0, P);
  ctx.blocked_bias = blocked_bias_from(ctx.allowed);
  for (auto& layer : model->layer_list) prefix_hidden = layer->forward(prefix_hidden, ctx);

  shared.recording = false;
  auto hidden = model->embed_tokens(suffix_ids);  // [B, T, C]
  std::tie(ctx.cos, ctx.sin) = rope_cos_sin(rope_, suffix_positions, hidden.scalar_type());
  // Every row sees the whole prefix, then its own tokens causally.
  ctx.allowed = allowed_mask(torch::cat({torch::ones({B, P}, key_valid.options()), key_valid}, 1), P, T);
  ctx.blocked_bias = blocked_bias_from(ctx.allowed);
  for (auto& layer : model->layer_list) hidden = layer->forward(hidden, ctx);
  return {model->norm(prefix_hidden), model->norm(hidden)};
}

torch::Tensor CausalLMImpl::forward_full(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  torch::Tensor mask = attention_mask.defined()
                           ? attention_mask.to(torch::kBool)
                           : torch::ones_like(input_ids, torch::TensorOptions().dtype(torch::kBool));
  return forward(input_ids, positions_from_mask(mask), mask, nullptr, LogitsFor::All);
}

torch::Tensor allowed_mask(const torch::Tensor& key_valid, int64_t past, int64_t T) {
  const int64_t S = past + T;
  auto dev = key_valid.device();
  auto key_index = torch::arange(S, torch::TensorOptions().dtype(torch::kInt64).device(dev));        // [S]
  auto query_index = torch::arange(past, S, torch::TensorOptions().dtype(torch::kInt64).device(dev));  // [T]
  auto causal = key_index.unsqueeze(0) <= query_index.unsqueeze(1);                                   // [T, S]
  auto self = key_index.unsqueeze(0) == query_index.unsqueeze(1);
  // A padding query sees at least itself, so its (ignored) row never becomes all -inf.
  auto allowed = (causal.unsqueeze(0) & key_valid.unsqueeze(1)) | self.unsqueeze(0);  // [B, T, S]
  return allowed.view({allowed.size(0), 1, 1, T, S});
}

torch::Tensor decode_allowed_mask(const torch::Tensor& key_valid) {
  // One query at the last position: every earlier key is causal-visible, so only padding
  // blocks, and the query always sees itself.
  const int64_t B = key_valid.size(0), S = key_valid.size(1);
  auto allowed = key_valid.clone();
  allowed.select(1, S - 1).fill_(true);
  return allowed.view({B, 1, 1, 1, S});
}

torch::Tensor decode_allowed_mask(const torch::Tensor& key_valid, const torch::Tensor& query_positions) {
  // Row b's query sits at query_positions[b] <= S - 1; keys after it were never written for
  // this row (key_valid is false there), so key_valid plus the query itself is the mask.
  const int64_t B = key_valid.size(0), S = key_valid.size(1);
  auto allowed = key_valid.clone();
  allowed.scatter_(1, query_positions.view({B, 1}), true);
  return allowed.view({B, 1, 1, 1, S});
}

torch::Tensor blocked_bias_from(const torch::Tensor& allowed) {
  return torch::zeros(allowed.sizes(), allowed.options().dtype(torch::kFloat32))
      .masked_fill_(allowed.logical_not(), -std::numeric_limits<float>::infinity());
}

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask) {
  return (attention_mask.to(torch::kInt64).cumsum(-1) - 1).clamp_min(0);
}

}  // namespace lathe
