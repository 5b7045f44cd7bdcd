// Continuous batching against independent references: rows of different lengths in one KV
// cache decode exactly like full forwards of each sequence alone (rows joining, leaving and
// being compacted); requests admitted mid-way get the tokens they get alone; per-row LoRA
// adapters in one batch equal each adapter run alone; cancellation ends only its request;
// streamed text with stop strings is never taken back; prompts sharing an opening prefill it
// once and decode as they do alone, and a kept prefix serves later prompts of its adapter.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

#include "core/error.h"
#include "model/batch_decoder.h"
#include "model/bpe_trainer.h"
#include "model/generate.h"
#include "model/lora.h"
#include "model/model_init.h"
#include "tests/support/test_models.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {

CausalLM decoder_model(int64_t vocab = 40, uint64_t seed = 21) {
  return testing::random_test_model(testing::tiny_test_config(vocab), seed, 0.3);
}

torch::Tensor full_logits(CausalLM& m, const std::vector<int64_t>& ids) {  // [V] at the last position
  return m->forward_full(torch::tensor(ids).view({1, -1}))[0][-1];
}

// Prefills right-padded sequences into a fresh cache (the way BatchDecoder does).
KVCache prefill(CausalLM& m, const std::vector<std::vector<int64_t>>& seqs) {
  int64_t L = 0;
  for (auto& s : seqs) L = std::max<int64_t>(L, s.size());
  const int64_t U = seqs.size();
  auto ids = torch::zeros({U, L}, torch::kInt64);
  auto valid = torch::zeros({U, L}, torch::kBool);
  for (int64_t u = 0; u < U; ++u) {
    for (size_t i = 0; i < seqs[u].size(); ++i) ids[u][i] = seqs[u][i];
    valid[u].narrow(0, 0, seqs[u].size()).fill_(true);
  }
  KVCache cache(m->config(), U, L, torch::kFloat32, torch::kCPU);
  cache.key_valid().copy_(valid);
  m->forward(ids, positions_from_mask(valid), cache.key_valid(), &cache, LogitsFor::None);
  return cache;
}

TEST(KVCache, RowsOfDifferentLengthsDecodeLikeFullForwards) {
  torch::NoGradGuard ng;
  auto m = decoder_model();
  torch::manual_seed(4);
  std::vector<std::vector<int64_t>> seqs;
  for (int64_t len : {3, 7, 5}) {
    auto t = torch::randint(0, 40, {len}, torch::kInt64);
    seqs.emplace_back(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + len);
  }
  auto source = prefill(m, seqs);
  KVCache cache(m->config(), 0, 4, torch::kFloat32, torch::kCPU);  // small: it must grow
  cache.append_rows(source, {0, 1, 2}, {3, 7, 5});
  EXPECT_FALSE(cache.aligned());
  EXPECT_EQ(cache.length(), 7);
  auto decode = [&](std::vector<std::vector<int64_t>>& rows) {
    std::vector<int64_t> next;
    for (auto& s : rows) next.push_back((s.back() * 7 + 3) % 40);
    cache.reserve(cache.batch(), cache.length() + 1);
    cache.mark_next_valid();
    const int64_t B = cache.batch();
    auto logits = m->forward(torch::tensor(next).view({B, 1}), cache.positions().view({B, 1}),
                             cache.key_valid().narrow(1, 0, cache.length() + 1), &cache, LogitsFor::Last)
                      .squeeze(1);
    for (int64_t b = 0; b < B; ++b) {
      rows[b].push_back(next[b]);
      EXPECT_LT((logits[b] - full_logits(m, rows[b])).abs().max().item<double>(), 1e-4)
          << "row " << b << " at length " << rows[b].size();
    }
  };
  for (int i = 0; i < 3; ++i) decode(seqs);
  // The middle row leaves: the last moves down in place.
  cache.keep_rows({0, 2});
  seqs.erase(seqs.begin() + 1);
  decode(seqs);
  // A new row joins from its own prefill, into the slot storage the old row used.
  std::vector<std::vector<int64_t>> joining{{5, 9, 1, 1, 30, 2, 8, 8, 4, 13, 17}};
  auto source2 = prefill(m, joining);
  cache.append_rows(source2, {0}, {11});
  seqs.push_back(joining[0]);
  for (int i = 0; i < 3; ++i) decode(seqs);
  EXPECT_EQ(cache.row_lengths(), (std::vector<int64_t>{10, 12, 14}));
}

