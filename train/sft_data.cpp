// SFT data: see sft_data.h.
#include "train/sft_data.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "core/error.h"

namespace lathe {
namespace {

using nlohmann::json;

std::vector<ChatMessage> parse_messages(const json& list, const std::string& where, const std::string& field) {
  if (!list.is_array()) fail(where + ": \"" + field + "\" must be a list of {role, content} messages");
  std::vector<ChatMessage> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    const std::string at = where + ": " + field + "[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      fail(at + " must be an object with string \"role\" and \"content\"");
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant")
      fail(at + ": role \"" + role + "\" is not system, user or assistant");
    out.push_back({role, m["content"]});
  }
  return out;
}

// Byte spans of each token in `text`, or false when the tokens do not spell the text (then
// the caller encodes piece by piece). SentencePiece's dummy-prefix space is skipped where the
// text has none.
bool token_spans(const std::vector<int32_t>& ids, std::size_t first, const Tokenizer& tokenizer,
                 const std::string& text, std::vector<std::pair<std::size_t, std::size_t>>& spans) {
  std::size_t at = 0;
  spans.assign(ids.size(), {0, 0});
  for (std::size_t i = first; i < ids.size(); ++i) {
    std::string bytes = tokenizer.token_bytes(ids[i]);
    if (!bytes.empty() && bytes[0] == ' ' && (at >= text.size() || text[at] != ' ')) bytes.erase(0, 1);
    if (text.compare(at, bytes.size(), bytes) != 0) return false;
    spans[i] = {at, at + bytes.size()};
    at += bytes.size();
  }
  return at == text.size();
}

}  // namespace

std::vector<ChatSegment> sft_row_segments(const std::string& json_line, const ChatTemplate& chat,
                                          const std::string& eos_text, const std::string& where) {
  json row;
  try {
    row = json::parse(json_line);
  } catch (const json::exception& e) {
    fail(where + ": invalid JSON: " + std::string(e.what()));
  }
  if (!row.is_object()) fail(where + ": expected a JSON object with \"messages\" or \"prompt\"/\"completion\"");
  std::vector<ChatSegment> segments;
  if (row.contains("messages")) {
    auto messages = parse_messages(row["messages"], where, "messages");
    if (std::none_of(messages.begin(), messages.end(), [](const ChatMessage& m) { return m.role == "assistant"; }))
      fail(where + ": no assistant message (nothing to train on)");
    segments = chat.render_segments(messages, false);
  } else if (row.contains("prompt") && row.contains("completion")) {
    const json& p = row["prompt"];
    const json& c = row["completion"];
    if (p.is_string() && c.is_string()) {
      if (eos_text.empty()) fail(where + ": the tokenizer has no EOS token to end a completion with");
      segments = {{p.get<std::string>(), false}, {c.get<std::string>() + eos_text, true}};
    } else if (p.is_array() && c.is_array()) {
      auto messages = parse_messages(p, where, "prompt");
      auto reply = parse_messages(c, where, "completion");
      messages.insert(messages.end(), reply.begin(), reply.end());
      segments = chat.render_segments(messages, false);
    } else {
      fail(where + ": \"prompt\" and \"completion\" must both be strings or both be message lists");
    }
  } else {
    fail(where + ": a row needs \"messages\" or both \"prompt\" and \"completion\"");
  }
  return segments;
}

