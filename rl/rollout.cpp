#include "rl/rollout.h"

#include <algorithm>
#include <chrono>
#include <fstream>

#include "core/error.h"

namespace lathe::rl {

using nlohmann::json;

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

PromptRow encode_prompt_row(const json& row, const ChatTemplate& chat, const Tokenizer& tokenizer,
                            const std::string& where) {
  if (!row.is_object() || !row.contains("prompt") || !row["prompt"].is_array() || row["prompt"].empty())
    fail(where + ": a GRPO row needs \"prompt\": a non-empty list of {role, content} messages");
  std::vector<ChatMessage> messages;
  for (const auto& m : row["prompt"]) {
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      fail(where + ": each prompt message needs string \"role\" and \"content\"");
    messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  PromptRow out;
  out.row = row;
  out.prompt_ids = encode_rendered_chat(tokenizer, chat.render(messages, /*add_generation_prompt=*/true));
  return out;
}

std::vector<PromptRow> load_prompt_rows(const std::string& path, const ChatTemplate& chat, const Tokenizer& tokenizer,
                                        int64_t max_prompt_len) {
  std::ifstream in(path);
  if (!in) fail("data.train: cannot read " + path);
  std::vector<PromptRow> rows;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    json row;
    try {
      row = json::parse(line);
    } catch (const json::exception& e) {
      fail(where + ": not a JSON object (" + std::string(e.what()) + ")");
    }
    rows.push_back(encode_prompt_row(row, chat, tokenizer, where));
    if (static_cast<int64_t>(rows.back().prompt_ids.size()) > max_prompt_len)
      fail(where + ": prompt of " + std::to_string(rows.back().prompt_ids.size()) +
           " tokens exceeds data.max_prompt_len=" + std::to_string(max_prompt_len));
  }
  if (rows.empty()) fail("data.train: " + path + " holds no rows");
  return rows;
}

Rollout collect_rollout(CausalLM& model, const Tokenizer& tokenizer, const std::vector<PromptRow>& prompts,
                        std::vector<WeightedReward>& rewards, const RolloutOptions& options) {
  const CompletionSampler in_process = [&](const std::vector<GenerationRequest>& requests) {
    return generate(model, &tokenizer, requests);
  };
  return collect_rollout(in_process, prompts, rewards, options);
}

Rollout collect_rollout(const CompletionSampler& sample, const std::vector<PromptRow>& prompts,
                        std::vector<WeightedReward>& rewards, const RolloutOptions& options) {
  const int64_t G = options.num_generations;
  Rollout out;
  for (const auto& r : rewards) out.reward_names.push_back(r.name);
  out.per_reward.assign(rewards.size(), {});

  std::vector<GenerationRequest> requests;
  for (size_t b = 0; b < prompts.size(); ++b) {
    GenerationRequest req{prompts[b].prompt_ids, options.sampling};
    req.params.n = static_cast<int>(G);
    req.params.seed = options.seed + b;
    requests.push_back(std::move(req));
  }
  auto start = std::chrono::steady_clock::now();
  GenerationResult generated = sample(requests);
  if (generated.completions.size() != prompts.size())
    fail("rollout: the sampler answered " + std::to_string(generated.completions.size()) + " prompts of " +
         std::to_string(prompts.size()));
  for (size_t b = 0; b < prompts.size(); ++b)
    if (static_cast<int64_t>(generated.completions[b].size()) != G)
      fail("rollout: prompt " + std::to_string(b) + " got " + std::to_string(generated.completions[b].size()) +
           " completions instead of " + std::to_string(G));
  out.generation_seconds = seconds_since(start);
  out.generated_tokens = generated.generated_tokens;

  start = std::chrono::steady_clock::now();
  for (size_t b = 0; b < prompts.size(); ++b) {
    std::vector<std::string> texts;
    for (auto& c : generated.completions[b]) {
      out.prompt_ids.push_back(prompts[b].prompt_ids);
      out.completion_ids.push_back(std::move(c.tokens));
      out.finish_reasons.push_back(c.finish_reason);
      texts.push_back(c.text);
    }
    GroupScores scores = score_group(rewards, prompts[b].row, texts);
    for (size_t k = 0; k < rewards.size(); ++k)
      out.per_reward[k].insert(out.per_reward[k].end(), scores.per_reward[k].begin(), scores.per_reward[k].end());
    out.rewards.insert(out.rewards.end(), scores.total.begin(), scores.total.end());
    for (auto& t : texts) out.completions.push_back(std::move(t));
  }
  out.reward_seconds = seconds_since(start);
  out.advantages = group_advantages(out.rewards, G, options.scale_rewards);
  return out;
}

Rollout gather_rollout(Distributed& dist, const Rollout& local, const std::vector<PromptRow>& step_prompts,
                       const RolloutOptions& options, const std::string& what) {
  if (!dist.active()) return local;
  const json mine{{"completion_ids", local.completion_ids}, {"completions", local.completions},
                  {"finish_reasons", local.finish_reasons}, {"rewards", local.rewards},
                  {"per_reward", local.per_reward}, {"generation_seconds", local.generation_seconds},
                  {"reward_seconds", local.reward_seconds}, {"generated_tokens", local.generated_tokens}};
  Rollout all;
  all.reward_names = local.reward_names;
  all.per_reward.assign(local.reward_names.size(), {});
  for (const std::string& bytes : dist.all_gather_bytes(mine.dump(), what)) {
    const json part = json::parse(bytes);
    const auto append = [](auto& to, const json& from) {
      for (const auto& v : from) to.push_back(v.get<typename std::decay_t<decltype(to)>::value_type>());
    };
    append(all.completion_ids, part["completion_ids"]);
    append(all.completions, part["completions"]);
    append(all.finish_reasons, part["finish_reasons"]);
    append(all.rewards, part["rewards"]);
    for (size_t k = 0; k < all.per_reward.size(); ++k) append(all.per_reward[k], part["per_reward"][k]);
    all.generation_seconds = std::max(all.generation_seconds, part["generation_seconds"].get<double>());
    all.reward_seconds = std::max(all.reward_seconds, part["reward_seconds"].get<double>());
    all.generated_tokens += part["generated_tokens"].get<int64_t>();
  }
  const int64_t G = options.num_generations;
  if (all.size() != static_cast<int64_t>(step_prompts.size()) * G)
    fail(what + ": gathered " + std::to_string(all.size()) + " completions for " + std::to_string(step_prompts.size()) +
         " prompts x " + std::to_string(G));
  for (int64_t i = 0; i < all.size(); ++i) all.prompt_ids.push_back(step_prompts[i / G].prompt_ids);
  all.advantages = group_advantages(all.rewards, G, options.scale_rewards);
  return all;
}

PackedSequences Rollout::pack(int64_t begin, int64_t n, torch::Device device) const {
  std::vector<std::vector<int32_t>> p(prompt_ids.begin() + begin, prompt_ids.begin() + begin + n);
  std::vector<std::vector<int32_t>> c(completion_ids.begin() + begin, completion_ids.begin() + begin + n);
  return pack_sequences(p, c, device);
}

torch::Tensor Rollout::loss_mask(const PackedSequences& packed, int64_t begin, bool mask_truncated) const {
  auto mask = packed.completion_mask.clone();
  if (mask_truncated) {
    for (int64_t i = 0; i < mask.size(0); ++i)
      if (finish_reasons[begin + i] != "stop") mask[i].zero_();
  }
  return mask;
}

json Rollout::metrics() const {
  json m;
  m["reward"] = mean_of(rewards);
  m["reward_std"] = unbiased_std(rewards);
  for (size_t k = 0; k < reward_names.size(); ++k) {
    m["rewards/" + reward_names[k] + "/mean"] = mean_of(per_reward[k]);
    m["rewards/" + reward_names[k] + "/std"] = unbiased_std(per_reward[k]);
  }
  m["frac_reward_zero_std"] = advantages.frac_zero_std;
  m["advantage_std"] = unbiased_std(advantages.values);
  std::vector<double> lengths;
  double truncated = 0;
  for (size_t i = 0; i < completion_ids.size(); ++i) {
    lengths.push_back(static_cast<double>(completion_ids[i].size()));
    truncated += finish_reasons[i] != "stop";
  }
  m["completions/mean_length"] = mean_of(lengths);
  m["completions/min_length"] = lengths.empty() ? 0.0 : *std::min_element(lengths.begin(), lengths.end());
  m["completions/max_length"] = lengths.empty() ? 0.0 : *std::max_element(lengths.begin(), lengths.end());
  m["completions/clipped_ratio"] = lengths.empty() ? 0.0 : truncated / static_cast<double>(lengths.size());
  return m;
}

std::vector<torch::Tensor> rollout_logprobs(CausalLM& model, const Rollout& rollout, int64_t micro_batch,
                                            int64_t chunk_tokens) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (int64_t begin = 0; begin < rollout.size(); begin += micro_batch) {
    const int64_t n = std::min(micro_batch, rollout.size() - begin);
    out.push_back(completion_logprobs(model, rollout.pack(begin, n, model->device()), chunk_tokens).logp.detach());
  }
  return out;
}

}  // namespace lathe::rl
