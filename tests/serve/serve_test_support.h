// Shared by the serve tests: a tiny random model folder with its own BPE tokenizer and a few
// PEFT adapters (non-zero B, so each changes the output), made once per test binary; a server
// started in-process on a free loopback port; and small HTTP helpers (JSON and SSE).
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "model/bpe_trainer.h"
#include "model/generate.h"
#include "model/lora.h"
#include "model/model_init.h"
#include "model/model_io.h"
#include "serve/server.h"
#include "tests/support/test_support.h"

namespace lathe::serve::testing {

using nlohmann::json;

struct TinyServingModel {
  lathe::testing::TempDir dir;
  std::string model_dir, adapter_a, adapter_a2, adapter_b, adapter_rank32;

  TinyServingModel() {
    model_dir = dir.file("model");
    std::filesystem::create_directories(model_dir);
    BpeTrainOptions options;
    options.num_merges = 150;
    std::string corpus;
    for (int i = 0; i < 4; ++i)
      corpus += "How many cars are in stock? SELECT COUNT(*) FROM vehicles WHERE brand = '宝马'; "
                "宝马在上海有几辆在库？ the dealer counted the cars every morning.\n";
    save_bpe_model(train_bpe(corpus, options), model_dir);
    auto tokenizer = load_tokenizer(model_dir);
    ModelConfig c;
    c.model_type = "llama";
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 16;
    c.vocab_size = tokenizer->vocab_size();
    c.max_position_embeddings = 4096;  // servers run with --max-model-len 256 unless a test needs long runs
    c.tie_word_embeddings = false;
    c.bos_token_id.reset();
    c.eos_token_ids.clear();
    if (tokenizer->eos_id()) c.eos_token_ids = {*tokenizer->eos_id()};
    CausalLM m(c);
    init_random_weights(m, 11, 0.25);
    save_model(m, model_dir, torch::kFloat32);
    adapter_a = make_adapter(m, "a", 8, lora_target_names(), 1);
    adapter_a2 = make_adapter(m, "a2", 8, lora_target_names(), 2);
    adapter_b = make_adapter(m, "b", 4, {"q_proj", "v_proj", "down_proj"}, 3);
    adapter_rank32 = make_adapter(m, "r32", 32, {"q_proj"}, 4);
  }

