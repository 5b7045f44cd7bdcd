// The fuzz targets: one function per parser of outside input, each feeding one input to the
// real lathe parsing function the way lathe's commands call it. A clean rejection is a
// lathe::Error (or, for the server's request bodies, the ApiError that becomes a 400); the
// harness swallows those. Anything else — another exception type escaping, a crash, a
// sanitizer report, a broken invariant (abort) or a hang — is a finding.
// The same functions run under libFuzzer (libfuzzer_main.cpp, the LATHE_BUILD_FUZZ build)
// and in the regression runner every build has (regressions_main.cpp), which feeds the seed
// corpus and the committed crash inputs through them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

namespace lathe::fuzz {

struct FuzzTarget {
  const char* name;  // = its folder under tests/fuzz/corpus/ and tests/fuzz/regressions/
  const char* parses;
  void (*run)(const std::string& input);  // throws lathe::Error to reject the input
};

// Every target, in the order docs/reliability.md lists them.
const std::vector<FuzzTarget>& fuzz_targets();
// nullptr for an unknown name.
const FuzzTarget* find_fuzz_target(const std::string& name);

// Quiets lathe's logging (a warning per rejected input would dominate the run time) and
// builds the shared fixtures below, so their cost is not charged to the first input.
void prepare_fuzzing();

// Runs one input; returns normally for an accepted or cleanly rejected input. Any other
// exception propagates to the caller, which reports it as a finding.
void run_fuzz_input(const FuzzTarget& target, const uint8_t* data, size_t size);

// With verbose on, every clean rejection is printed (fuzz_regressions --verbose: to see
// which parser refused a seed input, and why).
void set_verbose_rejections(bool verbose);
void note_rejection(const std::exception& e);

// Runs f, taking a lathe::Error as a clean rejection: for targets that feed one input to
// several parsers, so that one parser's rejection does not keep the input from the others.
template <class F>
void unless_rejected(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    note_rejection(e);
  }
}

// The type of the exception being handled, demangled ("nlohmann::...::type_error").
std::string current_exception_type();

// A directory private to this process, removed at exit.
const std::string& scratch_dir();
// Writes `bytes` to scratch_dir()/relative (parents created) and returns the path.
std::string write_scratch_file(const std::string& relative, const std::string& bytes);
// A fresh empty directory scratch_dir()/relative (whatever was there is removed).
std::string fresh_scratch_dir(const std::string& relative);

// Fixtures built once per process, read-only afterwards:
// a byte-level BPE tokenizer folder (tokenizer.json + tokenizer_config.json, ChatML markers
// as special tokens) trained on a few lines of mixed English, Chinese and SQL;
const std::string& tiny_tokenizer_dir();
// that tokenizer loaded, and its (ChatML) chat template;
const Tokenizer& tiny_tokenizer();
const ChatTemplate& tiny_chat_template();
// a 40-vehicle inventory SQLite database (data/inventory_db.h).
const std::string& tiny_inventory_db();

// Splits an input into parts at each "\n----\n" (targets that need several files
// or fields from one input); at most `max_parts`, the last part keeps any further separators.
std::vector<std::string> split_parts(const std::string& input, size_t max_parts);

// The target functions (tests/fuzz/targets/<name>.cpp).
void fuzz_safetensors_header(const std::string& input);
void fuzz_checkpoint_index(const std::string& input);
void fuzz_hf_config(const std::string& input);
void fuzz_tokenizer_json(const std::string& input);
void fuzz_tokenizer_config(const std::string& input);
void fuzz_adapter_config(const std::string& input);
void fuzz_yaml_config(const std::string& input);
void fuzz_dataset_jsonl(const std::string& input);
void fuzz_csv_rows(const std::string& input);
void fuzz_serve_request(const std::string& input);
void fuzz_reward_parsing(const std::string& input);
void fuzz_agent_sql(const std::string& input);

}  // namespace lathe::fuzz
