// Split: disjoint, stratified, deterministic, family hold-out, duplicates never cross, and the
// leakage check fires on crafted leaks.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/error.h"
#include "data/split.h"

namespace lathe::data {
namespace {

std::vector<Example> make_examples(int families, int per_family) {
  std::vector<Example> out;
  for (int f = 0; f < families; ++f) {
    for (int i = 0; i < per_family; ++i) {
      const std::string family = "fam" + std::to_string(f);
      out.push_back({family + "-" + std::to_string(i), family, i % 2 ? "en" : "zh",
                     "question " + std::to_string(f) + " number " + std::to_string(i), "SELECT 1", nullptr});
    }
  }
  return out;
}

std::set<std::string> ids(const std::vector<Example>& v) {
  std::set<std::string> s;
  for (const auto& e : v) s.insert(e.id);
  return s;
}

TEST(Split, DisjointCompleteStratifiedDeterministic) {
  const auto examples = make_examples(5, 40);
  SplitOptions options;
  options.seed = 3;
  const DatasetSplits s = split_examples(examples, options);
  EXPECT_EQ(s.train.size() + s.val.size() + s.test.size(), examples.size());
  std::set<std::string> all = ids(s.train);
  for (const auto& id : ids(s.val)) EXPECT_TRUE(all.insert(id).second);
  for (const auto& id : ids(s.test)) EXPECT_TRUE(all.insert(id).second);
  // Stratified: every family contributes 10% (4 of 40) to val and to test.
  std::map<std::string, int> val_per_family, test_per_family;
  for (const auto& e : s.val) ++val_per_family[e.family];
  for (const auto& e : s.test) ++test_per_family[e.family];
  for (int f = 0; f < 5; ++f) {
    EXPECT_EQ(val_per_family["fam" + std::to_string(f)], 4);
    EXPECT_EQ(test_per_family["fam" + std::to_string(f)], 4);
  }
  // Deterministic, also when the input order changes.
  auto reversed = examples;
  std::reverse(reversed.begin(), reversed.end());
  const DatasetSplits again = split_examples(reversed, options);
  EXPECT_EQ(ids(again.train), ids(s.train));
  EXPECT_EQ(ids(again.val), ids(s.val));
  options.seed = 4;
  EXPECT_NE(ids(split_examples(examples, options).val), ids(s.val));
}

TEST(Split, FamilyHoldoutGoesWhollyToTest) {
  const auto examples = make_examples(4, 20);
  SplitOptions options;
  options.holdout_families = {"fam2"};
  const DatasetSplits s = split_examples(examples, options);
  int held_in_test = 0;
  for (const auto& e : s.train) EXPECT_NE(e.family, "fam2");
  for (const auto& e : s.val) EXPECT_NE(e.family, "fam2");
  for (const auto& e : s.test) held_in_test += e.family == "fam2";
  EXPECT_EQ(held_in_test, 20);
}

TEST(Split, NormalisedDuplicatesNeverCross) {
  EXPECT_EQ(normalize_question("How many BMW cars?"), normalize_question("how many bmw cars"));
  EXPECT_EQ(normalize_question("宝马有几辆？"), normalize_question("宝马 有几辆?"));
  EXPECT_EQ(normalize_question("ＢＭＷ　有几辆！"), normalize_question("bmw有几辆"));
  EXPECT_EQ(normalize_question("“宝马”，几辆。"), "宝马几辆");
  EXPECT_NE(normalize_question("宝马有几辆"), normalize_question("奔驰有几辆"));

  std::vector<Example> examples = make_examples(2, 30);
  // Variants of one question spread over ids and families.
  const char* variants[] = {"宝马有几辆？", "宝马 有几辆?", "ＢＭＷ有几辆", "bmw有几辆!", "宝马有几辆？"};
  for (int i = 0; i < 5; ++i) {
    examples.push_back({"dup-" + std::to_string(i), i % 2 ? "fam0" : "fam1", "zh", variants[i], "SELECT 1", nullptr});
  }
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SplitOptions options;
    options.seed = seed;
    const DatasetSplits s = split_examples(examples, options);  // runs check_no_leakage too
    std::set<std::string> homes;
    for (const auto& [name, part] : {std::make_pair("train", &s.train), std::make_pair("val", &s.val),
                                     std::make_pair("test", &s.test)}) {
      for (const auto& e : *part) {
        if (e.id.rfind("dup-", 0) == 0) homes.insert(normalize_question(e.question) + "@" + name);
      }
    }
    EXPECT_EQ(homes.size(), 2u) << "seed " << seed;  // two normalised groups, one split each
  }
}

TEST(Split, LeakageCheckFires) {
  DatasetSplits leak;
  leak.train = {{"a", "f", "en", "How many BMWs?", "SELECT 1", nullptr}};
  leak.test = {{"b", "f", "en", "how many bmws", "SELECT 1", nullptr}};
  try {
    check_no_leakage(leak);
    FAIL() << "expected a leakage error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("split leakage"), std::string::npos) << e.what();
  }
  DatasetSplits same_id;
  same_id.train = {{"a", "f", "en", "q1", "", nullptr}};
  same_id.val = {{"a", "f", "en", "q2", "", nullptr}};
  EXPECT_THROW(check_no_leakage(same_id), Error);
  DatasetSplits held;
  held.train = {{"a", "g", "en", "q1", "", nullptr}};
  EXPECT_NO_THROW(check_no_leakage(held));
  EXPECT_THROW(check_no_leakage(held, {"g"}), Error);
}

TEST(Split, BadFractionsAreErrors) {
  SplitOptions options;
  options.val_fraction = 0.6;
  options.test_fraction = 0.5;
  EXPECT_THROW(split_examples(make_examples(1, 10), options), Error);
}

}  // namespace
}  // namespace lathe::data
