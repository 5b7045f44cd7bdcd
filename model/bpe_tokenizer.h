// Hugging Face tokenizer.json: byte-level BPE (GPT-2, Llama-3, Qwen2 families).
#pragma once
#include <memory>
#include <string>

#include "model/tokenizer.h"

namespace lathe {

// Loads MODEL_DIR/tokenizer.json (+ tokenizer_config.json). Throws lathe::Error naming the
// file and field on bad input.
std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::string& model_dir);

}  // namespace lathe
