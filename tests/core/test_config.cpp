// Strict configs: every bad key or value is an error naming the key and FILE:LINE; overrides
// win over the file; the YAML dump reads back to the same config.
#include "core/config.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace lathe {
namespace {

ConfigSchema schema() {
  ConfigSchema s;
  s.add_string("run.name", "x", "Run name.")
      .add_int("training.batch_size", 4, "Rows per batch.", 1, 1024)
      .add_float("training.lr", 2e-4, "Peak learning rate.", 0.0)
      .add_bool("data.packing", false, "Pack rows.")
      .add_string("training.schedule", "cosine", "LR schedule.", {"cosine", "linear", "constant"})
      .add_string_list("lora.target_modules", {"q_proj", "v_proj"}, "Targets.", {"q_proj", "k_proj", "v_proj"})
      .add_int_list("lora.layers", {}, "Layers.", 0);
  return s;
}

// The message of the lathe::Error that resolving `yaml` (+ overrides) throws.
std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  const ConfigSchema s = schema();
  try {
    resolve_config(s, yaml, "c.yaml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, DefaultsFileAndOverrides) {
  const ConfigSchema s = schema();
  const Config c = resolve_config(s, "training:\n  lr: 1e-3\n  batch_size: 8\nlora:\n  layers: [0, 2]\n", "c.yaml",
                                  {"training.batch_size=16", "lora.target_modules=[k_proj]"});
  EXPECT_EQ(c.get_string("run.name"), "x");
  EXPECT_DOUBLE_EQ(c.get_float("training.lr"), 1e-3);
  EXPECT_EQ(c.get_int("training.batch_size"), 16);
  EXPECT_EQ(c.get_int_list("lora.layers"), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(c.get_string_list("lora.target_modules"), (std::vector<std::string>{"k_proj"}));
  EXPECT_EQ(c.origin("training.lr"), "c.yaml:2");
  EXPECT_EQ(c.origin("training.batch_size"), "command line");
  EXPECT_EQ(c.origin("run.name"), "default");
}

TEST(Config, UnknownKeySuggestsClosestWithLine) {
  EXPECT_EQ(error_of("training:\n  lr: 1\n  bach_size: 3\n"),
            "c.yaml:3: unknown key training.bach_size (did you mean training.batch_size?)");
  EXPECT_EQ(error_of("", {"training.lrr=1"}), "command line: unknown key training.lrr (did you mean training.lr?)");
  EXPECT_EQ(error_of("lr: 1\n"), "c.yaml:1: unknown key lr (did you mean training.lr?)");
}

TEST(Config, WrongTypes) {
  EXPECT_EQ(error_of("training:\n  batch_size: four\n"), "c.yaml:2: training.batch_size: expected an int, got \"four\"");
  EXPECT_EQ(error_of("training:\n  batch_size: 2.5\n"), "c.yaml:2: training.batch_size: expected an int, got \"2.5\"");
  EXPECT_EQ(error_of("training:\n  lr: fast\n"), "c.yaml:2: training.lr: expected a float, got \"fast\"");
  EXPECT_EQ(error_of("data:\n  packing: 1\n"), "c.yaml:2: data.packing: expected true or false, got \"1\"");
  EXPECT_EQ(error_of("run:\n  name: [a]\n"), "c.yaml:2: run.name: expected a string, got a list");
  EXPECT_EQ(error_of("training: 3\n"), "c.yaml:1: training is a section; expected a mapping of its keys");
  EXPECT_EQ(error_of("", {"lora.layers=[a]"}), "command line: lora.layers: expected an int, got \"a\"");
  // A NUL inside a number ends strtoll early; the whole scalar must be the number.
  const std::string nul_error = error_of("training:\n  batch_size: \"8\\0junk\"\n");
  EXPECT_EQ(nul_error.rfind("c.yaml:2: training.batch_size: expected an int", 0), 0u) << nul_error;
  // Invalid UTF-8 would come back from the run folder's config.yaml as other characters.
  EXPECT_EQ(error_of("run:\n  name: a\xff\n"), "c.yaml:2: run.name: is not valid UTF-8 text");
  EXPECT_EQ(error_of("", {"lora.target_modules=[q_proj, \xc3]"}),
            "command line: lora.target_modules: is not valid UTF-8 text");
}

TEST(Config, OutOfRangeAndBadChoice) {
  EXPECT_EQ(error_of("training:\n  batch_size: 0\n"),
            "c.yaml:2: training.batch_size: 0 is out of range (valid: [1, 1024])");
  EXPECT_EQ(error_of("training:\n  lr: -1\n"), "c.yaml:2: training.lr: -1.0 is out of range (valid: >= 0.0)");
  EXPECT_EQ(error_of("training:\n  schedule: cosin\n"),
            "c.yaml:2: training.schedule: \"cosin\" is not a valid choice (valid: cosine, linear, constant)");
  EXPECT_EQ(error_of("", {"lora.target_modules=[q_proj, o_proj]"}),
            "command line: lora.target_modules: \"o_proj\" is not a valid choice (valid: q_proj, k_proj, v_proj)");
  EXPECT_EQ(error_of("lora:\n  layers: [-1]\n"), "c.yaml:2: lora.layers: -1 is out of range (valid: >= 0)");
}

TEST(Config, MalformedInput) {
  EXPECT_EQ(error_of("", {"training.lr"}), "command line: expected key.path=value, got \"training.lr\"");
  EXPECT_NE(error_of("training:\n  lr: [1\n").find("c.yaml:"), std::string::npos);
  EXPECT_EQ(error_of("training:\n  lr: 1\n  lr: 2\n"), "c.yaml:3: training.lr is set twice");
}

TEST(Config, YamlDumpRoundTrips) {
  const ConfigSchema s = schema();
  const Config c = resolve_config(s, "", "", {"training.lr=3e-5", "run.name=a b: c", "lora.layers=[1,3]"});
  const std::string yaml = c.to_yaml();
  const Config back = resolve_config(s, yaml, "dump.yaml", {});
  EXPECT_TRUE(back.differences(c).empty()) << yaml;
  EXPECT_EQ(back.get_string("run.name"), "a b: c");
  EXPECT_NE(yaml.find("training:\n  batch_size: 4\n  lr: 3e-05"), std::string::npos) << yaml;
}

TEST(Config, MarkdownListsEveryKey) {
  const std::string md = schema().markdown();
  EXPECT_NE(md.find("| `training.batch_size` | int | `4` | Rows per batch. Range [1, 1024]. |"), std::string::npos) << md;
  EXPECT_NE(md.find("| `training.schedule` | string | `cosine` | LR schedule. One of: cosine, linear, constant. |"),
            std::string::npos);
}

}  // namespace
}  // namespace lathe
