#include "rl/token_logprobs.h"

#include <algorithm>

#include "core/error.h"

namespace lathe::rl {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The projection project_logits applies: lm_head's weight, or the tied embedding.
torch::Tensor output_weight(CausalLM& model) {
  if (model->lm_head) {
    if (model->lm_head->bias.defined() || !model->lm_head->adapters.empty())
      fail("chunked log-probs: lm_head with a bias or an adapter is not supported");
    return model->lm_head->weight;
  }
  return model->model->embed_tokens->weight;
}

// logits of rows [M, C] in f32, as project_logits computes them (matmul in the model dtype).
torch::Tensor chunk_logits(const torch::Tensor& h, const torch::Tensor& weight) {
  return torch::nn::functional::linear(h, weight).to(torch::kFloat32);
}

// log p(target) and entropy per row, from hidden rows [M, C]; the backward pass recomputes
// each chunk's logits instead of keeping them.
class ChunkedLogProbFunction : public torch::autograd::Function<ChunkedLogProbFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                               torch::Tensor targets, int64_t chunk) {
    const int64_t M = hidden.size(0);
    auto logp = torch::empty({M}, hidden.options().dtype(torch::kFloat32));
    auto entropy = torch::empty({M}, hidden.options().dtype(torch::kFloat32));
    for (int64_t a = 0; a < M; a += chunk) {
      const int64_t m = std::min(chunk, M - a);
      auto z = chunk_logits(hidden.narrow(0, a, m), weight);        // [m, V]
      auto lse = z.logsumexp(-1);                                    // [m]
      auto y = targets.narrow(0, a, m).unsqueeze(1);                 // [m, 1]
      logp.narrow(0, a, m).copy_(z.gather(1, y).squeeze(1) - lse);
      auto p = torch::softmax(z, -1);
      entropy.narrow(0, a, m).copy_(lse - (p * z).sum(-1));
    }
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["chunk"] = chunk;
    ctx->mark_non_differentiable({entropy});
    return {logp, entropy};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& hidden = saved[0];
    const auto& weight = saved[1];
    const auto& targets = saved[2];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const int64_t M = hidden.size(0);
    auto g = grads[0];  // [M] f32
    const bool need_hidden = ctx->needs_input_grad(0), need_weight = ctx->needs_input_grad(1);
    torch::Tensor grad_hidden = need_hidden ? torch::zeros_like(hidden) : torch::Tensor();
    torch::Tensor grad_weight = need_weight ? torch::zeros_like(weight) : torch::Tensor();
    if (g.defined()) {
      for (int64_t a = 0; a < M; a += chunk) {
        const int64_t m = std::min(chunk, M - a);
        auto h = hidden.narrow(0, a, m);
        auto gc = g.narrow(0, a, m).unsqueeze(1);                        // [m, 1]
        // d logp / d z = onehot(y) − softmax(z)
        auto dz = -torch::softmax(chunk_logits(h, weight), -1) * gc;     // [m, V]
        dz.scatter_add_(1, targets.narrow(0, a, m).unsqueeze(1), gc);
        dz = dz.to(hidden.scalar_type());
        if (need_hidden) grad_hidden.narrow(0, a, m).copy_(dz.matmul(weight));
        if (need_weight) grad_weight.add_(dz.t().matmul(h));
      }
    }
    return {grad_hidden, grad_weight, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

TokenLogProbs chunked_token_logprobs(CausalLM& model, const torch::Tensor& hidden, const torch::Tensor& targets,
                                     int64_t chunk_tokens) {
  if (chunk_tokens < 1) fail("chunked log-probs: chunk_tokens must be >= 1");
  const int64_t N = hidden.size(0), T = hidden.size(1), C = hidden.size(2);
  auto out = ChunkedLogProbFunction::apply(hidden.reshape({N * T, C}), output_weight(model),
                                           targets.reshape({N * T}).to(torch::kInt64), chunk_tokens);
  return {out[0].view({N, T}), out[1].view({N, T})};
}

TokenLogProbs reference_token_logprobs(CausalLM& model, const torch::Tensor& hidden, const torch::Tensor& targets) {
  auto logits = model->project_logits(hidden);                  // [N, T, V] f32
  auto logp_all = torch::log_softmax(logits, -1);
  auto logp = logp_all.gather(2, targets.to(torch::kInt64).unsqueeze(2)).squeeze(2);
  auto entropy = -(logp_all.exp() * logp_all).sum(-1).detach();
  return {logp, entropy};
}

PackedSequences pack_sequences(const std::vector<std::vector<int32_t>>& prompts,
                               const std::vector<std::vector<int32_t>>& completions, torch::Device device,
                               bool share_prefix) {
  if (prompts.size() != completions.size() || prompts.empty())
    fail("pack_sequences: need one completion per prompt and at least one sequence");
  const int64_t N = static_cast<int64_t>(prompts.size());
  int64_t T = 1;  // T >= 1 so an all-empty batch still has a (masked) column
  size_t shortest = prompts[0].size();
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) fail("pack_sequences: empty prompt");
    shortest = std::min(shortest, prompts[i].size());
    T = std::max<int64_t>(T, completions[i].size());
  }
  // The shared prefix leaves every prompt at least its last token, whose state predicts the
  // first completion token.
  size_t Q = 0;
  if (share_prefix && N > 1) {
    Q = shortest - 1;
    for (size_t i = 1; i < prompts.size() && Q > 0; ++i) {
      size_t t = 0;
      while (t < Q && prompts[i][t] == prompts[0][t]) ++t;
      Q = t;
    }
    if (static_cast<int64_t>(Q) < kMinSharedPrefix) Q = 0;
  }
  int64_t P = 0;
  for (const auto& p : prompts) P = std::max<int64_t>(P, static_cast<int64_t>(p.size() - Q));
  auto ids = torch::zeros({N, P + T}, torch::kInt64);
  auto mask = torch::zeros({N, P + T}, torch::kBool);
  auto cmask = torch::zeros({N, T}, torch::kFloat32);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<bool, 2>();
  auto cmask_a = cmask.accessor<float, 2>();
  for (int64_t i = 0; i < N; ++i) {
    const auto& p = prompts[i];
    const auto& c = completions[i];
    const int64_t pad = P - static_cast<int64_t>(p.size() - Q);
    for (size_t k = Q; k < p.size(); ++k) ids_a[i][pad + k - Q] = p[k], mask_a[i][pad + k - Q] = true;
    for (size_t k = 0; k < c.size(); ++k) ids_a[i][P + k] = c[k], mask_a[i][P + k] = true, cmask_a[i][k] = 1.0f;
  }
  PackedSequences out;
  out.input_ids = ids.to(device);
  out.attention_mask = mask.to(device);
  out.completion_ids = out.input_ids.narrow(1, P, T);
  out.completion_mask = cmask.to(device);
  out.prompt_width = P;
  if (Q > 0)
    out.prefix_ids = torch::tensor(std::vector<int64_t>(prompts[0].begin(), prompts[0].begin() + Q)).view({1, -1}).to(device);
  return out;
}

