#include "model/generate.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>

#include "core/error.h"

namespace lathe {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One sample being decoded.
struct Row {
  size_t request = 0;
  int sample = 0;
  RowSampler sampler;
  std::optional<DecodeStream> stream;
  Completion* out = nullptr;
  int max_new_tokens = 0;
  std::vector<int32_t> stop_ids;
  const SamplingParams* params = nullptr;
  size_t max_stop_len = 0;
  bool done = false;
};

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t row_seed(const SamplingParams& params, int sample) {
  if (!params.seed) return (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  // Each sample of a seeded request gets its own stream, independent of batch makeup.
  return splitmix64(*params.seed ^ splitmix64(static_cast<uint64_t>(sample)));
}

// Appends the token's text and applies stop strings; returns true when a stop string hit.
bool extend_text(Row& row, int32_t token, const TokenCallback& on_token) {
  if (!row.stream) return false;
  Completion& c = *row.out;
  const size_t before = c.text.size();
  c.text += row.stream->push(token);
  bool stopped = false;
  if (!row.params->stop.empty() && c.text.size() > before) {
    const size_t from = before >= row.max_stop_len ? before - row.max_stop_len + 1 : 0;
    size_t best = std::string::npos, best_len = 0;
    for (const auto& s : row.params->stop) {
      if (s.empty()) continue;
      const size_t at = c.text.find(s, from);
      if (at != std::string::npos && at < best) best = at, best_len = s.size();
    }
    if (best != std::string::npos) {
      c.text.resize(row.params->include_stop_str_in_output ? best + best_len : best);
      stopped = true;
    }
  }
  if (on_token && c.text.size() > before) on_token(row.request, row.sample, c.text.substr(before), token);
  return stopped;
}

}  // namespace

GenerationResult generate(CausalLM& model, const Tokenizer* tokenizer, const std::vector<GenerationRequest>& requests,
                          const TokenCallback& on_token) {
  c10::InferenceMode inference;
  GenerationResult result;
  result.completions.resize(requests.size());
  if (requests.empty()) return result;

  const auto device = model->device();
  const int64_t U = static_cast<int64_t>(requests.size());
  int64_t prompt_len = 0, longest_new = 0;
  for (const auto& r : requests) {
    if (r.prompt.empty()) fail("generate: a prompt must contain at least one token");
    if (r.params.n < 1) fail("generate: n must be >= 1");
    if (r.params.max_new_tokens < 0) fail("generate: max_new_tokens must be >= 0");
    prompt_len = std::max<int64_t>(prompt_len, r.prompt.size());
    longest_new = std::max<int64_t>(longest_new, r.params.max_new_tokens);
    result.prompt_tokens += r.prompt.size();
  }
  const int64_t max_positions = model->config().max_position_embeddings;
  if (model->config().rope_scaling.type != "dynamic" && prompt_len > max_positions)
    fail("generate: prompt of " + std::to_string(prompt_len) + " tokens exceeds max_position_embeddings " +
         std::to_string(max_positions));

  // Left-pad the unique prompts: [U, L].
  auto ids = torch::zeros({U, prompt_len}, torch::kInt64);
  auto valid = torch::zeros({U, prompt_len}, torch::kBool);
  for (int64_t u = 0; u < U; ++u) {
    const auto& p = requests[u].prompt;
    const int64_t pad = prompt_len - static_cast<int64_t>(p.size());
    auto row = ids[u];
    for (size_t i = 0; i < p.size(); ++i) row[pad + i] = static_cast<int64_t>(p[i]);
    valid[u].narrow(0, pad, p.size()).fill_(true);
  }
  ids = ids.to(device);
  valid = valid.to(device);

  KVCache cache(model->config(), U, prompt_len + longest_new, model->dtype(), device);
  auto start = Clock::now();
  cache.key_valid().narrow(1, 0, prompt_len).copy_(valid);
  auto positions = positions_from_mask(valid);                                          // [U, L]
  auto logits = model->forward(ids, positions, cache.key_valid().narrow(1, 0, prompt_len), &cache,
                               LogitsFor::Last).squeeze(1);                              // [U, V]
  auto next_position = positions.select(1, prompt_len - 1) + 1;                          // [U]

  // Expand to one row per sample.
  std::vector<Row> rows;
  std::vector<int64_t> source;
  for (size_t r = 0; r < requests.size(); ++r) {
    const auto& params = requests[r].params;
    result.completions[r].resize(params.n);
    for (int s = 0; s < params.n; ++s) {
      Row row{r, s, RowSampler(params, row_seed(params, s))};
      if (tokenizer) {
        // After ordinary text, a leading "▁" is a real space; after BOS or another special
        // token it is the dummy prefix that decoding drops.
        const bool continues = !tokenizer->is_special(requests[r].prompt.back());
        row.stream.emplace(*tokenizer, /*skip_special=*/true, continues);
      }
      row.out = &result.completions[r][s];
      row.max_new_tokens = params.max_new_tokens;
      row.params = &params;
      row.stop_ids = params.stop_token_ids;
      if (tokenizer && !params.ignore_eos)
        row.stop_ids.insert(row.stop_ids.end(), tokenizer->stop_ids().begin(), tokenizer->stop_ids().end());
      for (const auto& s_text : params.stop) row.max_stop_len = std::max(row.max_stop_len, s_text.size());
      rows.push_back(std::move(row));
      source.push_back(static_cast<int64_t>(r));
    }
  }
  auto expand = torch::tensor(source, torch::kInt64);
  if (static_cast<int64_t>(source.size()) != U) {
    cache.select_rows(expand);
    logits = logits.index_select(0, expand.to(device));
    next_position = next_position.index_select(0, expand.to(device));
  }
  result.prefill_seconds = seconds_since(start);
  start = Clock::now();

  std::vector<size_t> active(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) active[i] = i;
  std::vector<int64_t> next_tokens;
  while (!active.empty()) {
    auto host = logits.to(torch::kCPU, torch::kFloat32).contiguous();  // [A, V]
    const int64_t V = host.size(1);
    const float* base = host.data_ptr<float>();
    next_tokens.clear();
    std::vector<int64_t> keep;  // positions in `active` still running after this step
    for (size_t a = 0; a < active.size(); ++a) {
      Row& row = rows[active[a]];
      Completion& c = *row.out;
      if (row.max_new_tokens == 0) {
        row.done = true;
        c.finish_reason = "length";
        continue;
      }
      TokenChoice choice = row.sampler.pick(base + a * V, V);
      c.tokens.push_back(choice.token);
      if (row.params->logprobs >= 0 || row.params->entropy) c.choices.push_back(std::move(choice));
      ++result.generated_tokens;
      const int32_t token = c.tokens.back();
      bool stopped_by_string = false;
      if (std::find(row.stop_ids.begin(), row.stop_ids.end(), token) != row.stop_ids.end()) {
        row.done = true;
        c.finish_reason = "stop";
      } else if (extend_text(row, token, on_token)) {
        row.done = stopped_by_string = true;
        c.finish_reason = "stop";
      } else if (static_cast<int>(c.tokens.size()) >= row.max_new_tokens) {
        row.done = true;
        c.finish_reason = "length";
      }
      if (row.done) {
        // Flush bytes held back for an incomplete character (not after a stop string: the
        // text was cut there).
        std::string rest = row.stream && !stopped_by_string ? row.stream->finish() : std::string();
        c.text += rest;
        if (on_token) on_token(row.request, row.sample, rest, -1);
      } else {
        keep.push_back(static_cast<int64_t>(a));
        next_tokens.push_back(token);
      }
    }
    if (keep.empty()) break;
    if (keep.size() != active.size()) {
      auto keep_index = torch::tensor(keep, torch::kInt64);
      cache.select_rows(keep_index);
      next_position = next_position.index_select(0, keep_index.to(device));
      std::vector<size_t> still;
      for (int64_t k : keep) still.push_back(active[k]);
      active.swap(still);
    }
    const int64_t A = static_cast<int64_t>(active.size());
    const int64_t past = cache.length();
    auto step_ids = torch::tensor(next_tokens, torch::kInt64).view({A, 1}).to(device);
    cache.key_valid().narrow(1, past, 1).fill_(true);
    logits = model->forward(step_ids, next_position.view({A, 1}), cache.key_valid().narrow(1, 0, past + 1), &cache,
                            LogitsFor::Last).squeeze(1);
    next_position = next_position + 1;
  }
  result.decode_seconds = seconds_since(start);
  return result;
}

}  // namespace lathe
