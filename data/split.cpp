// Split: group by normalised question, stratify by family, hold out families, check leakage.
#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "data/rng.h"
#include "data/text_io.h"

namespace lathe::data {

namespace {

bool is_punctuation(uint32_t cp) {
  if (cp < 0x80) return std::ispunct(static_cast<int>(cp)) != 0;
  return (cp >= 0x3000 && cp <= 0x303F) ||  // CJK symbols and punctuation: 。、「」【】…
         (cp >= 0x2000 && cp <= 0x206F) ||  // general punctuation: “ ” ‘ ’ … — and spaces
         (cp >= 0xFE30 && cp <= 0xFE4F) ||  // CJK compatibility forms
         cp == 0x00B7 || cp == 0x00A0;      // middle dot, no-break space
}

}  // namespace

std::string normalize_question(const std::string& question) {
  std::vector<uint32_t> out;
  for (uint32_t cp : utf8_decode(question)) {
    if (cp >= 0xFF01 && cp <= 0xFF5E) cp -= 0xFEE0;  // full-width ASCII forms
    if (cp == 0x3000) cp = ' ';
    if (cp < 0x80 && std::isspace(static_cast<int>(cp))) continue;
    if (is_punctuation(cp)) continue;
    if (cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
    out.push_back(cp);
  }
  return utf8_encode(out);
}

DatasetSplits split_examples(const std::vector<Example>& examples, const SplitOptions& options) {
  if (options.val_fraction < 0 || options.test_fraction < 0 || options.val_fraction + options.test_fraction >= 1) {
    fail("split fractions must be >= 0 and leave room for train (val_fraction " +
         std::to_string(options.val_fraction) + ", test_fraction " + std::to_string(options.test_fraction) + ")");
  }
  const std::set<std::string> holdout(options.holdout_families.begin(), options.holdout_families.end());

  // Group by normalised question; a group belongs to its members' smallest family name
  // (deterministic) and is held out if any member's family is.
  std::map<std::string, std::vector<const Example*>> groups;
  for (const Example& e : examples) groups[normalize_question(e.question)].push_back(&e);
  std::map<std::string, std::vector<std::string>> by_family;  // family -> group keys (sorted)
  std::vector<std::string> held_out_groups;
  for (auto& [key, members] : groups) {
    std::sort(members.begin(), members.end(), [](const Example* a, const Example* b) { return a->id < b->id; });
    bool held = false;
    std::string family = members[0]->family;
    for (const Example* m : members) {
      held = held || holdout.count(m->family) > 0;
      family = std::min(family, m->family);
    }
    if (held) held_out_groups.push_back(key);
    else by_family[family].push_back(key);
  }
  std::set<std::string> present_families;
  for (const Example& e : examples) present_families.insert(e.family);
  for (const auto& f : options.holdout_families) {
    if (!present_families.count(f)) log::warn("split.holdout_families: family '" + f + "' has no examples");
  }

  DatasetSplits out;
  auto add_group = [&](const std::string& key, std::vector<Example>& dest) {
    for (const Example* m : groups[key]) dest.push_back(*m);
  };
  for (const auto& key : held_out_groups) add_group(key, out.test);
  for (auto& [family, keys] : by_family) {
    Rng rng(options.seed ^ stable_hash(family));
    rng.shuffle(keys);
    const size_t k = keys.size();
    size_t n_test = static_cast<size_t>(std::llround(k * options.test_fraction));
    size_t n_val = static_cast<size_t>(std::llround(k * options.val_fraction));
    while (n_test + n_val >= k && (n_test + n_val) > 0 && k > 0) {
      // Keep at least one group for training in every family.
      if (n_val >= n_test && n_val > 0) --n_val;
      else --n_test;
    }
    for (size_t i = 0; i < k; ++i) {
      add_group(keys[i], i < n_test ? out.test : i < n_test + n_val ? out.val : out.train);
    }
  }
  auto by_id = [](const Example& a, const Example& b) { return a.id < b.id; };
  std::sort(out.train.begin(), out.train.end(), by_id);
  std::sort(out.val.begin(), out.val.end(), by_id);
  std::sort(out.test.begin(), out.test.end(), by_id);
  check_no_leakage(out, options.holdout_families);
  log::info("split " + std::to_string(examples.size()) + " examples: train " + std::to_string(out.train.size()) +
            ", val " + std::to_string(out.val.size()) + ", test " + std::to_string(out.test.size()) +
            (holdout.empty() ? "" : " (" + std::to_string(holdout.size()) + " families held out)"));
  return out;
}

void check_no_leakage(const DatasetSplits& splits, const std::vector<std::string>& holdout_families) {
  const std::set<std::string> holdout(holdout_families.begin(), holdout_families.end());
  std::map<std::string, std::string> id_split, question_split, question_id;
  const std::pair<const char*, const std::vector<Example>*> parts[] = {
      {"train", &splits.train}, {"val", &splits.val}, {"test", &splits.test}};
  for (const auto& [name, examples] : parts) {
    for (const Example& e : *examples) {
      auto [it, fresh] = id_split.emplace(e.id, name);
      if (!fresh) fail("split leakage: example id '" + e.id + "' is in both " + it->second + " and " + name);
      const std::string key = normalize_question(e.question);
      auto [qt, qfresh] = question_split.emplace(key, name);
      if (!qfresh && qt->second != name) {
        fail("split leakage: question of '" + e.id + "' (" + name + ") duplicates '" + question_id[key] + "' (" +
             qt->second + "): \"" + e.question + "\"");
      }
      question_id.emplace(key, e.id);
      if (holdout.count(e.family) && std::string(name) != "test") {
        fail("split leakage: example '" + e.id + "' of held-out family '" + e.family + "' is in " + name);
      }
    }
  }
}

}  // namespace lathe::data
