// Rotary position embeddings in Hugging Face's rotate_half convention (dimension j pairs
// with j + D/2), with the rope_scaling types transformers supports: default, linear,
// dynamic (NTK), llama3 and yarn. Angles are computed in f32 as transformers does.
#pragma once
#include <torch/torch.h>

#include "model/hf_config.h"

namespace lathe {

struct RopeTables {
  torch::Tensor inv_freq;        // [D/2] f32
  double attention_scaling = 1;  // yarn multiplies cos and sin by this
};

// inv_freq for a sequence that reaches `seq_len` positions (only `dynamic` depends on it).
RopeTables rope_tables(const ModelConfig& config, int64_t seq_len);

// positions [B, T] (int64) -> cos, sin [B, T, D] in `dtype`.
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const RopeTables& tables, const torch::Tensor& positions,
                                                     torch::ScalarType dtype);

// x [B, heads, T, D]; cos, sin [B, T, D]. Returns x*cos + rotate_half(x)*sin.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace lathe
