// Activation checkpointing of one decoder layer (torch.utils.checkpoint's reentrant variant,
// which LibTorch C++ lacks): the forward keeps only the layer's input; backward runs the
// layer again with gradients on and differentiates that. Memory for activations drops from
// every intermediate of every layer to one [B, T, C] input per layer plus one layer's
// intermediates at a time, for about one extra forward of compute.
//
// Same results as the plain layer: the recompute replays the random-number generator state
// the forward started from (LoRA dropout draws the same masks) and the autocast settings it
// ran under. The layer's trainable parameters are inputs of the checkpoint node, so their
// gradients flow even when the layer input does not require grad (LoRA's frozen embedding;
// Python's reentrant checkpoint needs enable_input_require_grads for that).
#pragma once
#include <torch/torch.h>

#include "model/transformer.h"

namespace lathe {

// layer(x, ctx) [B, T, C] with only x kept for backward. Needs grad mode on; ctx.cache null.
torch::Tensor checkpointed_layer_forward(DecoderLayer& layer, const torch::Tensor& x, const AttentionContext& ctx);

}  // namespace lathe
