// SentencePiece training through the shim: see sentencepiece_trainer.h.
#include "model/sentencepiece_trainer.h"

#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/sentencepiece_shim_loader.h"

namespace lathe {
namespace fs = std::filesystem;

void train_sentencepiece(const std::string& corpus_path, const std::string& out_dir,
                         const SentencePieceTrainOptions& options) {
  if (options.model_type != "unigram" && options.model_type != "bpe")
    fail("sentencepiece: model_type must be unigram or bpe (got " + options.model_type + ")");
  std::string symbols;
  for (const auto& s : options.user_defined_symbols) {
    if (s.find(',') != std::string::npos) fail("sentencepiece: user-defined symbol \"" + s + "\" contains a comma");
    symbols += (symbols.empty() ? "" : ",") + s;
  }
  // sentencepiece writes PREFIX.model and PREFIX.vocab itself; they are renamed into place after.
  const std::string prefix = out_dir + "/.tmp-tokenizer-" + std::to_string(::getpid());
  const std::vector<std::pair<std::string, std::string>> flags = {
      {"input", corpus_path},
      {"model_prefix", prefix},
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_by_whitespace", options.split_by_whitespace ? "true" : "false"},
      {"max_sentencepiece_length", std::to_string(options.max_piece_length)},
      {"user_defined_symbols", symbols},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "3"},
      {"input_sentence_size", std::to_string(options.max_sentences)},
      {"shuffle_input_sentence", options.max_sentences > 0 ? "true" : "false"},
      {"max_sentence_length", "16384"},
      {"num_threads", std::to_string(options.threads)},
      {"minloglevel", "2"},  // sentencepiece's per-iteration progress is noise here
  };
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : flags) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  using Sink = void (*)(void*, const char*, size_t);
  using Train = int (*)(const char* const*, const char* const*, size_t, Sink, void*);
  const auto train = reinterpret_cast<Train>(sentencepiece_shim_symbol("lathe_spm_train"));
  std::string message;
  const Sink append = [](void* context, const char* data, size_t size) {
    static_cast<std::string*>(context)->append(data, size);
  };
  if (!train(keys.data(), values.data(), keys.size(), append, &message))
    fail("sentencepiece training on " + corpus_path + " failed: " + message);
  // tokenizer.vocab (the pieces with their scores) is for people; tokenizer.model is what loads.
  std::error_code ec;
  fs::rename(prefix + ".vocab", out_dir + "/tokenizer.vocab", ec);
  fs::rename(prefix + ".model", out_dir + "/tokenizer.model", ec);
  if (ec) fail("cannot write " + out_dir + "/tokenizer.model: " + ec.message());
  const nlohmann::json config = {{"add_bos_token", true},    {"add_eos_token", false}, {"bos_token", "<s>"},
                                 {"eos_token", "</s>"},       {"pad_token", "<pad>"},   {"unk_token", "<unk>"},
                                 {"legacy", true},            {"tokenizer_class", "LlamaTokenizer"}};
  write_file_atomic(out_dir + "/tokenizer_config.json", config.dump(2) + "\n");
}

}  // namespace lathe
