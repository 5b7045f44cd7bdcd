// The running batch behind every decoding path: `lathe generate` and GRPO rollouts (through
// generate()) and the server's continuous batching. admit() prefills new requests together
// and adds one row per sample; step() samples one token for every row, retires the rows that
// finished and runs one decode forward for the rest. Requests join and leave between steps:
// each row keeps its own KV length (model/kv_cache.h), RNG, stop state and LoRA adapter, so
// rows of different requests and adapters share every forward.
//
// Prompts are right-padded in a prefill (a row's cache then holds exactly its tokens, and its
// RoPE position equals its cache length). Prompts admitted together that share an opening of
// at least kMinSharedPrefix tokens prefill it once (BatchDecoderOptions::share_prefix).
// Streaming departs from plain decoding in one way, as vLLM's: while a request has stop
// strings, the last (longest stop string - 1) bytes are held back from on_token until they
// can no longer begin a stop string, so streamed text never has to be taken back.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/sampler.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

namespace lathe {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams params;
  // LoRA adapter for this request's rows alone; "" = the model as set (its active adapters,
  // none for the server). Requests with different adapters share a batch.
  std::string adapter{};
};

struct Completion {
  std::vector<int32_t> tokens;        // generated ids (a final stop id included)
  std::string text;                   // decoded; stop strings and stop ids not included
  std::string finish_reason;          // "stop" | "length" | "abort" (cancelled)
  std::vector<TokenChoice> choices;   // per token, when logprobs or entropy were asked for
  // What ended a "stop" besides EOS (vLLM's stop_reason): the stop string, or the id from
  // stop_token_ids. Both empty when the tokenizer's own stop ids ended it.
  std::optional<std::string> stop_string{};
  std::optional<int32_t> stop_token{};
};

// Events of one request, called on the thread that runs admit()/step().
class DecodeListener {
 public:
  virtual ~DecodeListener() = default;
  // A token of `sample`; `delta` is the text that became final with it (possibly empty).
  virtual void on_token(int sample, const std::string& delta, int32_t token, const TokenChoice* choice) = 0;
  // `sample` finished; `delta` is its text that on_token has not delivered yet.
  virtual void on_finish(int sample, const std::string& delta, Completion&& completion) = 0;
};

struct BatchDecoderOptions {
  int64_t max_rows = 0;       // rows decoded together at most (0 = no limit)
  int64_t max_positions = 0;  // prompt + max_new_tokens per request at most (0 = no limit)
  // Prompts admitted together that begin with the same tokens (a system prompt), for the
  // same adapter, prefill that prefix once and copy its keys and values to every row.
  bool share_prefix = true;
  // Keep the last shared opening's keys and values between admits and reuse them for later
  // prompts that begin the same way, for the same adapter (the server: every request of an
  // agent repeats its system prompt). Assumes the base weights do not change while the
  // decoder lives; adapters are told apart by name, and the server names every load anew.
  bool keep_prefix = false;
};

class BatchDecoder {
 public:
  using RequestId = uint64_t;

  // tokenizer may be null (benchmarks): then there is no text and no stop strings.
  BatchDecoder(CausalLM& model, const Tokenizer* tokenizer, BatchDecoderOptions options = {});
  ~BatchDecoder();
  BatchDecoder(const BatchDecoder&) = delete;
  BatchDecoder& operator=(const BatchDecoder&) = delete;

  // Validates every request, prefills them together and adds their rows (n per request).
  // Throws lathe::Error, changing nothing, when a request is invalid or the rows do not fit.
  std::vector<RequestId> admit(const std::vector<GenerationRequest>& requests,
                               const std::vector<std::shared_ptr<DecodeListener>>& listeners);
  // One token for every row (the first one of a new row comes from its prefill).
  void step();
  // The request's rows finish at the next step with finish_reason "abort".
  void cancel(RequestId id);

  int64_t rows() const { return static_cast<int64_t>(rows_.size()); }
  int64_t free_rows() const;  // rows admit() can still add (a large number when unlimited)
  bool empty() const { return rows_.empty(); }
  std::set<std::string> adapters_in_use() const;  // adapters named by the rows in the batch
  int64_t cached_positions() const;               // KV positions the rows hold, summed

  // Totals since construction.
  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t generated_tokens() const { return generated_tokens_; }
  double prefill_seconds() const { return prefill_seconds_; }
  double decode_seconds() const { return decode_seconds_; }
  // Prompt tokens whose keys and values came from a shared prefix instead of their own
  // prefill: (prompts - 1) × its length per admit, plus what the kept prefix supplied.
  int64_t shared_prefix_tokens() const { return shared_prefix_tokens_; }

 private:
  struct Request;
  struct Row;

  void finish(Row& row, const std::string& reason, bool flush);
  std::string take_final_text(Row& row, bool finished);
  std::shared_ptr<const RowAdapterGroups> adapter_groups();
  void grow_cache();

  CausalLM& model_;
  const Tokenizer* tokenizer_;
  BatchDecoderOptions options_;
  RequestId next_id_ = 1;
  std::map<RequestId, std::weak_ptr<Request>> requests_;
  std::vector<std::unique_ptr<Row>> rows_;  // aligned with the cache rows and logits_
  std::unique_ptr<KVCache> cache_;         // null while the batch is empty
  std::unique_ptr<KVCache> kept_prefix_;   // one row: keep_prefix's last shared opening
  std::vector<int32_t> kept_prefix_tokens_;
  std::string kept_prefix_adapter_;
  torch::Tensor logits_;                   // [rows, V] f32: each row's next-token logits
  std::shared_ptr<const RowAdapterGroups> groups_;  // per-row adapters for the current rows
  bool groups_stale_ = true;
  int64_t prompt_tokens_ = 0, generated_tokens_ = 0, shared_prefix_tokens_ = 0;
  double prefill_seconds_ = 0, decode_seconds_ = 0;
};

}  // namespace lathe
