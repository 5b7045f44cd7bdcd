// Chat templates: byte-exact renders per family (expected strings written from the Jinja
// templates named in model/chat_template.cpp; the Mistral one is the output HF's
// apply_chat_template gives for Mixtral-8x7B-Instruct-v0.1), trainable segments for SFT, and
// family detection from tokenizer_config.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/chat_template.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {

using ::lathe::testing::TempDir;

const char* kQwen25 =
    R"({%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }})"
    R"({%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }})"
    R"({%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }})"
    R"({%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %})";
const char* kQwen2 =
    R"({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %})"
    R"({{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";
const char* kLlama3 =
    R"({% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %})"
    R"({% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %})";
const char* kLlama31 =
    R"({{- bos_token }}{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %})"
    R"({{- "<|start_header_id|>system<|end_header_id|>\n\n" }}{{- "Cutting Knowledge Date: December 2023\n" }}{{- "Today Date: " + date_string + "\n\n" }})"
    R"({{- system_message }}{{- "<|eot_id|>" }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}{%- endfor %})";
const char* kLlama2 =
    R"({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %})"
    R"({% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %})"
    R"({% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})";
const char* kMistral =
    R"({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %})"
    R"({% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})";

ChatTemplate load_with(const nlohmann::json& chat_template, const std::string& eos, const std::string& bos,
                       const std::string& override_name = "") {
  TempDir dir;
  write_file_atomic(dir.file("tokenizer_config.json"), nlohmann::json{{"chat_template", chat_template}}.dump());
  return load_chat_template(dir.path(), eos, bos, override_name);
}

const std::vector<ChatMessage> kConversation = {{"system", "S"}, {"user", "U"}, {"assistant", "A"}};

std::string trainable_text(const std::vector<ChatSegment>& segments) {
  std::string out;
  for (const auto& s : segments)
    if (s.trainable) out += s.text + "|";
  return out;
}

void expect_segments_match(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool gen,
                           const std::string& prefill = "") {
  std::string joined;
  for (const auto& s : t.render_segments(messages, gen, prefill)) joined += s.text;
  EXPECT_EQ(joined, t.render(messages, gen, prefill));
}

