// Linear with optional LoRA adapters. The adapter path runs in the adapter's dtype (f32 for
// reduced-precision bases, as PEFT's autocast_adapter_dtype does) and is cast back.
#include "model/linear.h"

#include <algorithm>

#include "core/error.h"
#include "model/fast_linear.h"

namespace lathe {

LoraWeightImpl::LoraWeightImpl(torch::Tensor value) { weight = register_parameter("weight", std::move(value)); }

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out_features}));
}

namespace {

// A(dropout(x)) [..., r], in the adapter's dtype.
torch::Tensor lora_down(const LoraPair& lora, const torch::Tensor& x, bool training) {
  torch::Tensor h = x.to(lora.A.scalar_type());
  if (lora.dropout > 0.0 && training)
    h = torch::nn::functional::dropout(h, torch::nn::functional::DropoutFuncOptions().p(lora.dropout).training(true));
  return torch::nn::functional::linear(h, lora.A);
}

// [..., in] -> [..., out]: scale * B(A(dropout(x))), in the adapter's dtype.
torch::Tensor lora_delta(const LoraPair& lora, const torch::Tensor& x, bool training) {
  return torch::nn::functional::linear(lora_down(lora, x, training), lora.B) * lora.scale;
}

// y + lora_delta(lora, x) with the scale and the sum folded into one addmm over the
// [rows, out] output, which otherwise costs a scaled copy and a sum (forward, and again in
// backward) beside the rank-r products. Only where y is in the adapter's dtype (an f32 model
// without autocast); elsewhere the plain sum.
torch::Tensor add_lora_delta(const torch::Tensor& y, const LoraPair& lora, const torch::Tensor& x, bool training) {
  if (y.scalar_type() != lora.A.scalar_type()) return y + lora_delta(lora, x, training).to(y.scalar_type());
  const int64_t r = lora.A.size(0), out = lora.B.size(0);
  const auto down = lora_down(lora, x, training).reshape({-1, r});  // [rows, r]
  return torch::addmm(y.reshape({-1, out}), down, lora.B.t(), /*beta=*/1, /*alpha=*/lora.scale).view(y.sizes());
}

}  // namespace

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = linear_base(x, weight, bias);
  if (adapters.empty()) return y;
  if (row_adapters) {
    const RowAdapterGroups& plan = *row_adapters;
    if (x.size(0) != plan.batch)
      fail("per-row LoRA adapters were set for " + std::to_string(plan.batch) + " rows, the batch has " +
           std::to_string(x.size(0)));
    for (const auto& [name, lora] : adapters)
      if (lora.merged) fail("LoRA adapter '" + name + "' is merged into the weights; per-row adapters need it unmerged");
    for (const auto& group : plan.groups) {
      for (const auto& name : group.adapters) {
        auto it = adapters.find(name);
        if (it == adapters.end()) continue;
        if (group.all_rows) {
          y = y + lora_delta(it->second, x, is_training()).to(y.scalar_type());
        } else {
          // [b, ..., in] rows of this group -> their deltas added back at the same rows.
          auto delta = lora_delta(it->second, x.index_select(0, group.rows), is_training());
          y = y.index_add(0, group.rows, delta.to(y.scalar_type()));
        }
      }
    }
    return y;
  }
  for (const auto& [name, lora] : adapters) {
    const bool is_active = std::find(active.begin(), active.end(), name) != active.end();
    if (is_active && !lora.merged) y = add_lora_delta(y, lora, x, is_training());
    // A merged adapter that is switched off still sits in W: take it back out on the fly
    // (as PEFT does when adapters are disabled on a merged model), without touching W.
    if (!is_active && lora.merged) y = y - lora_delta(lora, x, false).to(y.scalar_type());
  }
  return y;
}

void LinearImpl::add_adapter(const std::string& name, torch::Tensor A, torch::Tensor B, double scale,
                             double dropout) {
  if (adapters.count(name)) fail("LoRA adapter '" + name + "' already exists on this layer");
  if (!lora_A_) {
    lora_A_ = register_module("lora_A", std::make_shared<torch::nn::Module>("LoraBank"));
    lora_B_ = register_module("lora_B", std::make_shared<torch::nn::Module>("LoraBank"));
  }
  LoraWeight a(A.set_requires_grad(true)), b(B.set_requires_grad(true));
  lora_A_->register_module(name, a);
  lora_B_->register_module(name, b);
  LoraPair pair;
  pair.A = a->weight;
  pair.B = b->weight;
  pair.scale = scale;
  pair.dropout = dropout;
  adapters[name] = pair;
}

void LinearImpl::remove_adapter(const std::string& name) {
  if (!adapters.count(name)) fail("LoRA adapter '" + name + "' does not exist on this layer");
  adapters.erase(name);
  lora_A_->unregister_module(name);
  lora_B_->unregister_module(name);
  if (adapters.empty()) {
    unregister_module("lora_A");
    unregister_module("lora_B");
    lora_A_.reset();
    lora_B_.reset();
  }
}

namespace {

// scale * B A in f32: [out, r] @ [r, in] -> [out, in].
torch::Tensor merged_delta(const LoraPair& lora) {
  return torch::matmul(lora.B.detach().to(torch::kFloat32), lora.A.detach().to(torch::kFloat32)) * lora.scale;
}

}  // namespace

void LinearImpl::merge_adapter(const std::string& name) {
  LoraPair& lora = adapters.at(name);
  if (lora.merged) fail("LoRA adapter '" + name + "' is already merged");
  torch::NoGradGuard no_grad;
  weight.copy_((weight.to(torch::kFloat32) + merged_delta(lora)).to(weight.scalar_type()));
  lora.merged = true;
}

void LinearImpl::unmerge_adapter(const std::string& name) {
  LoraPair& lora = adapters.at(name);
  if (!lora.merged) fail("LoRA adapter '" + name + "' is not merged");
  torch::NoGradGuard no_grad;
  weight.copy_((weight.to(torch::kFloat32) - merged_delta(lora)).to(weight.scalar_type()));
  lora.merged = false;
}

}  // namespace lathe