TEST(FastPaths, PerRowDecodeMaskEqualsGeneralMask) {
  auto key_valid = torch::rand({3, 9}) > 0.4;
  auto at_end = torch::full({3}, 8, torch::kInt64);
  EXPECT_TRUE(torch::equal(decode_allowed_mask(key_valid, at_end), allowed_mask(key_valid, 8, 1)));
  EXPECT_TRUE(torch::equal(decode_allowed_mask(key_valid, at_end), decode_allowed_mask(key_valid)));
  // A shorter row sees its own position and its valid keys, nothing after.
  auto own = torch::tensor({int64_t{2}, int64_t{8}, int64_t{5}});
  auto mask = decode_allowed_mask(key_valid, own).view({3, 9});
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t s = 0; s < 9; ++s)
      EXPECT_EQ(mask[b][s].item<bool>(), s == own[b].item<int64_t>() || key_valid[b][s].item<bool>());
}

class Collect : public DecodeListener {
 public:
  explicit Collect(int n) : out(n), streamed(n) {}
  void on_token(int sample, const std::string& delta, int32_t, const TokenChoice*) override { streamed[sample] += delta; }
  void on_finish(int sample, const std::string& delta, Completion&& c) override {
    streamed[sample] += delta;
    out[sample] = std::move(c);
    ++finished;
  }
  std::vector<Completion> out;
  std::vector<std::string> streamed;
  int finished = 0;
};

SamplingParams greedy(int tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_new_tokens = tokens;
  return p;
}

TEST(BatchDecoder, RequestsJoiningMidwayGetTheirTokensAlone) {
  auto m = decoder_model();
  SamplingParams seeded;
  seeded.temperature = 1.0;
  seeded.top_k = 10;
  seeded.max_new_tokens = 9;
  seeded.n = 2;
  seeded.seed = 77;
  GenerationRequest a{{5, 6, 7}, greedy(12)}, b{{9, 1, 2, 3, 4, 8, 11, 2}, greedy(6)}, c{{13, 4}, seeded};
  auto alone_c = generate(m, nullptr, {c}).completions[0];

  BatchDecoder decoder(m, nullptr);
  auto la = std::make_shared<Collect>(1), lb = std::make_shared<Collect>(1), lc = std::make_shared<Collect>(2);
  decoder.admit({a}, {la});
  for (int i = 0; i < 4; ++i) decoder.step();
  decoder.admit({b, c}, {lb, lc});
  EXPECT_EQ(decoder.rows(), 4);
  while (!decoder.empty()) decoder.step();
  EXPECT_EQ(la->out[0].tokens, testing::greedy_by_full_forwards(m, a.prompt, 12));
  EXPECT_EQ(lb->out[0].tokens, testing::greedy_by_full_forwards(m, b.prompt, 6));
  for (int s = 0; s < 2; ++s) EXPECT_EQ(lc->out[s].tokens, alone_c[s].tokens) << "sample " << s;
  EXPECT_EQ(la->out[0].finish_reason, "length");
  EXPECT_EQ(decoder.generated_tokens(), 12 + 6 + 18);
  EXPECT_EQ(decoder.prompt_tokens(), 3 + 8 + 2);
}

TEST(BatchDecoder, CancelEndsOnlyThatRequest) {
  auto m = decoder_model();
  BatchDecoder decoder(m, nullptr);
  auto la = std::make_shared<Collect>(1), lb = std::make_shared<Collect>(1);
  auto ids = decoder.admit({{{5, 6, 7}, greedy(20)}, {{2, 2}, greedy(10)}}, {la, lb});
  for (int i = 0; i < 3; ++i) decoder.step();
  decoder.cancel(ids[0]);
  while (!decoder.empty()) decoder.step();
  EXPECT_EQ(la->out[0].finish_reason, "abort");
  EXPECT_EQ(la->out[0].tokens.size(), 3u);
  EXPECT_EQ(lb->out[0].tokens, testing::greedy_by_full_forwards(m, {2, 2}, 10));
}