TEST(ChatTemplate, ChatMLQwen25) {
  const auto t = load_with(kQwen25, "<|endoftext|>", "");
  EXPECT_EQ(t.format, ChatFormat::ChatML);
  EXPECT_EQ(t.default_system, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(t.render(kConversation, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n");
  EXPECT_EQ(t.render({{"user", "U"}}, true, "<reasoning>"),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n<reasoning>");
  const std::vector<ChatMessage> multi = {{"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}, {"assistant", "A2"}};
  EXPECT_EQ(trainable_text(t.render_segments(multi, false)), "A1<|im_end|>|A2<|im_end|>|");
  expect_segments_match(t, multi, false);
  expect_segments_match(t, kConversation, true, "<reasoning>");
}

TEST(ChatTemplate, ChatMLQwen2DefaultSystem) {
  const auto t = load_with(kQwen2, "<|endoftext|>", "");
  EXPECT_EQ(t.default_system, "You are a helpful assistant.");
  EXPECT_EQ(t.render({{"user", "hi"}}, true),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama3) {
  const auto t = load_with(kLlama3, "<|eot_id|>", "<|begin_of_text|>");
  EXPECT_EQ(t.format, ChatFormat::Llama3);
  EXPECT_EQ(t.llama3_date_header, "");
  const std::vector<ChatMessage> messages = {{"system", " S "}, {"user", "U\n"}, {"assistant", "\tA "}};
  EXPECT_EQ(t.render(messages, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
  EXPECT_EQ(t.render({{"user", "U"}}, true, "<think>"),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n<think>");
  EXPECT_EQ(trainable_text(t.render_segments(messages, false)), "A<|eot_id|>|");
  expect_segments_match(t, messages, true, "x");
}

TEST(ChatTemplate, Llama31DateHeader) {
  const auto t = load_with(kLlama31, "<|eot_id|>", "<|begin_of_text|>");
  EXPECT_EQ(t.llama3_date_header, "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
  EXPECT_EQ(t.render({{"user", "U"}}, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(t.render(kConversation, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
}

TEST(ChatTemplate, Llama2) {
  const auto t = load_with(kLlama2, "</s>", "<s>");
  EXPECT_EQ(t.format, ChatFormat::Llama2);
  EXPECT_FALSE(t.mistral_variant);
  const std::vector<ChatMessage> messages = {
      {"system", "S"}, {"user", " U1 "}, {"assistant", " A1\n"}, {"user", "U2"}};
  // content.strip() applies to the whole "<<SYS>>...\n\n" + user text: the user's leading
  // space survives inside, its trailing space does not.
  EXPECT_EQ(t.render(messages, true), "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\n U1 [/INST] A1 </s><s>[INST] U2 [/INST]");
  EXPECT_EQ(t.render({{"user", "U"}}, true, "<r>"), "<s>[INST] U [/INST] <r>");
  EXPECT_EQ(trainable_text(t.render_segments(messages, true)), " A1 </s>|");
  expect_segments_match(t, messages, true, "p");
  EXPECT_THROW(t.render({{"assistant", "A"}}, false), Error);
}

TEST(ChatTemplate, MistralMatchesHfOutput) {
  const auto t = load_with(kMistral, "</s>", "<s>");
  EXPECT_EQ(t.format, ChatFormat::Llama2);
  EXPECT_TRUE(t.mistral_variant);
  const std::vector<ChatMessage> chat = {{"user", "Hello, how are you?"},
                                         {"assistant", "I'm doing great. How can I help you today?"},
                                         {"user", "I'd like to show off how chat templating works!"}};
  EXPECT_EQ(t.render(chat, true),
            "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s>"
            "[INST] I'd like to show off how chat templating works! [/INST]");
  EXPECT_EQ(t.render({{"system", "S"}, {"user", "U"}}, true, "<r>"), "<s>[INST] S\n\nU [/INST]<r>");
  EXPECT_EQ(trainable_text(t.render_segments(chat, true)), "I'm doing great. How can I help you today?</s>|");
}

TEST(ChatTemplate, PlainWithoutTemplate) {
  TempDir dir;
  write_file_atomic(dir.file("tokenizer_config.json"), R"({"bos_token": "<s>"})");
  const auto t = load_chat_template(dir.path(), "</s>", "<s>");
  EXPECT_EQ(t.format, ChatFormat::Plain);
  EXPECT_EQ(t.render(kConversation, false), "<|system|>\nS\n<|user|>\nU\n<|assistant|>\nA</s>\n");
  EXPECT_EQ(t.render({{"user", "U"}}, true, "Once"), "<|user|>\nU\n<|assistant|>\nOnce");
  EXPECT_EQ(trainable_text(t.render_segments(kConversation, false)), "A</s>|");
  TempDir empty;
  EXPECT_EQ(load_chat_template(empty.path(), "</s>", "<s>").format, ChatFormat::Plain);
}

TEST(ChatTemplate, ListFormOverrideAndErrors) {
  const nlohmann::json list = {{{"name", "tool_use"}, {"template", kLlama3}}, {{"name", "default"}, {"template", kQwen25}}};
  EXPECT_EQ(load_with(list, "</s>", "<s>").format, ChatFormat::ChatML);
  EXPECT_EQ(load_with(kQwen25, "</s>", "<s>", "plain").format, ChatFormat::Plain);
  EXPECT_TRUE(load_with(kLlama2, "</s>", "<s>", "mistral").mistral_variant);
  EXPECT_EQ(chat_format_from_name("llama3"), ChatFormat::Llama3);
  EXPECT_EQ(chat_format_name(ChatFormat::ChatML), "chatml");
  EXPECT_THROW(chat_format_from_name("vicuna"), Error);
  TempDir dir;
  write_file_atomic(dir.file("tokenizer_config.json"), "{\"chat_template\": ");
  try {
    load_chat_template(dir.path(), "</s>", "<s>");
    FAIL() << "expected lathe::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("tokenizer_config.json")), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lathe
