#include "model/batch_decoder.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <random>

#include "core/error.h"
#include "model/lora.h"

namespace lathe {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

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

bool is_utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Tokens every prompt begins with, at most the shortest prompt's length - 1 (each row's last
// prompt token runs in the rows' pass, which gives its next-token logits).
int64_t common_prompt_prefix(const std::vector<GenerationRequest>& requests) {
  size_t shortest = requests[0].prompt.size();
  for (const auto& r : requests) shortest = std::min(shortest, r.prompt.size());
  const auto& first = requests[0].prompt;
  size_t n = shortest - 1;
  for (const auto& r : requests)
    n = std::mismatch(first.begin(), first.begin() + n, r.prompt.begin()).first - first.begin();
  return static_cast<int64_t>(n);
}

}  // namespace

struct BatchDecoder::Request {
  RequestId id = 0;
  SamplingParams params;
  std::string adapter;
  std::shared_ptr<DecodeListener> listener;
  std::vector<int32_t> stop_ids;  // the request's stop_token_ids, then the tokenizer's
  size_t max_stop_len = 0;        // longest stop string, bytes
  bool cancelled = false;
};

struct BatchDecoder::Row {
  Row(std::shared_ptr<Request> r, int s, uint64_t seed) : request(std::move(r)), sample(s), sampler(request->params, seed) {}
  std::shared_ptr<Request> request;
  int sample = 0;
  RowSampler sampler;
  std::optional<DecodeStream> stream;
  Completion out;
  size_t delivered = 0;  // bytes of out.text already passed to the listener
};

BatchDecoder::BatchDecoder(CausalLM& model, const Tokenizer* tokenizer, BatchDecoderOptions options)
    : model_(model), tokenizer_(tokenizer), options_(options) {}

BatchDecoder::~BatchDecoder() = default;

int64_t BatchDecoder::free_rows() const {
  if (options_.max_rows <= 0) return std::numeric_limits<int32_t>::max();
  return std::max<int64_t>(0, options_.max_rows - rows());
}

std::set<std::string> BatchDecoder::adapters_in_use() const {
  std::set<std::string> names;
  for (const auto& row : rows_)
    if (!row->request->adapter.empty()) names.insert(row->request->adapter);
  return names;
}

int64_t BatchDecoder::cached_positions() const {
  if (!cache_) return 0;
  int64_t total = 0;
  for (int64_t l : cache_->row_lengths()) total += l;
  return total;
}

void BatchDecoder::cancel(RequestId id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  if (auto request = it->second.lock()) request->cancelled = true;
}