TokenLogProbs completion_logprobs(CausalLM& model, const PackedSequences& batch, int64_t chunk_tokens) {
  const int64_t P = batch.prompt_width, T = batch.completion_ids.size(1);
  torch::Tensor hidden;  // [N, P + T, C]
  if (batch.prefix_ids.defined() && !(model->activation_checkpointing() && at::GradMode::is_enabled())) {
    hidden = model->forward_shared_prefix(batch.prefix_ids, batch.input_ids, batch.attention_mask).second;
  } else {
    torch::Tensor ids = batch.input_ids, mask = batch.attention_mask;
    int64_t Q = 0;
    if (batch.prefix_ids.defined()) {
      // Under activation checkpointing the prefix goes back in front of every row (the
      // padding between it and the rest is masked, and positions count real tokens only).
      const int64_t N = ids.size(0);
      Q = batch.prefix_ids.size(1);
      ids = torch::cat({batch.prefix_ids.expand({N, Q}), ids}, 1);
      mask = torch::cat({torch::ones({N, Q}, mask.options()), mask}, 1);
    }
    // Right padding sits after every real token, so causal attention never lets a real token
    // see it; padding rows' outputs are masked out of the loss.
    hidden = model->forward(ids, positions_from_mask(mask), mask, nullptr, LogitsFor::None).narrow(1, Q, P + T);
  }
  // The state at position P − 1 + t predicts completion token t.
  return chunked_token_logprobs(model, hidden.narrow(1, P - 1, T), batch.completion_ids, chunk_tokens);
}

}  // namespace lathe::rl