TEST(BatchDecoder, RefusedRequestsChangeNothing) {
  auto m = decoder_model();
  BatchDecoder decoder(m, nullptr, {/*max_rows=*/3, /*max_positions=*/32});
  auto la = std::make_shared<Collect>(1);
  decoder.admit({{{5, 6, 7}, greedy(4)}}, {la});
  SamplingParams two = greedy(4);
  two.n = 3;
  auto lx = std::make_shared<Collect>(3);
  EXPECT_THROW(decoder.admit({{{1, 2}, two}}, {lx}), Error);                 // 1 + 3 rows > 3
  EXPECT_THROW(decoder.admit({{{1, 40}, greedy(4)}}, {la}), Error);          // id outside the vocabulary
  EXPECT_THROW(decoder.admit({{{1, 2}, greedy(31)}}, {la}), Error);          // 2 + 31 > 32 positions
  EXPECT_THROW(decoder.admit({{{1, 2}, greedy(4), "missing"}}, {la}), Error);  // unknown adapter
  EXPECT_EQ(decoder.rows(), 1);
  while (!decoder.empty()) decoder.step();
  EXPECT_EQ(la->out[0].tokens, testing::greedy_by_full_forwards(m, {5, 6, 7}, 4));
}

// B ~ N(0, 0.3) so each adapter moves the output.
void randomize_b(CausalLM& m, const std::string& name, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard g;
  for (auto& p : m->named_parameters(true))
    if (p.key().find(".lora_B." + name + ".") != std::string::npos) p.value().normal_(0.0, 0.3);
}

// Adds adapter `name` (r 4, alpha 8) on `targets`, A from init_seed, B random from b_seed (so
// it changes the output).
void add_random_adapter(CausalLM& m, const std::string& name, const std::vector<std::string>& targets,
                        uint64_t init_seed, uint64_t b_seed) {
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.target_modules = targets;
  add_lora_adapter(m, name, lc, init_seed);
  randomize_b(m, name, b_seed);
}

TEST(RowAdapters, MixedBatchEqualsEachAdapterAlone) {
  auto m = decoder_model();
  add_random_adapter(m, "a", lora_target_names(), 1, 3);
  add_random_adapter(m, "b", {"q_proj", "v_proj", "down_proj"}, 2, 4);
  set_active_adapters(m, {});
  const std::vector<int32_t> p1{5, 6, 7}, p2{9, 1, 2, 3, 4};
  std::map<std::string, std::vector<int32_t>> alone;
  for (const std::string name : {"", "a", "b"}) {
    set_active_adapters(m, name.empty() ? std::vector<std::string>{} : std::vector<std::string>{name});
    alone[name + "1"] = testing::greedy_by_full_forwards(m, p1, 10);
    alone[name + "2"] = testing::greedy_by_full_forwards(m, p2, 10);
  }
  set_active_adapters(m, {});
  EXPECT_NE(alone["a1"], alone["1"]);  // the adapters change the output
  EXPECT_NE(alone["b2"], alone["2"]);
  auto mixed = generate(m, nullptr,
                        {{p1, greedy(10), "a"}, {p1, greedy(10)}, {p2, greedy(10), "b"}, {p2, greedy(10), "a"},
                         {p1, greedy(10), "b"}, {p2, greedy(10)}});
  EXPECT_EQ(mixed.completions[0][0].tokens, alone["a1"]);
  EXPECT_EQ(mixed.completions[1][0].tokens, alone["1"]);
  EXPECT_EQ(mixed.completions[2][0].tokens, alone["b2"]);
  EXPECT_EQ(mixed.completions[3][0].tokens, alone["a2"]);
  EXPECT_EQ(mixed.completions[4][0].tokens, alone["b1"]);
  EXPECT_EQ(mixed.completions[5][0].tokens, alone["2"]);
  // The grouped linear against the formula row by row.
  torch::NoGradGuard ng;
  auto& q = m->model->layer_list[0]->self_attn->q_proj;
  auto x = torch::randn({3, 2, 32});
  auto groups = row_adapter_groups(m, {"b", "", "a"});
  torch::Tensor y;
  {
    RowAdapterScope scope(m, groups);
    y = q->forward(x);
  }
  for (int64_t r = 0; r < 3; ++r) {
    auto want = torch::nn::functional::linear(x[r], q->weight);
    const char* name = r == 0 ? "b" : r == 2 ? "a" : nullptr;
    if (name) {
      const auto& l = q->adapters.at(name);
      want = want + torch::nn::functional::linear(torch::nn::functional::linear(x[r], l.A), l.B) * l.scale;
    }
    EXPECT_LT((y[r] - want).abs().max().item<double>(), 1e-5) << "row " << r;
  }
  EXPECT_FALSE(q->row_adapters);  // the scope ended
}

