// Gradient bytes one data-parallel optimizer step all-reduces (train/distributed.h sums every
// trainable parameter's f32 gradient once per step), for full fine-tuning and for LoRA with
// r = 16 on all seven projections, on the tiny preset and the Qwen2.5-0.5B shape. Counted
// from the shapes; for the tiny preset the count is checked against a model built in memory
// (the 0.5B shape is not built: 2 GB of f32). Prints a markdown table (docs/benchmarks.md).
#include <cstdio>
#include <string>

#include "model/hf_config.h"
#include "model/lora.h"
#include "model/model_init.h"
#include "model/transformer.h"

namespace {

struct Counts {
  int64_t full = 0, lora = 0;
};

// Parameters of a decoder (embeddings, per-layer projections, biases, norms, head) and of a
// LoRA adapter with rank r on every projection: r · (in + out) per adapted linear.
Counts count(const lathe::ModelConfig& c, int64_t r) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim;
  const int64_t linears[7][2] = {{H, q}, {H, kv}, {H, kv}, {q, H}, {H, I}, {H, I}, {I, H}};  // q k v o gate up down
  Counts n;
  int64_t layer = 2 * H;  // the two RMSNorm scales
  for (const auto& l : linears) {
    layer += l[0] * l[1];
    n.lora += r * (l[0] + l[1]) * c.num_hidden_layers;
  }
  if (c.qkv_bias) layer += q + 2 * kv;
  if (c.o_bias) layer += H;
  if (c.mlp_bias) layer += 2 * I + H;
  n.full = c.num_hidden_layers * layer + c.vocab_size * H + H + (c.tie_word_embeddings ? 0 : c.vocab_size * H);
  return n;
}

std::string mb(int64_t params) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f MB", static_cast<double>(params) * 4.0 / 1e6);
  return buf;
}

}  // namespace

int main() {
  const int64_t r = 16;
  {
    // The formula against a real tiny model and adapter.
    const lathe::ModelConfig c = lathe::preset_config("tiny");
    lathe::CausalLM model(c);
    int64_t full = 0, lora = 0;
    for (const auto& p : model->parameters()) full += p.numel();
    lathe::LoraConfig lc;
    lc.r = r;
    lc.target_modules = lathe::lora_target_names();
    for (const auto& p : lathe::add_lora_adapter(model, "bench", lc, 0)) lora += p.numel();
    const Counts n = count(c, r);
    std::printf("tiny preset built in memory: %lld parameters, LoRA r=16 x7: %lld (formula: %lld, %lld)%s\n",
                static_cast<long long>(full), static_cast<long long>(lora), static_cast<long long>(n.full),
                static_cast<long long>(n.lora), full == n.full && lora == n.lora ? "" : "  MISMATCH");
    if (full != n.full || lora != n.lora) return 1;
  }
  std::printf("\n| shape | full fine-tuning: parameters | bytes all-reduced / step | LoRA r=16 x7: parameters | "
              "bytes all-reduced / step | ratio |\n|---|---|---|---|---|---|\n");
  for (const char* name : {"tiny", "qwen2.5-0.5b-shape"}) {
    const Counts n = count(lathe::preset_config(name), r);
    std::printf("| %s | %lld | %s | %lld | %s | %.0fx |\n", name, static_cast<long long>(n.full), mb(n.full).c_str(),
                static_cast<long long>(n.lora), mb(n.lora).c_str(),
                static_cast<double>(n.full) / static_cast<double>(n.lora));
  }
  return 0;
}