SftRow tokenize_segments(const std::vector<ChatSegment>& segments, const Tokenizer& tokenizer,
                         const SftDataOptions& options) {
  SftRow row;
  std::string text;
  for (const auto& s : segments) text += s.text;
  EncodeOptions encode;
  // As encode_rendered_chat does for generation: a template that writes BOS itself gets no second one.
  const std::string& bos_text = tokenizer.bos_text();
  encode.add_bos = options.add_bos && !(!bos_text.empty() && text.compare(0, bos_text.size(), bos_text) == 0);
  row.ids = tokenizer.encode(text, encode);
  const std::size_t first = (encode.add_bos && tokenizer.bos_id() && !row.ids.empty() &&
                             row.ids[0] == *tokenizer.bos_id()) ? 1 : 0;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  if (token_spans(row.ids, first, tokenizer, text, spans)) {
    // Byte ranges of the trainable pieces.
    std::vector<std::pair<std::size_t, std::size_t>> trainable;
    std::size_t at = 0;
    for (const auto& s : segments) {
      if (s.trainable) trainable.push_back({at, at + s.text.size()});
      at += s.text.size();
    }
    row.target.assign(row.ids.size(), 0);
    for (std::size_t i = first; i < row.ids.size(); ++i)
      for (const auto& [b, e] : trainable)
        if (spans[i].first < e && spans[i].second > b) row.target[i] = 1;
  } else {
    row.ids.clear();
    if (encode.add_bos && tokenizer.bos_id()) {
      row.ids.push_back(*tokenizer.bos_id());
      row.target.push_back(0);
    }
    for (const auto& s : segments) {
      auto ids = tokenizer.encode(s.text, EncodeOptions{});
      row.ids.insert(row.ids.end(), ids.begin(), ids.end());
      row.target.insert(row.target.end(), ids.size(), s.trainable ? 1 : 0);
    }
  }
  if (options.train_on_prompt)
    for (std::size_t i = 1; i < row.target.size(); ++i) row.target[i] = 1;
  if (!row.target.empty()) row.target[0] = 0;  // nothing predicts the first token
  return row;
}

SftDataset load_sft_dataset(const std::string& path, const Tokenizer& tokenizer, const ChatTemplate& chat,
                            const SftDataOptions& options) {
  std::ifstream in(path);
  if (!in) fail("cannot read dataset " + path);
  SftDataset data;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    SftRow row = tokenize_segments(sft_row_segments(line, chat, tokenizer.eos_text(), where), tokenizer, options);
    row.source = where;
    if (static_cast<int64_t>(row.ids.size()) > options.max_seq_len) {
      row.ids.resize(options.max_seq_len);
      row.target.resize(options.max_seq_len);
      ++data.truncated;
    }
    const int64_t targets = std::accumulate(row.target.begin(), row.target.end(), int64_t{0});
    if (targets == 0)
      fail(where + ": no target tokens" +
           (static_cast<int64_t>(row.ids.size()) == options.max_seq_len ? " left after truncation to max_seq_len" : ""));
    data.target_tokens += targets;
    data.rows.push_back(std::move(row));
  }
  if (data.rows.empty()) fail(path + ": no rows");
  return data;
}

std::string sft_corpus_text(const std::string& path, const ChatTemplate& chat, const std::string& eos_text) {
  std::ifstream in(path);
  if (!in) fail("cannot read dataset " + path);
  std::string corpus, line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    for (const auto& s : sft_row_segments(line, chat, eos_text, path + ":" + std::to_string(number))) corpus += s.text;
    corpus += "\n";
  }
  return corpus;
}

std::vector<SftRow> pack_rows(const std::vector<SftRow>& rows, int64_t max_seq_len) {
  std::vector<SftRow> packed;
  for (const auto& row : rows) {
    if (packed.empty() || packed.back().ids.size() + row.ids.size() > static_cast<std::size_t>(max_seq_len)) {
      packed.push_back({{}, {}, row.source});
    }
    SftRow& p = packed.back();
    p.ids.insert(p.ids.end(), row.ids.begin(), row.ids.end());
    p.target.insert(p.target.end(), row.target.begin(), row.target.end());
  }
  return packed;
}

