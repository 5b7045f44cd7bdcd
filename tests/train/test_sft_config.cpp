// SFT config: docs/config.md holds the table generated from the declarations, and every
// file in configs/ that runs `lathe sft` is valid and opens with its command.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "train/sft.h"

namespace lathe {
namespace {

TEST(SftConfig, DocsAreUpToDate) {
  const std::string docs = read_file("docs/config.md");
  EXPECT_NE(docs.find(sft_config_schema().markdown()), std::string::npos)
      << "docs/config.md is stale: regenerate its `lathe sft` table with `lathe sft --config-docs`";
}

TEST(SftConfig, ShippedConfigsAreValidAndSayHowToRunThem) {
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator("configs")) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".yaml" || entry.path().filename().string().rfind("sft", 0) != 0) continue;
    ++found;
    const std::string text = read_file(path);
    EXPECT_EQ(text.rfind("# lathe sft --config " + path, 0), 0u) << path << " must open with its command";
    const Config c = load_config(sft_config_schema(), path, {});
    EXPECT_FALSE(c.get_string("data.train").empty()) << path;
  }
  EXPECT_GE(found, 1);
}

TEST(SftConfig, BadKeysAreNamed) {
  try {
    resolve_config(sft_config_schema(), "training:\n  batchsize: 1\n", "x.yaml", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "x.yaml:2: unknown key training.batchsize (did you mean training.batch_size?)");
  }
  EXPECT_THROW(resolve_config(sft_config_schema(), "", "", {"lora.target_modules=[qproj]"}), Error);
  EXPECT_THROW(resolve_config(sft_config_schema(), "", "", {"training.batch_size=0"}), Error);
}

}  // namespace
}  // namespace lathe