std::vector<BatchDecoder::RequestId> BatchDecoder::admit(
    const std::vector<GenerationRequest>& requests, const std::vector<std::shared_ptr<DecodeListener>>& listeners) {
  c10::InferenceMode inference;
  if (requests.size() != listeners.size()) fail("BatchDecoder::admit: one listener per request");
  if (requests.empty()) return {};
  const ModelConfig& config = model_->config();
  const int64_t max_positions = config.max_position_embeddings;
  int64_t new_rows = 0, longest = 0;
  std::vector<std::string> adapter_per_prompt;
  for (const auto& r : requests) {
    if (r.prompt.empty()) fail("generate: a prompt must contain at least one token");
    if (r.params.n < 1) fail("generate: n must be >= 1");
    if (r.params.max_new_tokens < 0) fail("generate: max_new_tokens must be >= 0");
    for (int32_t id : r.prompt)
      if (id < 0 || id >= config.vocab_size)
        fail("generate: token id " + std::to_string(id) + " is outside the vocabulary (0.." +
             std::to_string(config.vocab_size - 1) + ")");
    const int64_t len = static_cast<int64_t>(r.prompt.size());
    if (config.rope_scaling.type != "dynamic" && len > max_positions)
      fail("generate: prompt of " + std::to_string(len) + " tokens exceeds max_position_embeddings " +
           std::to_string(max_positions));
    if (options_.max_positions > 0 && len + r.params.max_new_tokens > options_.max_positions)
      fail("generate: prompt of " + std::to_string(len) + " tokens plus max_new_tokens " +
           std::to_string(r.params.max_new_tokens) + " exceeds " + std::to_string(options_.max_positions) + " positions");
    new_rows += r.params.n;
    longest = std::max(longest, len);
    adapter_per_prompt.push_back(r.adapter);
  }
  if (new_rows > free_rows())
    fail("generate: " + std::to_string(new_rows) + " rows do not fit; " + std::to_string(free_rows()) + " of " +
         std::to_string(options_.max_rows) + " are free");
  const bool any_adapter = std::any_of(adapter_per_prompt.begin(), adapter_per_prompt.end(),
                                       [](const std::string& a) { return !a.empty(); });
  // Unknown adapters throw here, before anything changes.
  auto prefill_groups = any_adapter ? row_adapter_groups(model_, adapter_per_prompt) : nullptr;

  auto start = Clock::now();
  const auto device = model_->device();
  const int64_t U = static_cast<int64_t>(requests.size());
  // Right-padded prompts [U, L]: a row's keys then sit at [0, len), its own positions.
  auto ids = torch::zeros({U, longest}, torch::kInt64);
  auto valid = torch::zeros({U, longest}, torch::kBool);
  std::vector<int64_t> last_index(U);
  for (int64_t u = 0; u < U; ++u) {
    const auto& p = requests[u].prompt;
    auto row = ids[u];
    for (size_t i = 0; i < p.size(); ++i) row[i] = static_cast<int64_t>(p[i]);
    valid[u].narrow(0, 0, p.size()).fill_(true);
    last_index[u] = static_cast<int64_t>(p.size()) - 1;
  }
  ids = ids.to(device);
  valid = valid.to(device);
  // A shared opening of Q tokens runs once, as one row (or comes from the opening a previous
  // admit kept). Not across adapters (each sees other keys), nor with dynamic RoPE (its tables
  // follow the longest position of each pass).
  const std::string& adapter = adapter_per_prompt[0];
  const bool one_adapter = std::all_of(adapter_per_prompt.begin(), adapter_per_prompt.end(),
                                       [&](const std::string& a) { return a == adapter; });
  int64_t Q = options_.share_prefix && (U > 1 || options_.keep_prefix) && one_adapter &&
                      config.rope_scaling.type != "dynamic"
                  ? common_prompt_prefix(requests)
                  : 0;
  if (Q < kMinSharedPrefix) Q = 0;
  const auto long_options = torch::TensorOptions().dtype(torch::kInt64).device(device);
  KVCache prefill(config, Q > 0 ? 0 : U, longest, model_->dtype(), device);
  if (Q > 0) {
    const auto& opening = requests[0].prompt;
    int64_t R = 0;  // positions the kept opening supplies
    if (kept_prefix_ && kept_prefix_adapter_ == adapter) {
      const auto n = std::min<size_t>(static_cast<size_t>(Q), kept_prefix_tokens_.size());
      R = std::mismatch(opening.begin(), opening.begin() + n, kept_prefix_tokens_.begin()).first - opening.begin();
    }
    if (R < kMinSharedPrefix) R = 0;
    auto prefix = std::make_unique<KVCache>(config, R > 0 ? 0 : 1, Q, model_->dtype(), device);
    if (R > 0) prefix->append_rows(*kept_prefix_, {0}, {R});
    if (Q > R) {
      auto key_valid = prefix->key_valid().narrow(1, 0, Q);
      key_valid.fill_(true);
      std::optional<RowAdapterScope> scope;
      if (prefill_groups) scope.emplace(model_, row_adapter_groups(model_, {adapter}));
      model_->forward(ids.narrow(0, 0, 1).narrow(1, R, Q - R), torch::arange(R, Q, long_options).unsqueeze(0),
                      key_valid, prefix.get(), LogitsFor::None);
    }
    prefill.append_rows(*prefix, std::vector<int64_t>(U, 0), std::vector<int64_t>(U, Q));
    shared_prefix_tokens_ += Q * (U - 1) + R;
    if (options_.keep_prefix) {
      kept_prefix_ = std::move(prefix);
      kept_prefix_tokens_.assign(opening.begin(), opening.begin() + Q);
      kept_prefix_adapter_ = adapter;
    }
  }
  prefill.key_valid().copy_(valid);
  const int64_t T = longest - Q;  // positions of this pass; the rows' own RoPE positions follow Q
  torch::Tensor logits;  // [U, V]
  {
    std::optional<RowAdapterScope> scope;
    if (prefill_groups) scope.emplace(model_, prefill_groups);
    auto rest_valid = valid.narrow(1, Q, T);
    auto hidden = model_->forward(ids.narrow(1, Q, T), positions_from_mask(rest_valid) + Q, prefill.key_valid(),
                                  &prefill, LogitsFor::None);  // [U, T, C]
    auto rows = torch::arange(U, long_options);
    auto last = hidden.index({rows, torch::tensor(last_index, torch::kInt64).to(device) - Q});  // [U, C]
    logits = model_->project_logits(last);
  }

  // One row per sample: copy the prompt's cache row n times.
  std::vector<int64_t> source, lengths;
  std::vector<RequestId> ids_out;
  std::vector<std::unique_ptr<Row>> added;
  for (int64_t u = 0; u < U; ++u) {
    const auto& r = requests[u];
    auto request = std::make_shared<Request>();
    request->id = next_id_++;
    request->params = r.params;
    request->adapter = r.adapter;
    request->listener = listeners[u];
    request->stop_ids = r.params.stop_token_ids;
    if (tokenizer_ && !r.params.ignore_eos)
      request->stop_ids.insert(request->stop_ids.end(), tokenizer_->stop_ids().begin(), tokenizer_->stop_ids().end());
    for (const auto& s : r.params.stop) request->max_stop_len = std::max(request->max_stop_len, s.size());
    requests_[request->id] = request;
    ids_out.push_back(request->id);
    prompt_tokens_ += static_cast<int64_t>(r.prompt.size());
    for (int s = 0; s < r.params.n; ++s) {
      auto row = std::make_unique<Row>(request, s, row_seed(r.params, s));
      if (tokenizer_) {
        // After ordinary text, a leading "▁" is a real space; after BOS or another special
        // token it is the dummy prefix that decoding drops.
        const bool continues = !tokenizer_->is_special(r.prompt.back());
        row->stream.emplace(*tokenizer_, /*skip_special=*/true, continues);
      }
      added.push_back(std::move(row));
      source.push_back(u);
      lengths.push_back(static_cast<int64_t>(r.prompt.size()));
    }
  }
  if (!cache_) cache_ = std::make_unique<KVCache>(config, 0, longest + 1, model_->dtype(), device);
  cache_->append_rows(prefill, source, lengths);
  auto expanded = logits.index_select(0, torch::tensor(source, torch::kInt64).to(device));
  logits_ = logits_.defined() ? torch::cat({logits_, expanded}, 0) : expanded;
  for (auto& row : added) rows_.push_back(std::move(row));
  groups_stale_ = true;
  prefill_seconds_ += seconds_since(start);
  return ids_out;
}