std::vector<std::vector<int64_t>> plan_epoch(const std::vector<SftRow>& rows, int64_t batch_size, uint64_t seed,
                                             int64_t epoch, bool shuffle) {
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::vector<std::vector<int64_t>> batches;
  // std::mt19937_64 is specified exactly by the standard, so plans agree across platforms;
  // the shuffle itself is written out because std::shuffle's algorithm is not.
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  const auto permute = [&](auto& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
  };
  if (shuffle) permute(order);
  const int64_t window = batch_size * 16;
  if (!shuffle) {
    for (int64_t b = 0; b < n; b += batch_size)
      batches.emplace_back(order.begin() + b, order.begin() + std::min(n, b + batch_size));
    return batches;
  }
  // Rows that open with the same kGroupTokens tokens as another row of the window (one
  // schema's system prompt, in a corpus over several) go into batches together, so a batch
  // shares a long prefix that the loss runs once (causal_lm_loss's share_prefix); the other
  // rows form one group. A group's rows that do not fill a batch wait for the next window
  // instead of filling a batch with another group's rows: a batch of two schemas shares no
  // prefix and cost 3x the time in pretraining. Inside a batch, rows come sorted by length.
  constexpr std::size_t kGroupTokens = 64;
  const auto opening = [&](int64_t i) {
    const auto& ids = rows[i].ids;
    return std::vector<int32_t>(ids.begin(), ids.begin() + std::min(ids.size(), kGroupTokens));
  };
  const auto by_length = [&](int64_t a, int64_t b) { return rows[a].ids.size() < rows[b].ids.size(); };
  // Consecutive batches of `chunk`, each sorted by length.
  const auto add_batches = [&](const std::vector<int64_t>& chunk) {
    for (std::size_t b = 0; b < chunk.size(); b += static_cast<std::size_t>(batch_size)) {
      batches.emplace_back(chunk.begin() + static_cast<std::ptrdiff_t>(b),
                           chunk.begin() + static_cast<std::ptrdiff_t>(std::min(chunk.size(), b + batch_size)));
      std::stable_sort(batches.back().begin(), batches.back().end(), by_length);
    }
  };
  std::map<std::vector<int32_t>, std::vector<int64_t>> waiting;  // group -> rows not yet batched
  for (int64_t start = 0; start < n; start += window) {
    const int64_t end = std::min(n, start + window);
    std::map<std::vector<int32_t>, int64_t> count;
    for (int64_t i = start; i < end; ++i) ++count[opening(order[i])];
    for (int64_t i = start; i < end; ++i) {
      auto key = opening(order[i]);
      if (count[key] == 1 && !waiting.count(key)) key.clear();  // no partner: the mixed group
      waiting[key].push_back(order[i]);
    }
    for (auto& [key, pending] : waiting) {
      // Rows waiting longest go first; the shuffled tail that does not fill a batch waits.
      const std::size_t full = pending.size() / static_cast<std::size_t>(batch_size) * static_cast<std::size_t>(batch_size);
      if (full == 0) continue;
      std::vector<int64_t> chunk(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(full));
      std::stable_sort(chunk.begin(), chunk.end(), by_length);  // length buckets: little padding
      add_batches(chunk);
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(full));
    }
  }
  // The epoch's remainders: fewer than one batch per group, batched group by group.
  std::vector<int64_t> rest;
  for (auto& [key, pending] : waiting) {
    std::stable_sort(pending.begin(), pending.end(), by_length);
    rest.insert(rest.end(), pending.begin(), pending.end());
  }
  add_batches(rest);
  permute(batches);
  return batches;
}

std::string format_sft_row(const SftRow& row, const Tokenizer& tokenizer, bool ansi) {
  std::string out;
  int64_t targets = 0;
  for (std::size_t i = 0; i < row.ids.size();) {
    const bool target = row.target[i];
    std::string text;
    std::size_t j = i;
    for (; j < row.ids.size() && static_cast<bool>(row.target[j]) == target; ++j) text += tokenizer.token_bytes(row.ids[j]);
    if (target) {
      targets += static_cast<int64_t>(j - i);
      out += ansi ? "\033[1;32m" + text + "\033[0m" : "[[" + text + "]]";
    } else {
      out += text;
    }
    i = j;
  }
  return out + "\n-- " + std::to_string(row.ids.size()) + " tokens, " + std::to_string(targets) + " targets (" +
         (ansi ? "highlighted" : "in [[ ]]") + ")\n";
}

SftBatch collate(const std::vector<SftRow>& rows, const std::vector<int64_t>& indices, int32_t pad_id) {
  int64_t T = 0;
  for (auto i : indices) T = std::max<int64_t>(T, rows[i].ids.size());
  const int64_t B = static_cast<int64_t>(indices.size());
  SftBatch batch;
  batch.input_ids = torch::full({B, T}, pad_id, torch::kInt64);
  batch.attention_mask = torch::zeros({B, T}, torch::kInt64);
  batch.labels = torch::full({B, T}, -100, torch::kInt64);
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto mask = batch.attention_mask.accessor<int64_t, 2>();
  auto labels = batch.labels.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const SftRow& row = rows[indices[b]];
    const int64_t n = static_cast<int64_t>(row.ids.size());
    for (int64_t t = 0; t < n; ++t) {
      ids[b][t] = row.ids[t];
      mask[b][t] = 1;
      if (t + 1 < n && row.target[t + 1]) {
        labels[b][t] = row.ids[t + 1];
        ++batch.target_tokens;
      }
    }
    batch.tokens += n;
  }
  return batch;
}

}  // namespace lathe
