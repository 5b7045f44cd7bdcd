// Chat templates rendered in C++, byte-exact with the Jinja templates they stand for.
//
// Template versions matched (the text of each lives in the model's tokenizer_config.json):
// * ChatML: Qwen2.5-Instruct (default system "You are Qwen, created by Alibaba Cloud. You
//   are a helpful assistant." when messages[0] is not a system message) and Qwen2-Instruct
//   ("You are a helpful assistant."). The default is read from the template text, not
//   hard-coded; a ChatML template without one gets no system turn. Tools are not supported.
// * Llama3: Meta-Llama-3-Instruct (bos_token on the first turn, every content | trim).
//   Llama 3.1/3.2 templates (recognised by "Cutting Knowledge Date") always open with a system
//   turn "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + system|trim.
//   Departure: Llama 3.2's template calls strftime_now() (today's date) when HF defines it; we
//   always use the template's literal fallback date so renders are reproducible.
// * Llama2: Llama-2-chat ("{bos}[INST] " + content.strip() + " [/INST]", assistant
//   " " + content.strip() + " " + eos, <<SYS>> block folded into the first user turn). The
//   template has no generation prompt; a prefill is rendered as the start of the assistant's
//   turn (" " + prefill), where the reply's text begins in a full render.
// * Mistral (Llama2 family, template without <<SYS>>): Mistral-7B-Instruct-v0.1 /
//   Mixtral-8x7B-Instruct-v0.1 (tokenizer_config @ 1e637f2d): "{bos}[INST] " + content +
//   " [/INST]", assistant content + eos, no stripping. Departure: that template raises on a
//   system message; we fold it into the first user turn as system + "\n\n" + user, which is
//   what Mistral's later v0.2/v0.3 templates do.
// * Plain (tiny models without a chat template, lathe's own): "<|system|>\n{c}\n<|user|>\n{c}\n
//   <|assistant|>\n{c}{eos}\n", generation prompt "<|assistant|>\n"; no BOS (the tokenizer adds it).
// Llama2/Mistral enforce the templates' user/assistant alternation with a lathe::Error.
#include "model/chat_template.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"

namespace lathe {
namespace {

std::string strip(const std::string& s) {  // Python's str.strip() / Jinja's trim, ASCII whitespace
  const char* ws = " \t\n\r\v\f";
  const auto begin = s.find_first_not_of(ws);
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(ws);
  return s.substr(begin, end - begin + 1);
}

// Accumulates segments, merging neighbours with the same flag.
class SegmentWriter {
 public:
  void prompt(const std::string& text) { add(text, false); }
  void target(const std::string& text) { add(text, true); }
  std::vector<ChatSegment> take() { return std::move(segments_); }