std::string BatchDecoder::take_final_text(Row& row, bool finished) {
  // Text that can no longer change: all of it once the row is done; otherwise all but the
  // bytes that could begin a stop string, cut back to a character boundary.
  const std::string& text = row.out.text;
  size_t visible = text.size();
  const size_t hold = row.request->max_stop_len > 0 ? row.request->max_stop_len - 1 : 0;
  if (!finished) {
    visible = text.size() > hold ? text.size() - hold : 0;
    while (visible > row.delivered && visible < text.size() && is_utf8_continuation(text[visible])) --visible;
  }
  if (visible <= row.delivered) return {};
  std::string delta = text.substr(row.delivered, visible - row.delivered);
  row.delivered = visible;
  return delta;
}

void BatchDecoder::finish(Row& row, const std::string& reason, bool flush) {
  // Flush bytes held back for an incomplete character (not after a stop string: the text
  // was cut there).
  if (flush && row.stream) row.out.text += row.stream->finish();
  row.out.finish_reason = reason;
  std::string delta = take_final_text(row, /*finished=*/true);
  row.request->listener->on_finish(row.sample, delta, std::move(row.out));
}

std::shared_ptr<const RowAdapterGroups> BatchDecoder::adapter_groups() {
  if (groups_stale_) {
    std::vector<std::string> per_row;
    bool any = false;
    for (const auto& row : rows_) {
      per_row.push_back(row->request->adapter);
      any = any || !row->request->adapter.empty();
    }
    groups_ = any ? row_adapter_groups(model_, per_row) : nullptr;
    groups_stale_ = false;
  }
  return groups_;
}

void BatchDecoder::grow_cache() {
  // Room for the next position, doubling (amortised copies) but never past what the rows
  // can still use.
  const int64_t needed = cache_->length() + 1;
  if (needed <= cache_->capacity()) return;
  int64_t bound = needed;
  const auto& lengths = cache_->row_lengths();
  for (size_t i = 0; i < rows_.size(); ++i) {
    const Row& row = *rows_[i];
    const int64_t remaining = row.request->params.max_new_tokens - static_cast<int64_t>(row.out.tokens.size());
    bound = std::max(bound, lengths[i] + std::max<int64_t>(remaining, 1));
  }
  cache_->reserve(cache_->batch(), std::max(needed, std::min(2 * cache_->capacity(), bound)));
}