  std::string make_adapter(CausalLM& m, const std::string& name, int64_t r, std::vector<std::string> targets,
                           uint64_t seed) {
    LoraConfig config;
    config.r = r;
    config.alpha = 2.0 * r;
    config.target_modules = std::move(targets);
    add_lora_adapter(m, name, config, seed);
    {
      torch::NoGradGuard no_grad;
      torch::manual_seed(seed + 100);
      for (auto& p : m->named_parameters(true))
        if (p.key().find(".lora_B." + name + ".") != std::string::npos) p.value().normal_(0.0, 0.3);
    }
    const std::string out = dir.file("adapter-" + name);
    save_peft_adapter(m, name, config, out);
    remove_adapter(m, name);
    return out;
  }
};

// Built on first use, shared by every test of the binary.
inline const TinyServingModel& tiny() {
  static TinyServingModel model;
  return model;
}

inline ServerOptions options_for(const TinyServingModel& m) {
  ServerOptions o;
  o.model_dir = m.model_dir;
  o.served_model_names = {"tiny"};
  o.port = 0;
  o.scheduler.max_num_seqs = 16;
  o.scheduler.max_waiting = 32;
  o.scheduler.max_model_len = 256;
  o.shutdown_grace_seconds = 5;
  return o;
}

inline std::unique_ptr<Server> start(ServerOptions o) {
  auto server = std::make_unique<Server>(std::move(o));
  server->start();
  return server;
}

struct Reply {
  int status = 0;  // 0: no response
  std::string body;
  json json_body;  // null unless the body is JSON
};

inline Reply reply_of(const httplib::Result& r) {
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.json_body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (out.json_body.is_discarded()) out.json_body = nullptr;
  return out;
}

inline httplib::Client client(const Server& s) {
  httplib::Client c("127.0.0.1", s.port());
  c.set_read_timeout(30, 0);
  return c;
}

inline Reply post(const Server& s, const std::string& path, const std::string& body, httplib::Headers headers = {}) {
  auto c = client(s);
  return reply_of(c.Post(path.c_str(), headers, body, "application/json"));
}
inline Reply post(const Server& s, const std::string& path, const json& body, httplib::Headers headers = {}) {
  return post(s, path, body.dump(), std::move(headers));
}
inline Reply get(const Server& s, const std::string& path, httplib::Headers headers = {}) {
  auto c = client(s);
  return reply_of(c.Get(path.c_str(), headers));
}

struct Stream {
  int status = 0;
  std::string raw;                // everything received
  std::vector<std::string> data;  // the payload of each "data: " event, in order ("[DONE]" included)
  std::vector<json> chunks;       // the JSON payloads
  bool done() const { return !data.empty() && data.back() == "[DONE]"; }
};

// POSTs with stream: true and collects server-sent events; stops reading (closing the
// connection) after `stop_after` events when >= 0.
inline Stream post_stream(const Server& s, const std::string& path, json body, int stop_after = -1) {
  body["stream"] = true;
  Stream out;
  std::string pending;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body.dump();
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    out.raw.append(data, len);
    pending.append(data, len);
    size_t end;
    while ((end = pending.find("\n\n")) != std::string::npos) {
      std::string event = pending.substr(0, end);
      pending.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;  // comments (keep-alive)
      out.data.push_back(event.substr(6));
      if (out.data.back() != "[DONE]") out.chunks.push_back(json::parse(out.data.back()));
      if (stop_after >= 0 && static_cast<int>(out.data.size()) >= stop_after) return false;
    }
    return true;
  };
  auto c = client(s);
  auto r = c.send(req);
  if (r) out.status = r->status;
  else if (stop_after >= 0) out.status = 200;  // we hung up on purpose
  return out;
}

// The text of every choice of a stream, by index (completions "text" or chat "delta.content").
inline std::vector<std::string> stream_texts(const Stream& s, size_t choices) {
  std::vector<std::string> texts(choices);
  for (const auto& c : s.chunks) {
    for (const auto& choice : c["choices"]) {
      const size_t i = choice["index"].get<size_t>();
      if (choice.contains("text")) texts.at(i) += choice["text"].get<std::string>();
      if (choice.contains("delta") && choice["delta"].contains("content"))
        texts.at(i) += choice["delta"]["content"].get<std::string>();
    }
  }
  return texts;
}

// A reference outside the server: the same folder loaded afresh, greedy via generate().
struct Reference {
  LoadedModel loaded;
  Reference() : loaded(load_model(tiny().model_dir, torch::kCPU, torch::kFloat32)) {}
  std::string greedy(const std::vector<int32_t>& prompt, int max_tokens, const std::string& adapter_dir = "") {
    if (!adapter_dir.empty()) load_peft_adapter(loaded.model, "ref", adapter_dir);
    SamplingParams p;
    p.temperature = 0;
    p.max_new_tokens = max_tokens;
    auto text = generate(loaded.model, loaded.tokenizer.get(), {{prompt, p}}).completions[0][0].text;
    if (!adapter_dir.empty()) remove_adapter(loaded.model, "ref");
    return text;
  }
  std::vector<int32_t> encode(const std::string& text) { return loaded.tokenizer->encode(text); }
  std::vector<int32_t> chat(const std::vector<ChatMessage>& messages) {
    return encode_rendered_chat(*loaded.tokenizer, loaded.chat.render(messages, true));
  }
};

// The value of a metric line "name{labels} value" in a Prometheus exposition (-1 if absent).
inline double metric(const std::string& exposition, const std::string& name_and_labels) {
  const auto at = exposition.find("\n" + name_and_labels + " ");
  if (at == std::string::npos) return -1;
  return std::stod(exposition.substr(at + name_and_labels.size() + 2));
}

}  // namespace lathe::serve::testing