 private:
  void add(const std::string& text, bool trainable) {
    if (text.empty()) return;
    if (!segments_.empty() && segments_.back().trainable == trainable)
      segments_.back().text += text;
    else
      segments_.push_back({text, trainable});
  }
  std::vector<ChatSegment> segments_;
};

void render_chatml(const ChatTemplate& t, const std::vector<ChatMessage>& messages, SegmentWriter& w) {
  if ((messages.empty() || messages[0].role != "system") && !t.default_system.empty())
    w.prompt("<|im_start|>system\n" + t.default_system + "<|im_end|>\n");
  for (const auto& m : messages) {
    w.prompt("<|im_start|>" + m.role + "\n");
    if (m.role == "assistant") {
      w.target(m.content + t.eos_text);
    } else {
      w.prompt(m.content + t.eos_text);
    }
    w.prompt("\n");
  }
}

void render_llama3(const ChatTemplate& t, const std::vector<ChatMessage>& messages, SegmentWriter& w) {
  std::size_t first = 0;
  if (!t.llama3_date_header.empty()) {
    // Llama 3.1+: the system turn is always there, carrying the date header.
    std::string system;
    if (!messages.empty() && messages[0].role == "system") {
      system = strip(messages[0].content);
      first = 1;
    }
    w.prompt(t.bos_text + "<|start_header_id|>system<|end_header_id|>\n\n" + t.llama3_date_header + system +
             t.eos_text);
  } else if (!messages.empty()) {
    w.prompt(t.bos_text);
  }
  for (std::size_t i = first; i < messages.size(); ++i) {
    const auto& m = messages[i];
    w.prompt("<|start_header_id|>" + m.role + "<|end_header_id|>\n\n");
    if (m.role == "assistant")
      w.target(strip(m.content) + t.eos_text);
    else
      w.prompt(strip(m.content) + t.eos_text);
  }
}

void render_llama2(const ChatTemplate& t, const std::vector<ChatMessage>& messages, SegmentWriter& w) {
  std::size_t first = 0;
  std::optional<std::string> system;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    first = 1;
  }
  if (t.mistral_variant) w.prompt(t.bos_text);
  for (std::size_t i = first; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const bool expect_user = (i - first) % 2 == 0;
    if ((m.role == "user") != expect_user || (m.role != "user" && m.role != "assistant"))
      fail(chat_format_name(t.format) + std::string(t.mistral_variant ? " (mistral)" : "") +
           " chat format: after an optional system message, roles must alternate user/assistant "
           "(message " + std::to_string(i) + " is \"" + m.role + "\")");
    std::string content = m.content;
    if (i == first && system) {
      content = t.mistral_variant ? *system + "\n\n" + content
                                  : "<<SYS>>\n" + *system + "\n<</SYS>>\n\n" + content;
    }
    if (t.mistral_variant) {
      if (m.role == "user")
        w.prompt("[INST] " + content + " [/INST]");
      else
        w.target(content + t.eos_text);
    } else {
      if (m.role == "user")
        w.prompt(t.bos_text + "[INST] " + strip(content) + " [/INST]");
      else  // the space after [/INST] is part of what the model generates
        w.target(" " + strip(content) + " " + t.eos_text);
    }
  }
}

void render_plain(const ChatTemplate& t, const std::vector<ChatMessage>& messages, SegmentWriter& w) {
  for (const auto& m : messages) {
    w.prompt("<|" + m.role + "|>\n");
    if (m.role == "assistant") {
      w.target(m.content + t.eos_text);
    } else {
      w.prompt(m.content);
    }
    w.prompt("\n");
  }
}

// Qwen's default system prompt: the literal between "<|im_start|>system\n" and "<|im_end|>" in
// a template string (the occurrence followed by messages[0]['content'] is not a literal).
std::string find_default_system(const std::string& text) {
  for (const std::string opener : {"<|im_start|>system\\n", "<|im_start|>system\n"}) {
    for (auto at = text.find(opener); at != std::string::npos; at = text.find(opener, at + 1)) {
      const auto start = at + opener.size();
      const auto end = text.find("<|im_end|>", start);
      if (end == std::string::npos) continue;
      const std::string literal = text.substr(start, end - start);
      if (literal.find_first_of("'\"{}+") == std::string::npos && !literal.empty()) return literal;
    }
  }
  return "";
}

// Llama 3.1+: "Cutting Knowledge Date: <d>\nToday Date: <date_string default>\n\n".
std::string find_llama3_date_header(const std::string& text) {
  const std::string marker = "Cutting Knowledge Date: ";
  const auto at = text.find(marker);
  if (at == std::string::npos) return "";
  std::smatch m;
  std::string knowledge = "December 2023";
  const std::string tail = text.substr(at + marker.size());
  if (std::regex_search(tail, m, std::regex(R"(^([^"'\\\n]+))"))) knowledge = m[1];
  std::string today = "26 Jul 2024";
  if (std::regex_search(text, m, std::regex(R"(date_string\s*=\s*["']([^"']+)["'])"))) today = m[1];
  return "Cutting Knowledge Date: " + knowledge + "\nToday Date: " + today + "\n\n";
}

}  // namespace

std::vector<ChatSegment> ChatTemplate::render_segments(const std::vector<ChatMessage>& messages,
                                                       bool add_generation_prompt,
                                                       const std::string& assistant_prefill) const {
  SegmentWriter w;
  switch (format) {
    case ChatFormat::ChatML: render_chatml(*this, messages, w); break;
    case ChatFormat::Llama3: render_llama3(*this, messages, w); break;
    case ChatFormat::Llama2: render_llama2(*this, messages, w); break;
    case ChatFormat::Plain: render_plain(*this, messages, w); break;
  }
  if (add_generation_prompt) {
    switch (format) {
      case ChatFormat::ChatML: w.prompt("<|im_start|>assistant\n"); break;
      case ChatFormat::Llama3: w.prompt("<|start_header_id|>assistant<|end_header_id|>\n\n"); break;
      case ChatFormat::Llama2: break;  // the template has none: the prompt ends at " [/INST]"
      case ChatFormat::Plain: w.prompt("<|assistant|>\n"); break;
    }
    if (!assistant_prefill.empty()) {
      const bool leading_space = format == ChatFormat::Llama2 && !mistral_variant;
      w.prompt((leading_space ? " " : "") + assistant_prefill);
    }
  }
  return w.take();
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const std::string& assistant_prefill) const {
  std::string out;
  for (const auto& s : render_segments(messages, add_generation_prompt, assistant_prefill)) out += s.text;
  return out;
}

ChatFormat chat_format_from_name(const std::string& name) {
  if (name == "plain") return ChatFormat::Plain;
  if (name == "chatml") return ChatFormat::ChatML;
  if (name == "llama3") return ChatFormat::Llama3;
  if (name == "llama2" || name == "mistral") return ChatFormat::Llama2;
  fail("unknown chat format \"" + name + "\" (valid: plain, chatml, llama3, llama2, mistral)");
}

std::string chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::Plain: return "plain";
    case ChatFormat::ChatML: return "chatml";
    case ChatFormat::Llama3: return "llama3";
    case ChatFormat::Llama2: return "llama2";
  }
  return "plain";
}