void BatchDecoder::step() {
  if (rows_.empty()) return;
  c10::InferenceMode inference;
  auto start = Clock::now();
  auto host = logits_.to(torch::kCPU, torch::kFloat32).contiguous();  // [A, V]
  const int64_t V = host.size(1);
  const float* base = host.data_ptr<float>();
  std::vector<int64_t> keep;        // rows still running after this step
  std::vector<int64_t> next_tokens; // their sampled tokens
  for (size_t a = 0; a < rows_.size(); ++a) {
    Row& row = *rows_[a];
    Request& request = *row.request;
    Completion& c = row.out;
    if (request.cancelled) {
      finish(row, "abort", true);
      continue;
    }
    if (request.params.max_new_tokens == 0) {
      finish(row, "length", true);
      continue;
    }
    TokenChoice choice = row.sampler.pick(base + a * V, V);
    const int32_t token = choice.token;
    c.tokens.push_back(token);
    ++generated_tokens_;
    bool stop_id = std::find(request.stop_ids.begin(), request.stop_ids.end(), token) != request.stop_ids.end();
    bool stop_string = false;
    if (!stop_id && row.stream) {
      const size_t before = c.text.size();
      c.text += row.stream->push(token);
      if (!request.params.stop.empty() && c.text.size() > before) {
        // A match must end in the new text, so it starts at most max_stop_len - 1 bytes earlier.
        const size_t from = before >= request.max_stop_len ? before - request.max_stop_len + 1 : 0;
        size_t best = std::string::npos, best_len = 0;
        const std::string* matched = nullptr;
        for (const auto& s : request.params.stop) {
          if (s.empty()) continue;
          const size_t at = c.text.find(s, from);
          if (at != std::string::npos && at < best) best = at, best_len = s.size(), matched = &s;
        }
        if (matched) {
          c.text.resize(request.params.include_stop_str_in_output ? best + best_len : best);
          c.stop_string = *matched;
          stop_string = true;
        }
      }
    }
    if (stop_id) {
      const auto& user = request.params.stop_token_ids;
      if (std::find(user.begin(), user.end(), token) != user.end()) c.stop_token = token;
    }
    const bool done = stop_id || stop_string || static_cast<int>(c.tokens.size()) >= request.params.max_new_tokens;
    const TokenChoice* reported = request.params.logprobs >= 0 || request.params.entropy ? &choice : nullptr;
    request.listener->on_token(row.sample, done ? std::string() : take_final_text(row, false), token, reported);
    if (reported) c.choices.push_back(std::move(choice));
    if (done) {
      finish(row, stop_id || stop_string ? "stop" : "length", /*flush=*/!stop_string);
    } else {
      keep.push_back(static_cast<int64_t>(a));
      next_tokens.push_back(token);
    }
  }
  if (keep.empty()) {
    rows_.clear();
    requests_.clear();
    cache_.reset();  // frees the KV memory while idle
    logits_ = torch::Tensor();
    groups_stale_ = true;
    decode_seconds_ += seconds_since(start);
    return;
  }
  if (keep.size() != rows_.size()) {
    cache_->keep_rows(keep);
    std::vector<std::unique_ptr<Row>> still;
    for (int64_t k : keep) still.push_back(std::move(rows_[k]));
    rows_.swap(still);
    groups_stale_ = true;
  }
  for (auto it = requests_.begin(); it != requests_.end();) it = it->second.expired() ? requests_.erase(it) : ++it;

  grow_cache();
  const int64_t A = rows();
  const auto device = model_->device();
  cache_->mark_next_valid();
  // A row's next RoPE position is its cache length (prompts are not padded in the cache).
  auto positions = cache_->positions().view({A, 1});
  auto step_ids = torch::tensor(next_tokens, torch::kInt64).view({A, 1}).to(device);
  auto key_valid = cache_->key_valid().narrow(1, 0, cache_->length() + 1);
  auto groups = adapter_groups();
  std::optional<RowAdapterScope> scope;
  if (groups) scope.emplace(model_, groups);
  logits_ = model_->forward(step_ids, positions, key_valid, cache_.get(), LogitsFor::Last).squeeze(1);
  decode_seconds_ += seconds_since(start);
}

}  // namespace lathe
