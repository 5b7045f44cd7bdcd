// Causal-LM loss: see lm_loss.h.
#include "train/lm_loss.h"

#include <algorithm>

#include "model/fast_linear.h"

namespace lathe {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Hidden states at the scored positions and their targets.
struct Scored {
  torch::Tensor hidden;   // [N, C]
  torch::Tensor targets;  // [N]
};

Scored scored_hidden(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                     const torch::Tensor& labels) {
  const auto device = model->device();
  auto ids = input_ids.to(device);
  auto mask = attention_mask.to(device).to(torch::kBool);
  auto hidden = model->forward(ids, positions_from_mask(mask), mask, nullptr, LogitsFor::None);  // [B, T, C]
  auto flat_labels = labels.to(device).reshape({-1});                                         // [B*T]
  auto scored = flat_labels.ne(-100).nonzero().squeeze(1);                                    // [N]
  return {hidden.reshape({-1, hidden.size(-1)}).index_select(0, scored), flat_labels.index_select(0, scored)};
}

torch::Tensor head_weight(CausalLM& model) {
  if (!model->lm_head) return model->model->embed_tokens->weight;
  TORCH_CHECK(model->lm_head->adapters.empty(), "linear_cross_entropy: the lm_head carries LoRA adapters");
  return model->lm_head->weight;
}

class LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
 public:
  // Runs with grad mode off (Function::apply); autocast, if on, still picks the matmul dtype.
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, int64_t chunk_rows, bool count_correct) {
    const int64_t N = hidden.size(0);
    const bool grad_hidden = hidden.requires_grad(), grad_weight = weight.requires_grad();
    auto loss = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
    auto correct = torch::zeros({}, targets.options());
    torch::Tensor d_hidden = grad_hidden ? torch::empty_like(hidden) : torch::Tensor();          // [N, C]
    torch::Tensor d_weight = grad_weight ? torch::zeros_like(weight) : torch::Tensor();          // [V, C]
    // bf16 on a CPU without bf16 instructions: one f32 copy of the head for all chunks.
    const bool in_f32 = weight.scalar_type() == torch::kBFloat16 && bf16_matmul_in_f32(hidden);
    const torch::Tensor w = in_f32 ? weight.to(torch::kFloat32) : weight;
    for (int64_t start = 0; start < N; start += chunk_rows) {
      const int64_t rows = std::min(chunk_rows, N - start);
      const auto h = hidden.narrow(0, start, rows).to(w.scalar_type());               // [n, C]
      const auto t = targets.narrow(0, start, rows).unsqueeze(1);                      // [n, 1]
      auto logp = torch::log_softmax(torch::nn::functional::linear(h, w).to(torch::kFloat32), -1);  // [n, V]
      loss -= logp.gather(1, t).sum();
      if (count_correct) correct += logp.argmax(-1).eq(t.squeeze(1)).sum();
      if (!grad_hidden && !grad_weight) continue;
      // d(sum of -log p)/d logits = softmax - one_hot, built in log p's own storage.
      auto d_logits = logp.exp_();
      d_logits.scatter_add_(1, t, torch::full({rows, 1}, -1.0f, d_logits.options()));
      const auto g = d_logits.to(w.scalar_type());
      if (grad_hidden) d_hidden.narrow(0, start, rows).copy_(torch::matmul(g, w));           // [n, C]
      if (grad_weight) d_weight.add_(torch::matmul(g.t(), h));                               // [V, C]
    }
    ctx->save_for_backward({d_hidden, d_weight});
    ctx->mark_non_differentiable({correct});
    return {loss, correct};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& g = grad_outputs[0];  // scalar
    torch::Tensor d_hidden = saved[0].defined() ? saved[0] * g.to(saved[0].scalar_type()) : torch::Tensor();
    torch::Tensor d_weight = saved[1].defined() ? saved[1] * g.to(saved[1].scalar_type()) : torch::Tensor();
    return {d_hidden, d_weight, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

LmLoss linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                            int64_t chunk_rows, bool count_correct) {
  if (chunk_rows <= 0) chunk_rows = std::max<int64_t>(1, (int64_t(8) << 20) / weight.size(0));  // 32 MB of f32
  // Without grad mode nothing may be differentiated (a trainable head in evaluation, say).
  const bool grad = at::GradMode::is_enabled();
  auto outputs = grad ? LinearCrossEntropy::apply(hidden, weight, targets, chunk_rows, count_correct)
                      : LinearCrossEntropy::apply(hidden.detach(), weight.detach(), targets, chunk_rows, count_correct);
  LmLoss out;
  out.loss_sum = outputs[0];
  out.tokens = targets.size(0);
  out.correct = count_correct ? outputs[1].item<int64_t>() : -1;
  return out;
}

LmLoss causal_lm_loss(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const torch::Tensor& labels, bool count_correct) {
  const Scored s = scored_hidden(model, input_ids, attention_mask, labels);
  return linear_cross_entropy(s.hidden, head_weight(model), s.targets, 0, count_correct);
}

LmLoss causal_lm_loss_reference(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const torch::Tensor& labels) {
  const Scored s = scored_hidden(model, input_ids, attention_mask, labels);
  auto logits = model->project_logits(s.hidden);  // [N, V] f32
  LmLoss out;
  out.loss_sum = torch::nn::functional::cross_entropy(
      logits, s.targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  out.tokens = s.targets.size(0);
  out.correct = logits.detach().argmax(-1).eq(s.targets).sum().item<int64_t>();
  return out;
}

}  // namespace lathe
