// Causal-LM loss: see lm_loss.h.
#include "train/lm_loss.h"

namespace lathe {

LmLoss causal_lm_loss(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const torch::Tensor& labels) {
  const auto device = model->device();
  auto ids = input_ids.to(device);
  auto mask = attention_mask.to(device).to(torch::kBool);
  auto hidden = model->forward(ids, positions_from_mask(mask), mask, nullptr, LogitsFor::None);  // [B, T, C]
  auto flat_labels = labels.to(device).reshape({-1});                                         // [B*T]
  auto scored = flat_labels.ne(-100).nonzero().squeeze(1);                                    // [N]
  auto h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, scored);                     // [N, C]
  auto targets = flat_labels.index_select(0, scored);                                         // [N]
  auto logits = model->project_logits(h);                                                     // [N, V] f32
  LmLoss out;
  out.loss_sum = torch::nn::functional::cross_entropy(
      logits, targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  out.tokens = targets.size(0);
  out.correct = logits.detach().argmax(-1).eq(targets).sum().item<int64_t>();
  return out;
}

}  // namespace lathe