// The decoder model with a LoRA adapter "a" whose B is random (so it changes the output),
// no adapter active.
CausalLM model_with_adapter_a() {
  auto m = decoder_model();
  add_random_adapter(m, "a", lora_target_names(), 1, 3);
  set_active_adapters(m, {});
  return m;
}

// Prompts that open with the same `length` tokens (step * i + offset mod 40), then a tail.
std::function<std::vector<int32_t>(std::vector<int32_t>)> opening_then(int length, int step, int offset) {
  std::vector<int32_t> opening;
  for (int i = 0; i < length; ++i) opening.push_back((step * i + offset) % 40);
  return [opening](std::vector<int32_t> tail) {
    auto p = opening;
    p.insert(p.end(), tail.begin(), tail.end());
    return p;
  };
}

// Runs the requests through one BatchDecoder to the end.
std::vector<std::vector<Completion>> decode_all(CausalLM& m, const std::vector<GenerationRequest>& requests,
                                                bool share_prefix, int64_t* spared = nullptr) {
  BatchDecoderOptions options;
  options.share_prefix = share_prefix;
  BatchDecoder decoder(m, nullptr, options);
  std::vector<std::shared_ptr<DecodeListener>> listeners;
  std::vector<std::shared_ptr<Collect>> collected;
  for (const auto& r : requests) {
    collected.push_back(std::make_shared<Collect>(r.params.n));
    listeners.push_back(collected.back());
  }
  decoder.admit(requests, listeners);
  while (!decoder.empty()) decoder.step();
  if (spared) *spared = decoder.shared_prefix_tokens();
  std::vector<std::vector<Completion>> out;
  for (auto& c : collected) out.push_back(c->out);
  return out;
}

TEST(BatchDecoder, SharedPromptPrefixPrefillsOnceAndDecodesAsAlone) {
  auto m = model_with_adapter_a();
  const auto with = opening_then(24, 7, 3);  // a 24-token "system prompt", then the tail
  SamplingParams sampled;
  sampled.temperature = 0.9;
  sampled.top_p = 0.95;
  sampled.max_new_tokens = 8;
  sampled.n = 2;
  sampled.seed = 5;
  sampled.logprobs = 0;
  SamplingParams greedy8 = greedy(8);
  greedy8.logprobs = 0;
  // Tails of different lengths; one prompt is the shared part plus a single token, so the
  // prefix stops one short of it.
  for (const std::string adapter : {"", "a"}) {
    const std::vector<GenerationRequest> requests = {{with({5, 6, 7}), greedy8, adapter},
                                                     {with({9}), sampled, adapter},
                                                     {with({1, 2, 3, 4, 8, 11, 2}), greedy8, adapter}};
    int64_t spared = -1, spared_off = -1;
    auto shared = decode_all(m, requests, true, &spared), alone = decode_all(m, requests, false, &spared_off);
    EXPECT_EQ(spared, 2 * 24);  // the 24 shared tokens ran once instead of three times
    EXPECT_EQ(spared_off, 0);
    for (size_t r = 0; r < requests.size(); ++r)
      for (size_t s = 0; s < shared[r].size(); ++s) {
        const auto& a = shared[r][s];
        const auto& b = alone[r][s];
        ASSERT_EQ(a.tokens, b.tokens) << "adapter '" << adapter << "' request " << r << " sample " << s;
        ASSERT_EQ(a.choices.size(), b.choices.size());
        for (size_t t = 0; t < a.choices.size(); ++t)
          EXPECT_NEAR(a.choices[t].logprob, b.choices[t].logprob, 1e-5) << "request " << r << " token " << t;
      }
    // An independent reference: greedy by full forwards of each whole sequence.
    set_active_adapters(m, adapter.empty() ? std::vector<std::string>{} : std::vector<std::string>{adapter});
    EXPECT_EQ(shared[0][0].tokens, testing::greedy_by_full_forwards(m, requests[0].prompt, 8)) << adapter;
    EXPECT_EQ(shared[2][0].tokens, testing::greedy_by_full_forwards(m, requests[2].prompt, 8)) << adapter;
    set_active_adapters(m, {});
  }
}

