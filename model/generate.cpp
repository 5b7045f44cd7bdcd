#include "model/generate.h"

#include <algorithm>
#include <memory>

namespace lathe {

namespace {

// Collects one request's samples into the result (and forwards text to the callback).
class CollectSamples : public DecodeListener {
 public:
  CollectSamples(std::vector<Completion>& out, size_t request, const TokenCallback& on_token)
      : out_(out), request_(request), on_token_(on_token) {}
  void on_token(int sample, const std::string& delta, int32_t token, const TokenChoice*) override {
    if (on_token_ && !delta.empty()) on_token_(request_, sample, delta, token);
  }
  void on_finish(int sample, const std::string& delta, Completion&& completion) override {
    out_[sample] = std::move(completion);
    if (on_token_) on_token_(request_, sample, delta, -1);
  }

 private:
  std::vector<Completion>& out_;
  size_t request_;
  const TokenCallback& on_token_;
};

}  // namespace

GenerationResult generate(CausalLM& model, const Tokenizer* tokenizer, const std::vector<GenerationRequest>& requests,
                          const TokenCallback& on_token, const BatchDecoderOptions& options) {
  GenerationResult result;
  result.completions.resize(requests.size());
  if (requests.empty()) return result;
  std::vector<std::shared_ptr<DecodeListener>> listeners;
  for (size_t r = 0; r < requests.size(); ++r) {
    result.completions[r].resize(std::max(requests[r].params.n, 0));
    listeners.push_back(std::make_shared<CollectSamples>(result.completions[r], r, on_token));
  }
  BatchDecoder decoder(model, tokenizer, options);
  decoder.admit(requests, listeners);
  while (!decoder.empty()) decoder.step();
  result.prompt_tokens = decoder.prompt_tokens();
  result.generated_tokens = decoder.generated_tokens();
  result.prefill_seconds = decoder.prefill_seconds();
  result.decode_seconds = decoder.decode_seconds();
  return result;
}

}  // namespace lathe
