// Fuzz target: a PEFT adapter folder loaded onto a tiny Llama-shaped model, as `lathe serve`
// (--lora-modules, /v1/load_lora_adapter) and `lathe merge` load one. The input is
// adapter_config.json, optionally followed by "----" and the bytes of adapter_model.safetensors;
// without them the folder keeps a valid r=4 q_proj/v_proj adapter's weights. Loaded both as
// the server does (modules_to_save refused) and as merge does (accepted).
// Invariant: a load that fails leaves no adapter behind (a server that refuses a bad hot
// reload must keep serving with the adapters it had).
#include <cstdio>
#include <cstdlib>

#include "core/atomic_file.h"
#include "model/lora.h"
#include "model/model_init.h"
#include "tests/fuzz/fuzz_target.h"

namespace lathe::fuzz {

namespace {

struct AdapterFixture {
  CausalLM model{nullptr};
  std::string dir;
  std::string weights;  // the valid adapter_model.safetensors
};

AdapterFixture& adapter_fixture() {
  static AdapterFixture f = [] {
    ModelConfig c;
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.vocab_size = 64;
    c.max_position_embeddings = 64;
    AdapterFixture out;
    out.model = CausalLM(c);
    init_random_weights(out.model, 1);
    LoraConfig lora;
    lora.r = 4;
    lora.alpha = 8;
    add_lora_adapter(out.model, "seed", lora, 1);
    out.dir = fresh_scratch_dir("adapter");
    save_peft_adapter(out.model, "seed", lora, out.dir);
    remove_adapter(out.model, "seed");
    out.weights = read_file(out.dir + "/adapter_model.safetensors");
    return out;
  }();
  return f;
}

}  // namespace

void fuzz_adapter_config(const std::string& input) {
  AdapterFixture& f = adapter_fixture();
  const std::vector<std::string> parts = split_parts(input, 2);
  write_scratch_file("adapter/adapter_config.json", parts[0]);
  write_scratch_file("adapter/adapter_model.safetensors", parts.size() > 1 ? parts[1] : f.weights);
  for (bool allow_modules_to_save : {false, true}) {
    PeftLoadOptions options;
    options.allow_modules_to_save = allow_modules_to_save;
    try {
      load_peft_adapter(f.model, "fuzz", f.dir, options);
      remove_adapter(f.model, "fuzz");
    } catch (const Error& e) {
      note_rejection(e);  // rejected cleanly; what matters is what it left behind
    }
    if (!adapter_names(f.model).empty()) {
      std::fprintf(stderr, "lathe fuzz: a failed adapter load left adapter '%s' on the model\n",
                   adapter_names(f.model)[0].c_str());
      std::abort();
    }
  }
}

}  // namespace lathe::fuzz
