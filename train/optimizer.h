// AdamW over the trainable parameters, learning-rate schedules and gradient clipping.
// Schedules follow transformers' get_cosine_schedule_with_warmup / get_linear_schedule_with_warmup:
// linear warmup from 0 over warmup_steps, then cosine or linear decay to min_lr_ratio * lr at
// total_steps. Departure: transformers decays to 0; min_lr_ratio (default 0) generalises it.
// The schedule is a pure function of the step, so resuming needs only the step number.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace lathe {

struct LrSchedule {
  double lr = 2e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  std::string kind = "cosine";  // cosine | linear | constant
  double min_lr_ratio = 0.0;
  // Learning rate for optimizer step `step` (0-based).
  double at(int64_t step) const;
};

struct AdamWOptions {
  double lr = 2e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// Only parameters with requires_grad; an empty list is an error (nothing would train).
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params, const AdamWOptions& options);

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Global L2 norm of all gradients (before clipping), computed in f64 accumulation; when
// max_norm > 0 and the norm exceeds it, gradients are scaled by max_norm / (norm + 1e-6)
// as torch.nn.utils.clip_grad_norm_ does.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace lathe
