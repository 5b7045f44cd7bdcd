#include "model/activation_checkpoint.h"

#include <mutex>

#include "model/autocast.h"

namespace lathe {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the backward needs to run the layer again, carried through the autograd context.
struct LayerRecompute : torch::CustomClassHolder {
  DecoderLayer layer{nullptr};
  AttentionContext ctx;
  std::vector<torch::Tensor> params;  // the layer's parameters that require grad
  AutocastState autocast;
  torch::Device device{torch::kCPU};
  torch::Tensor rng_state;            // the device generator's state before the forward
};

torch::Tensor generator_state(torch::Device device) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_generator_state(torch::Device device, const torch::Tensor& state) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

class CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
 public:
  // Function::apply runs this with grad mode off: nothing inside the layer is recorded.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, torch::TensorList params,
                               const c10::intrusive_ptr<LayerRecompute>& recompute) {
    ctx->save_for_backward({x});
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    return recompute->layer->forward(x, recompute->ctx);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto recompute = c10::static_intrusive_pointer_cast<LayerRecompute>(ctx->saved_data["recompute"].toCapsule());
    const torch::Tensor saved_x = ctx->get_saved_variables()[0];
    const bool x_needs_grad = ctx->needs_input_grad(0);
    torch::Tensor x = saved_x.detach().requires_grad_(x_needs_grad);

    // Replay the forward's random numbers, then put the generator back where backward found it.
    const torch::Tensor resume_state = generator_state(recompute->device);
    set_generator_state(recompute->device, recompute->rng_state);
    torch::Tensor y;
    {
      torch::AutoGradMode grad_on(true);
      AutocastScope autocast(recompute->autocast);
      y = recompute->layer->forward(x, recompute->ctx);
    }
    set_generator_state(recompute->device, resume_state);

    std::vector<torch::Tensor> inputs;
    if (x_needs_grad) inputs.push_back(x);
    inputs.insert(inputs.end(), recompute->params.begin(), recompute->params.end());
    variable_list grads = torch::autograd::grad({y}, inputs, {grad_outputs[0]}, /*retain_graph=*/false,
                                                /*create_graph=*/false, /*allow_unused=*/true);
    // One gradient per forward input: x, each parameter, and none for the recompute capsule.
    variable_list out;
    out.push_back(x_needs_grad ? grads[0] : torch::Tensor());
    out.insert(out.end(), grads.begin() + (x_needs_grad ? 1 : 0), grads.end());
    out.emplace_back();
    return out;
  }
};

}  // namespace

torch::Tensor checkpointed_layer_forward(DecoderLayer& layer, const torch::Tensor& x, const AttentionContext& ctx) {
  TORCH_CHECK(ctx.cache == nullptr, "activation checkpointing runs without a KV cache");
  auto recompute = c10::make_intrusive<LayerRecompute>();
  recompute->layer = layer;
  recompute->ctx = ctx;
  for (const auto& p : layer->parameters())
    if (p.requires_grad()) recompute->params.push_back(p);
  recompute->autocast = AutocastState::current();
  recompute->device = x.device();
  recompute->rng_state = generator_state(x.device());
  return CheckpointedLayer::apply(x, torch::TensorList(recompute->params), recompute);
}

}  // namespace lathe
