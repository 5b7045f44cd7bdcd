// LoRA for the SFT recipe: see sft_adapter.h. Until model/lora lands this build has no LoRA.
#include "train/sft_adapter.h"

#include "core/error.h"

namespace lathe {

std::vector<torch::Tensor> add_sft_adapter(CausalLM&, const Config&, uint64_t) {
  fail("lora.enabled=true: LoRA is not in this build yet; use full fine-tuning (lora.enabled=false)");
}
void save_sft_adapter(CausalLM&, const Config&, const std::string&) { fail("LoRA is not in this build yet"); }
void load_sft_adapter(CausalLM&, const std::string&) { fail("LoRA is not in this build yet"); }

}  // namespace lathe
