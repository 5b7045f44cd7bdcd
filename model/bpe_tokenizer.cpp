#include "model/bpe_tokenizer.h"

#include "core/error.h"

namespace lathe {

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::string& model_dir) {
  fail(model_dir + "/tokenizer.json: byte-level BPE is not implemented yet");
}

}  // namespace lathe
