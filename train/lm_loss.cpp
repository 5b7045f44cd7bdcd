// Causal-LM loss: see lm_loss.h.
#include "train/lm_loss.h"

#include <algorithm>

#include "model/autocast.h"
#include "model/fast_linear.h"

namespace lathe {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Hidden states at the scored positions and their targets. With a shared prefix, the
// prefix's scored positions come once (prefix_*), standing for all `rows` rows.
struct Scored {
  torch::Tensor hidden;   // [N, C]
  torch::Tensor targets;  // [N]
  torch::Tensor prefix_hidden, prefix_targets;  // [M, C], [M], or undefined
  int64_t rows = 0;
};

Scored scored_hidden(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                     const torch::Tensor& labels, bool share_prefix) {
  const auto device = model->device();
  auto ids = input_ids.to(device);
  auto mask = attention_mask.to(device).to(torch::kBool);
  auto all_labels = labels.to(device);
  const int64_t Q = share_prefix && !(model->activation_checkpointing() && at::GradMode::is_enabled())
                        ? shared_prefix_length(input_ids, attention_mask, labels)
                        : 0;
  if (Q >= kMinSharedPrefix) {
    const int64_t T = ids.size(1);
    auto [prefix, rest] = model->forward_shared_prefix(ids.narrow(0, 0, 1).narrow(1, 0, Q), ids.narrow(1, Q, T - Q),
                                                       mask.narrow(1, Q, T - Q));
    auto prefix_labels = all_labels.narrow(0, 0, 1).narrow(1, 0, Q).reshape({-1});  // [Q], the same in every row
    auto prefix_scored = prefix_labels.ne(-100).nonzero().squeeze(1);
    auto rest_labels = all_labels.narrow(1, Q, T - Q).reshape({-1});
    auto rest_scored = rest_labels.ne(-100).nonzero().squeeze(1);
    Scored s;
    s.hidden = rest.reshape({-1, rest.size(-1)}).index_select(0, rest_scored);
    s.targets = rest_labels.index_select(0, rest_scored);
    if (prefix_scored.numel() > 0) {
      s.prefix_hidden = prefix.reshape({-1, prefix.size(-1)}).index_select(0, prefix_scored);
      s.prefix_targets = prefix_labels.index_select(0, prefix_scored);
      s.rows = ids.size(0);
    }
    return s;
  }
  auto hidden = model->forward(ids, positions_from_mask(mask), mask, nullptr, LogitsFor::None);  // [B, T, C]
  auto flat_labels = all_labels.reshape({-1});                                                // [B*T]
  auto scored = flat_labels.ne(-100).nonzero().squeeze(1);                                    // [N]
  Scored s;
  s.hidden = hidden.reshape({-1, hidden.size(-1)}).index_select(0, scored);
  s.targets = flat_labels.index_select(0, scored);
  return s;
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
    // bf16 on a CPU without bf16 instructions: one f32 copy of the head for all chunks. Under
    // autocast, one low-precision copy: autocast would otherwise cast the whole f32 head again
    // for every chunk's two matmuls (0.5B shape: ten 136M-element casts per step).
    const bool in_f32 = weight.scalar_type() == torch::kBFloat16 && bf16_matmul_in_f32(hidden);
    const auto autocast = AutocastState::current();
    const bool autocast_on = weight.is_cuda() ? autocast.cuda : (weight.is_cpu() && autocast.cpu);
    const auto autocast_dtype = weight.is_cuda() ? autocast.cuda_dtype : autocast.cpu_dtype;
    const torch::Tensor w = in_f32 ? weight.to(torch::kFloat32)
                            : autocast_on && weight.scalar_type() == torch::kFloat32 ? weight.to(autocast_dtype)
                                                                                     : weight;
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
  if (chunk_rows <= 0) chunk_rows = std::max<int64_t>(1, (int64_t(128) << 20) / weight.size(0));  // 512 MB of f32 logits
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

int64_t shared_prefix_length(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& labels) {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  if (B < 2 || T < 2) return 0;
  const auto ids = input_ids.to(torch::kCPU).to(torch::kInt64).contiguous();
  const auto lab = labels.to(torch::kCPU).to(torch::kInt64).contiguous();
  const auto lengths = attention_mask.to(torch::kCPU).to(torch::kInt64).sum(1);
  // Each row keeps at least one token of its own.
  int64_t q = lengths.min().item<int64_t>() - 1;
  const int64_t* id = ids.data_ptr<int64_t>();
  const int64_t* lb = lab.data_ptr<int64_t>();
  for (int64_t b = 1; b < B && q > 0; ++b) {
    int64_t t = 0;
    while (t < q && id[b * T + t] == id[t] && lb[b * T + t] == lb[t]) ++t;
    q = t;
  }
  return std::max<int64_t>(q, 0);
}

LmLoss causal_lm_loss(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const torch::Tensor& labels, bool count_correct, bool share_prefix) {
  const Scored s = scored_hidden(model, input_ids, attention_mask, labels, share_prefix);
  const torch::Tensor weight = head_weight(model);
  LmLoss out = linear_cross_entropy(s.hidden, weight, s.targets, 0, count_correct);
  if (s.prefix_targets.defined()) {
    // The prefix's targets, scored once, count once per row.
    const LmLoss p = linear_cross_entropy(s.prefix_hidden, weight, s.prefix_targets, 0, count_correct);
    out.loss_sum = out.loss_sum + p.loss_sum * static_cast<double>(s.rows);
    out.tokens += p.tokens * s.rows;
    if (count_correct) out.correct += p.correct * s.rows;
  }
  return out;
}

LmLoss causal_lm_loss_reference(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const torch::Tensor& labels) {
  const Scored s = scored_hidden(model, input_ids, attention_mask, labels, /*share_prefix=*/false);
  auto logits = model->project_logits(s.hidden);  // [N, V] f32
  LmLoss out;
  out.loss_sum = torch::nn::functional::cross_entropy(
      logits, s.targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  out.tokens = s.targets.size(0);
  out.correct = logits.detach().argmax(-1).eq(s.targets).sum().item<int64_t>();
  return out;
}

}  // namespace lathe
