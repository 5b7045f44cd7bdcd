// lathe tokenize --model DIR TEXT [--json] [--no-bos]: ids and pieces of a text.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/runtime.h"
#include "model/tokenizer.h"

namespace lathe::cli {

namespace {
struct TokenizeOptions {
  std::string model_dir, text;
  bool json = false;
  bool no_bos = false;
};
}  // namespace

void register_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids and pieces of a text");
  cmd->add_option("--model", o->model_dir, "model folder holding tokenizer.json or tokenizer.model")->required();
  cmd->add_option("text", o->text, "text to tokenize")->required();
  cmd->add_flag("--json", o->json, "print one JSON object {\"ids\": [...], \"pieces\": [...]}");
  cmd->add_flag("--no-bos", o->no_bos, "do not add BOS even where the tokenizer adds it by default");
  cmd->callback([o] {
    auto tokenizer = load_tokenizer(o->model_dir);
    EncodeOptions options;
    options.add_bos = !o->no_bos && tokenizer->add_bos_token();
    auto ids = tokenizer->encode(o->text, options);
    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.push_back(tokenizer->id_to_piece(id));
    if (o->json) {
      nlohmann::json j{{"ids", ids}, {"pieces", pieces}};
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return;
    }
    for (size_t i = 0; i < ids.size(); ++i) std::cout << ids[i] << (i + 1 < ids.size() ? " " : "\n");
    for (size_t i = 0; i < pieces.size(); ++i) std::cout << pieces[i] << (i + 1 < pieces.size() ? " " : "\n");
  });
}

}  // namespace lathe::cli