TEST(BatchDecoder, KeptPrefixServesLaterPromptsOfTheSameAdapter) {
  auto m = model_with_adapter_a();
  const auto with = opening_then(20, 11, 5);
  BatchDecoderOptions options;
  options.keep_prefix = true;
  BatchDecoder decoder(m, nullptr, options);
  auto run = [&](const GenerationRequest& r) {
    auto out = std::make_shared<Collect>(1);
    decoder.admit({r}, {out});
    while (!decoder.empty()) decoder.step();
    return out->out[0].tokens;
  };
  const GenerationRequest first{with({3, 9, 4}), greedy(8)}, second{with({17, 2}), greedy(8)},
      third{with({17, 2, 6, 1}), greedy(8), "a"}, fourth{with({8}), greedy(8), "a"};
  EXPECT_EQ(run(first), testing::greedy_by_full_forwards(m, first.prompt, 8));
  EXPECT_EQ(decoder.shared_prefix_tokens(), 0);  // nothing kept yet
  EXPECT_EQ(run(second), testing::greedy_by_full_forwards(m, second.prompt, 8));
  EXPECT_EQ(decoder.shared_prefix_tokens(), 20);  // the system prompt came from the first
  const auto third_tokens = run(third);           // another adapter: nothing reused
  EXPECT_EQ(decoder.shared_prefix_tokens(), 20);
  const auto fourth_tokens = run(fourth);         // the same adapter again
  EXPECT_EQ(decoder.shared_prefix_tokens(), 40);
  set_active_adapters(m, {"a"});
  EXPECT_EQ(third_tokens, testing::greedy_by_full_forwards(m, third.prompt, 8));
  EXPECT_EQ(fourth_tokens, testing::greedy_by_full_forwards(m, fourth.prompt, 8));
  set_active_adapters(m, {});
}

TEST(BatchDecoder, StreamedTextWithStopStringsIsNeverTakenBack) {
  testing::TempDir dir;
  BpeTrainOptions options;
  options.num_merges = 80;
  std::string corpus;
  for (int i = 0; i < 4; ++i) corpus += "SELECT COUNT(*) FROM cars WHERE brand = '宝马'; 在库 how many cars\n";
  save_bpe_model(train_bpe(corpus, options), dir.path());
  auto tok = load_tokenizer(dir.path());
  auto m = decoder_model(tok->vocab_size(), 5);
  const std::vector<int32_t> prompt = tok->encode("SELECT");
  SamplingParams p = greedy(40);
  p.ignore_eos = true;
  auto free_run = generate(m, tok.get(), {{prompt, p}}).completions[0][0].text;
  ASSERT_GE(free_run.size(), 12u);
  // Stop at a string from the middle of the free run, spanning several tokens.
  p.stop = {free_run.substr(6, 4), "never-there"};
  BatchDecoder decoder(m, tok.get());
  auto l = std::make_shared<Collect>(1);
  decoder.admit({{prompt, p}}, {l});
  while (!decoder.empty()) decoder.step();
  const auto& c = l->out[0];
  EXPECT_EQ(c.finish_reason, "stop");
  ASSERT_TRUE(c.stop_string.has_value());
  EXPECT_EQ(*c.stop_string, p.stop[0]);
  EXPECT_EQ(c.text, free_run.substr(0, free_run.find(p.stop[0])));
  EXPECT_EQ(l->streamed[0], c.text);
}

}  // namespace
}  // namespace lathe
