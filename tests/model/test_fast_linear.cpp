// The linear fast paths of model/fast_linear.h against the plain linear (the decode gemv is
// tested in test_transformer.cpp): bf16 products computed in f32 (the path for CPUs without bf16
// instructions) against the plain bf16 linear and against f32, with and without bias, 3-D
// inputs, under an outer autocast; and a bf16 model (whichever path this CPU takes) against the
// same model in f32, logits and LoRA gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/autocast.h"
#include "model/fast_linear.h"
#include "model/lora.h"
#include "model/model_init.h"

namespace lathe {
namespace {

// Largest difference relative to the reference's largest magnitude.
double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().max().item<double>() /
         b.to(torch::kFloat32).abs().max().item<double>();
}

TEST(Bf16Matmul, ViaF32EqualsBf16LinearWithGradients) {
  torch::manual_seed(4);
  for (const bool with_bias : {true, false}) {
    const auto x0 = torch::randn({2, 5, 24}).to(torch::kBFloat16);
    const auto w0 = torch::randn({12, 24}).to(torch::kBFloat16);
    const auto b0 = torch::randn({12}).to(torch::kBFloat16);
    const auto gy = torch::randn({2, 5, 12}).to(torch::kBFloat16);
    auto run = [&](bool via_f32) {
      auto x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(), b = b0.clone().requires_grad_();
      const torch::Tensor bias = with_bias ? b : torch::Tensor();
      auto y = via_f32 ? bf16_linear_via_f32(x, w, bias) : linear_reference(x, w, bias);
      y.backward(gy);
      return std::vector<torch::Tensor>{y, x.grad(), w.grad(), with_bias ? b.grad() : torch::ones({1})};
    };
    const auto fast = run(true), ref = run(false);
    EXPECT_EQ(fast[0].scalar_type(), torch::kBFloat16);
    for (size_t i = 0; i < fast.size(); ++i) {
      EXPECT_EQ(fast[i].scalar_type(), ref[i].scalar_type()) << i;
      EXPECT_LT(relative_error(fast[i], ref[i]), 1e-2) << "output/grad " << i << (with_bias ? " with bias" : "");
    }
    // Against f32 arithmetic on the same (exactly representable) inputs.
    const auto exact = torch::nn::functional::linear(x0.to(torch::kFloat32), w0.to(torch::kFloat32),
                                                     with_bias ? b0.to(torch::kFloat32) : torch::Tensor());
    EXPECT_LT(relative_error(fast[0], exact), 8e-3);
  }
  // An outer autocast does not send the f32 products back to bf16 kernels.
  AutocastScope scope(torch::Device(torch::kCPU), torch::kBFloat16);
  const auto x = torch::randn({6, 8}).to(torch::kBFloat16), w = torch::randn({3, 8}).to(torch::kBFloat16);
  EXPECT_LT(relative_error(bf16_linear_via_f32(x, w, {}),
                           torch::matmul(x.to(torch::kFloat32), w.to(torch::kFloat32).t()).to(torch::kFloat32)),
            8e-3);
}

TEST(Bf16Matmul, ChoosesF32OnlyForSeveralRowsOnCpusWithoutBf16) {
  const bool emulate = !cpu_has_native_bf16_matmul();
  EXPECT_EQ(bf16_matmul_in_f32(torch::zeros({4, 8}, torch::kBFloat16)), emulate);
  EXPECT_EQ(bf16_matmul_in_f32(torch::zeros({2, 2, 8}, torch::kBFloat16)), emulate);
  EXPECT_FALSE(bf16_matmul_in_f32(torch::zeros({1, 8}, torch::kBFloat16)));  // decode: the gemv
  EXPECT_FALSE(bf16_matmul_in_f32(torch::zeros({4, 8}, torch::kFloat32)));
  std::printf("this CPU %s native bf16 matmul\n", emulate ? "lacks" : "has");
}

TEST(Bf16Matmul, Bf16ModelTracksF32ModelLogitsAndLoraGradients) {
  ModelConfig c;
  c.model_type = "qwen2";
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 97;
  c.max_position_embeddings = 64;
  c.qkv_bias = true;
  c.tie_word_embeddings = true;
  auto make = [&](torch::ScalarType dtype) {
    CausalLM m(c);
    init_random_weights(m, 1, 0.1);
    m->to(dtype);
    LoraConfig lc;
    lc.target_modules = lora_target_names();
    add_lora_adapter(m, "default", lc, 2);
    torch::NoGradGuard g;
    torch::manual_seed(3);
    for (auto& p : m->named_parameters(true))
      if (p.key().find(".lora_B.") != std::string::npos) p.value().normal_(0.0, 0.1);
    return m;
  };
  auto f32 = make(torch::kFloat32), bf16 = make(torch::kBFloat16);
  const auto ids = torch::randint(0, 97, {2, 12}, torch::kInt64);
  auto step = [&](CausalLM& m) {
    auto logits = m->forward_full(ids);  // f32
    torch::nn::functional::cross_entropy(logits.view({-1, 97}), ids.view({-1})).backward();
    return logits.detach();
  };
  EXPECT_LT(relative_error(step(bf16), step(f32)), 0.05);
  const auto a = bf16->model->layer_list[0]->self_attn->q_proj->adapters.at("default");
  const auto b = f32->model->layer_list[0]->self_attn->q_proj->adapters.at("default");
  EXPECT_EQ(a.B.grad().scalar_type(), torch::kFloat32);  // adapters stay f32 on a bf16 base
  EXPECT_LT((a.B.grad() - b.B.grad()).norm().item<double>(), 0.05 * b.B.grad().norm().item<double>());
}

}  // namespace
}  // namespace lathe
