// The target table, the per-input wrapper and the fixtures the targets share (see
// fuzz_target.h). Inputs are written with plain stdio rather than core/atomic_file.h: these
// are throwaway files rewritten thousands of times a second, and the fsync an atomic write
// costs would dominate a fuzzing run.
#include "tests/fuzz/fuzz_target.h"

#include <cxxabi.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "data/inventory_db.h"
#include "model/bpe_trainer.h"

namespace lathe::fuzz {
namespace fs = std::filesystem;

const std::vector<FuzzTarget>& fuzz_targets() {
  static const std::vector<FuzzTarget> targets = {
      {"safetensors_header", "a .safetensors file: header JSON, offsets, dtypes, then every tensor loaded",
       fuzz_safetensors_header},
      {"checkpoint_index", "model.safetensors.index.json beside two valid shards", fuzz_checkpoint_index},
      {"hf_config", "config.json (ModelConfig::load) and its to_json round trip", fuzz_hf_config},
      {"tokenizer_json", "tokenizer.json (byte-level BPE), then encode/decode with it", fuzz_tokenizer_json},
      {"tokenizer_config", "tokenizer_config.json ---- config.json ---- generation_config.json beside a valid "
                           "tokenizer.json: special ids and the chat template",
       fuzz_tokenizer_config},
      {"adapter_config", "a PEFT folder: adapter_config.json [---- adapter_model.safetensors] loaded onto a tiny model",
       fuzz_adapter_config},
      {"yaml_config", "a YAML config [---- key=value overrides] through every recipe's schema, round-tripped",
       fuzz_yaml_config},
      {"dataset_jsonl", "a JSONL file as examples, user questions, SFT rows, GRPO prompts and agent eval questions",
       fuzz_dataset_jsonl},
      {"csv_rows", "a CSV file as user questions and as an inventory export", fuzz_csv_rows},
      {"serve_request", "an HTTP body of /v1/completions, /v1/chat/completions and /v1/load_lora_adapter",
       fuzz_serve_request},
      {"reward_parsing", "row JSON ---- completion [---- completion ...] through every built-in reward but command",
       fuzz_reward_parsing},
      {"agent_sql", "a model reply: <answer> extraction, the SQL tokenizer and guard, the SQLite executor, answers",
       fuzz_agent_sql},
  };
  return targets;
}

const FuzzTarget* find_fuzz_target(const std::string& name) {
  for (const auto& t : fuzz_targets())
    if (name == t.name) return &t;
  return nullptr;
}

void prepare_fuzzing() {
  log::set_level(log::Level::Error);
  tiny_chat_template();
  tiny_inventory_db();
}

namespace {
bool verbose_rejections = false;
}

void set_verbose_rejections(bool verbose) { verbose_rejections = verbose; }

void note_rejection(const std::exception& e) {
  if (verbose_rejections) std::printf("  rejected: %s\n", e.what());
}

void run_fuzz_input(const FuzzTarget& target, const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  try {
    target.run(input);
  } catch (const Error& e) {
    note_rejection(e);  // a clean rejection: what every malformed input should get
  }
}

std::string current_exception_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  if (!type) return "(no exception)";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type->name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? name.get() : type->name();
}

const std::string& scratch_dir() {
  // Never destroyed: the exit handler that removes the folder runs after function-local
  // statics constructed later than it was registered have been destroyed.
  static const std::string* dir = [] {
    std::string pattern = (fs::temp_directory_path() / "lathe-fuzz-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) {
      std::fprintf(stderr, "lathe fuzz: cannot create a scratch directory %s: %s\n", pattern.c_str(),
                   std::strerror(errno));
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch_dir(), ec);
    });
    return new std::string(pattern);
  }();
  return *dir;
}

std::string write_scratch_file(const std::string& relative, const std::string& bytes) {
  const fs::path path = fs::path(scratch_dir()) / relative;
  fs::create_directories(path.parent_path());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  const bool ok = f && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (!f || std::fclose(f) != 0 || !ok) {
    std::fprintf(stderr, "lathe fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path.string();
}

std::string fresh_scratch_dir(const std::string& relative) {
  const fs::path path = fs::path(scratch_dir()) / relative;
  fs::remove_all(path);
  fs::create_directories(path);
  return path.string();
}

const std::string& tiny_tokenizer_dir() {
  static const std::string dir = [] {
    const std::string corpus =
        "How many BMW cars are in stock in Shanghai? 上海有多少辆宝马在库？\n"
        "SELECT COUNT(*) FROM vehicles WHERE brand = '宝马' AND status = 'in_stock';\n"
        "<reasoning>\nCount the rows.\n</reasoning>\n<answer>\nSELECT 1;\n</answer>\n"
        "The quick brown fox jumps over the lazy dog 1234567890 接车日期 指导价格\n";
    BpeTrainOptions options;
    options.num_merges = 80;
    BpeModelSpec spec = train_bpe(corpus + corpus, options);
    const std::string out = fresh_scratch_dir("fixtures/tokenizer");
    save_bpe_model(spec, out);
    // A ChatML template, so chat rendering takes the path Qwen models do.
    const std::string config_path = out + "/tokenizer_config.json";
    nlohmann::json config = nlohmann::json::parse(std::ifstream(config_path));
    config["chat_template"] =
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    write_scratch_file("fixtures/tokenizer/tokenizer_config.json", config.dump(1));
    return out;
  }();
  return dir;
}

const Tokenizer& tiny_tokenizer() {
  static const std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(tiny_tokenizer_dir());
  return *tokenizer;
}

const ChatTemplate& tiny_chat_template() {
  static const ChatTemplate chat =
      load_chat_template(tiny_tokenizer_dir(), tiny_tokenizer().eos_text(), tiny_tokenizer().bos_text());
  return chat;
}

const std::string& tiny_inventory_db() {
  static const std::string path = [] {
    fresh_scratch_dir("fixtures/db");
    const std::string p = scratch_dir() + "/fixtures/db/inventory.sqlite";
    data::InventoryDbOptions options;
    options.vehicles = 40;
    data::generate_inventory_db(p, options);
    return p;
  }();
  return path;
}

std::vector<std::string> split_parts(const std::string& input, size_t max_parts) {
  static const std::string separator = "\n----\n";
  std::vector<std::string> parts;
  size_t begin = 0;
  while (parts.size() + 1 < max_parts) {
    const size_t at = input.find(separator, begin);
    if (at == std::string::npos) break;
    parts.push_back(input.substr(begin, at - begin));
    begin = at + separator.size();
  }
  parts.push_back(input.substr(begin));
  return parts;
}

}  // namespace lathe::fuzz
