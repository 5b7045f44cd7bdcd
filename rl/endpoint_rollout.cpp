#include "rl/endpoint_rollout.h"

#include <chrono>
#include <filesystem>
#include <future>
#include <optional>

#include "core/error.h"
#include "core/log.h"

namespace lathe::rl {
namespace fs = std::filesystem;

namespace {
OpenAiClientOptions client_options(const EndpointRolloutOptions& o) {
  OpenAiClientOptions c;
  c.endpoint = o.endpoint;
  c.api_key = o.api_key;
  c.read_timeout_seconds = o.timeout_seconds;
  return c;
}
}  // namespace

EndpointSampler::EndpointSampler(EndpointRolloutOptions options, const std::string& publish_dir)
    : options_(std::move(options)), client_(client_options(options_)), publish_dir_(fs::absolute(publish_dir).string()) {
  if (options_.endpoint.empty()) fail("rollout.endpoint: empty (give the server's base URL, e.g. http://127.0.0.1:8000)");
  if (options_.adapter_name.empty()) fail("rollout.adapter_name: empty");
  fs::create_directories(publish_dir_);
}

void EndpointSampler::publish(CausalLM& model, const std::string& adapter, const LoraConfig& config, int64_t version) {
  const std::string dir = publish_dir_ + "/v" + std::to_string(version);
  std::error_code ignored;
  fs::remove_all(dir, ignored);  // a half-written folder from a killed run
  fs::create_directories(dir);
  save_peft_adapter(model, adapter, config, dir);
  // The first publication of a run may still replace an adapter of the same name that a
  // previous (killed) run left on the server, hence load_inplace every time.
  client_.load_lora_adapter(options_.adapter_name, dir, /*load_inplace=*/true);
  if (!published_.empty() && published_ != dir) fs::remove_all(published_, ignored);
  published_ = dir;
}

GenerationResult EndpointSampler::sample(const std::vector<GenerationRequest>& requests, int64_t vocab_size) const {
  GenerationResult result;
  result.completions.resize(requests.size());
  const std::string where = "POST " + client_.url("/v1/completions");
  // One request per prompt, each with its own seed (as in-process sampling seeds prompt b),
  // all in flight at once so the server batches them.
  std::vector<std::future<CompletionResponse>> replies;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& r : requests) {
    CompletionRequest request;
    request.model = options_.adapter_name;
    request.prompt_token_ids = {std::vector<int64_t>(r.prompt.begin(), r.prompt.end())};
    request.max_tokens = r.params.max_new_tokens;
    request.temperature = r.params.temperature;
    request.top_p = r.params.top_p;
    request.top_k = r.params.top_k > 0 ? r.params.top_k : -1;
    request.n = r.params.n;
    request.stop = r.params.stop;
    request.seed = r.params.seed;
    request.extra["return_token_ids"] = true;
    if (!r.params.stop_token_ids.empty()) request.extra["stop_token_ids"] = r.params.stop_token_ids;
    if (r.params.ignore_eos) request.extra["ignore_eos"] = true;
    result.prompt_tokens += static_cast<int64_t>(r.prompt.size());
    replies.push_back(std::async(std::launch::async, [this, request] { return client_.complete(request); }));
  }
  std::vector<CompletionResponse> responses;
  std::optional<Error> first_error;
  for (auto& reply : replies) {  // wait for all before throwing: no thread outlives the call
    try {
      responses.push_back(reply.get());
    } catch (const Error& e) {
      if (!first_error) first_error = e;
    }
  }
  if (first_error) throw *first_error;
  result.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  for (size_t p = 0; p < responses.size(); ++p) {
    for (const CompletionChoice& choice : responses[p].choices) {
      if (choice.token_ids.empty() && !choice.text.empty())
        fail(where + ": a choice came without token_ids; GRPO rollouts need a server that honours "
             "return_token_ids (lathe serve, or a vLLM recent enough to have it)");
      Completion c;
      c.text = choice.text;
      c.finish_reason = choice.finish_reason;
      for (int64_t id : choice.token_ids) {
        if (id < 0 || id >= vocab_size)
          fail(where + ": a choice has token id " + std::to_string(id) + " outside the model's vocabulary of " +
               std::to_string(vocab_size) + " (is the server running the same base model?)");
        c.tokens.push_back(static_cast<int32_t>(id));
      }
      result.generated_tokens += static_cast<int64_t>(c.tokens.size());
      result.completions[p].push_back(std::move(c));
    }
  }
  return result;
}

}  // namespace lathe::rl
