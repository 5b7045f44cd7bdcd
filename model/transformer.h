// The Llama-family decoder (llama, qwen2, mistral) as LibTorch modules whose parameter
// names equal Hugging Face keys ("model.layers.0.self_attn.q_proj.weight", "lm_head.weight"),
// so checkpoints and PEFT adapters map 1:1.
//
// Legend: B batch, T new positions in this call, S key positions (cached + new),
// H query heads, K kv heads, G = H / K, D head_dim, C hidden, F intermediate, V vocab.
#pragma once
#include <torch/torch.h>

#include <utility>
#include <vector>

#include "model/hf_config.h"
#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/rope.h"

namespace lathe {

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  // Normalises in f32 (as transformers does), then scales in the input dtype.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  // [C]
  double eps;
};
TORCH_MODULE(RMSNorm);

// The keys and values of a token prefix that every row of a batch shares (an SFT batch's
// system prompt), computed once for the batch instead of once per row: the prefix pass
// records each layer's k/v [1, K, P, D], then the rows' pass attends to them, broadcast to
// its B rows, before its own keys. They stay in the autograd graph, so gradients flow back
// through the prefix once, summed over the rows, as the per-row computation's would.
struct SharedPrefixKV {
  std::vector<torch::Tensor> keys, values;  // per layer, [1, K, P, D] after RoPE
  bool recording = true;                    // prefix pass: record; rows' pass: prepend
};

// Shorter shared prefixes do not repay the second pass (SFT's loss and GRPO's log-probs).
constexpr int64_t kMinSharedPrefix = 16;

// Per-call inputs shared by every layer.
struct AttentionContext {
  torch::Tensor cos, sin;      // [B, T, D]
  torch::Tensor allowed;       // [B, 1, 1, T, S] bool: query t may attend to key s
  torch::Tensor blocked_bias;  // [B, 1, 1, T, S] f32: 0 where allowed, -inf where not; undefined
                               // when nothing is blocked (added to the scores: an add and its
                               // pass-through backward cost a fraction of masked_fill's)
  KVCache* cache = nullptr;    // null: keys are just this call's positions
  SharedPrefixKV* prefix = nullptr;  // null: no shared prefix (never together with cache)
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& config, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx);  // [B, T, C]
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t layer_, heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(Attention);

class MLPImpl : public torch::nn::Module {
 public:
  explicit MLPImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // SwiGLU: down(silu(gate x) * up x)
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(MLP);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& config, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx);
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// "model." in Hugging Face keys.
class DecoderStackImpl : public torch::nn::Module {
 public:
  explicit DecoderStackImpl(const ModelConfig& config);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  std::vector<DecoderLayer> layer_list;  // the same layers, typed (no per-call downcast)
};
TORCH_MODULE(DecoderStack);

enum class LogitsFor { All, Last, None };

class CausalLMImpl : public torch::nn::Module {
 public:
  explicit CausalLMImpl(const ModelConfig& config);

  // input_ids [B, T] int64; positions [B, T] int64 (RoPE positions);
  // key_valid [B, S] bool, S = cache->length() (its longest row) + T, or T without a cache:
  // real tokens. Rows of different lengths (continuous batching) take T = 1.
  // With a cache, k/v of these T positions are appended and the cache advances.
  // Returns logits [B, T, V] (All), [B, 1, V] (Last) in f32, or the final hidden states
  // [B, T, C] (None).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& positions,
                        const torch::Tensor& key_valid, KVCache* cache = nullptr,
                        LogitsFor which = LogitsFor::All);

  // Training-style full forward: attention_mask [B, T] (1 = token, 0 = left padding), or
  // undefined for no padding. Logits [B, T, V] f32.
  torch::Tensor forward_full(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});

  // Final hidden states [.., C] of B rows that all begin with the same P tokens, with that
  // prefix computed once: prefix_ids [1, P]; suffix_ids, suffix_mask [B, T] (the rest of each
  // row, padded on either side, 1 = token; RoPE positions count real tokens from P). Returns {[1, P, C], [B, T, C]}: equal, up to rounding, to
  // forward() on the whole rows split at P, at about (P + B T) / (B (P + T)) of the linear
  // layers' work. Gradients flow as in the whole-row forward. No KV cache; activation
  // checkpointing does not apply to it.
  std::pair<torch::Tensor, torch::Tensor> forward_shared_prefix(const torch::Tensor& prefix_ids,
                                                                const torch::Tensor& suffix_ids,
                                                                const torch::Tensor& suffix_mask);

  // lm_head applied to hidden states [.., C] -> [.., V] in f32 (tied or not).
  torch::Tensor project_logits(const torch::Tensor& hidden);

  // Training: recompute each decoder layer's activations in backward instead of keeping
  // them (model/activation_checkpoint.h). Applies only with grad mode on and no KV cache.
  void set_activation_checkpointing(bool enabled) { activation_checkpointing_ = enabled; }
  bool activation_checkpointing() const { return activation_checkpointing_; }

  const ModelConfig& config() const { return config_; }
  torch::ScalarType dtype() const;
  torch::Device device() const;

  DecoderStack model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  // Builds the RoPE tables once, or again when dynamic scaling meets a new longest position.
  void prepare_rope(const torch::Tensor& positions);

  ModelConfig config_;
  RopeTables rope_;
  int64_t rope_seq_len_ = -1;  // sequence length rope_ was built for (dynamic scaling)
  bool activation_checkpointing_ = false;
};
TORCH_MODULE(CausalLM);

// Which keys each query may attend to: key_valid [B, S] (S = past + T) -> [B, 1, 1, T, S]
// bool, causal and padding combined; a query always sees itself.
torch::Tensor allowed_mask(const torch::Tensor& key_valid, int64_t past, int64_t T);
// The same for one new query (T = 1), without the causal construction; equals
// allowed_mask(key_valid, S - 1, 1) (tests/model/test_transformer.cpp).
torch::Tensor decode_allowed_mask(const torch::Tensor& key_valid);
// Rows whose single query sits at their own position query_positions [B] (rows of a
// continuous batch have different lengths): key_valid plus each query itself. Equals
// allowed_mask(key_valid, S - 1, 1) where every query is at S - 1.
torch::Tensor decode_allowed_mask(const torch::Tensor& key_valid, const torch::Tensor& query_positions);
// The additive form of an allowed mask: 0 where allowed, -inf where not, f32, same shape.
torch::Tensor blocked_bias_from(const torch::Tensor& allowed);

// positions of a left-padded batch: attention_mask [B, S] -> cumulative count - 1, >= 0.
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask);

}  // namespace lathe