ChatTemplate load_chat_template(const std::string& model_dir, const std::string& eos_text,
                                const std::string& bos_text, const std::string& override_name) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  std::string text;
  const std::string config_path = model_dir + "/tokenizer_config.json";
  if (fs::exists(config_path)) {
    json config;
    try {
      config = json::parse(read_file(config_path));
    } catch (const json::exception& e) {
      fail(config_path + ": invalid JSON (" + e.what() + ")");
    }
    if (config.contains("chat_template") && !config["chat_template"].is_null()) {
      const json& ct = config["chat_template"];
      if (ct.is_string()) {
        text = ct.get<std::string>();
      } else if (ct.is_array()) {
        bool found = false;
        for (const json& entry : ct) {
          if (entry.is_object() && entry.contains("name") && entry["name"] == "default" && entry.contains("template") &&
              entry["template"].is_string()) {
            text = entry["template"].get<std::string>();
            found = true;
          }
        }
        if (!found) fail(config_path + ": chat_template is a list without a \"default\" entry");
      } else {
        fail(config_path + ": chat_template must be a string or a list of {name, template}");
      }
    }
  }
  // Newer exports keep the template in its own file.
  if (text.empty() && fs::exists(model_dir + "/chat_template.jinja")) text = read_file(model_dir + "/chat_template.jinja");

  ChatTemplate t;
  std::string name = override_name;
  if (name.empty()) {
    if (text.find("<|im_start|>") != std::string::npos) {
      name = "chatml";
    } else if (text.find("<|start_header_id|>") != std::string::npos) {
      name = "llama3";
    } else if (text.find("[INST]") != std::string::npos) {
      name = text.find("<<SYS>>") != std::string::npos ? "llama2" : "mistral";
    } else {
      if (!text.empty())
        log::warn(config_path + ": chat_template not recognised (no <|im_start|>, <|start_header_id|> or "
                  "[INST]); using the plain format. Set chat_format in the config to choose one.");
      name = "plain";
    }
  }
  t.format = chat_format_from_name(name);
  t.mistral_variant = name == "mistral";
  t.bos_text = bos_text;
  t.eos_text = eos_text;
  switch (t.format) {
    case ChatFormat::ChatML:
      t.eos_text = "<|im_end|>";  // closes every turn, whatever the tokenizer's eos is
      t.bos_text = "";
      t.default_system = find_default_system(text);
      break;
    case ChatFormat::Llama3:
      t.eos_text = "<|eot_id|>";
      if (t.bos_text.empty()) t.bos_text = "<|begin_of_text|>";
      t.llama3_date_header = find_llama3_date_header(text);
      break;
    case ChatFormat::Llama2:
      if (t.bos_text.empty()) t.bos_text = "<s>";
      if (t.eos_text.empty()) t.eos_text = "</s>";
      break;
    case ChatFormat::Plain:
      break;
  }
  return t;
}

std::vector<int32_t> encode_rendered_chat(const Tokenizer& tokenizer, const std::string& rendered) {
  EncodeOptions options;
  options.parse_special = true;
  const std::string& bos = tokenizer.bos_text();
  const bool has_bos = !bos.empty() && rendered.compare(0, bos.size(), bos) == 0;
  options.add_bos = tokenizer.add_bos_token() && !has_bos;
  return tokenizer.encode(rendered, options);
}

}  // namespace lathe
