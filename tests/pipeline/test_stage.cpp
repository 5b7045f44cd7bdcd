// Stage bookkeeping: a finished stage with the same key and its outputs is skipped; a changed
// key, a missing output or a broken record reruns it in a cleared folder; an interrupted stage
// with the same key resumes in its folder when it can.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "pipeline/stage.h"
#include "tests/support/test_support.h"

namespace lathe::pipeline {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;
using nlohmann::json;

StageRecord record(const std::string& key) {
  StageRecord r;
  r.stage = "demo";
  r.key = key;
  return r;
}

TEST(StageKey, CoversNameConfigAndInputs) {
  const std::string k = stage_key("sft", "a: 1\n", {"0123"});
  EXPECT_EQ(k.size(), 16u);
  EXPECT_EQ(k, stage_key("sft", "a: 1\n", {"0123"}));
  EXPECT_NE(k, stage_key("grpo", "a: 1\n", {"0123"}));
  EXPECT_NE(k, stage_key("sft", "a: 2\n", {"0123"}));
  EXPECT_NE(k, stage_key("sft", "a: 1\n", {"0124"}));
  EXPECT_NE(k, stage_key("sft", "a: 1\n", {}));
}

TEST(RunStage, SkipsWhenCurrentAndRerunsWhenNot) {
  TempDir dir;
  const std::string stage = dir.file("demo");
  int runs = 0;
  const auto body = [&](const StageContext& ctx) {
    ++runs;
    EXPECT_FALSE(ctx.resume);
    EXPECT_FALSE(fs::exists(ctx.dir + "/old.txt")) << "a rerun starts from an empty folder";
    write_file_atomic(ctx.dir + "/out.txt", "x");
    return json{{"runs", runs}};
  };
  StageRun first = run_stage(stage, record("k1"), {"out.txt"}, false, body);
  EXPECT_FALSE(first.skipped);
  EXPECT_EQ(first.record.summary["runs"], 1);
  EXPECT_FALSE(fs::exists(stage + "/stage.started.json"));

  StageRun again = run_stage(stage, record("k1"), {"out.txt"}, false, body);
  EXPECT_TRUE(again.skipped);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(again.record.summary["runs"], 1) << "the skipped stage reports its recorded summary";

  write_file_atomic(stage + "/old.txt", "stale");
  run_stage(stage, record("k2"), {"out.txt"}, false, body);  // key changed
  EXPECT_EQ(runs, 2);

  fs::remove(stage + "/out.txt");  // an output went missing
  write_file_atomic(stage + "/old.txt", "stale");
  run_stage(stage, record("k2"), {"out.txt"}, false, body);
  EXPECT_EQ(runs, 3);

  write_file_atomic(stage + "/stage.json", "{ not json");
  run_stage(stage, record("k2"), {"out.txt"}, false, body);
  EXPECT_EQ(runs, 4);
}

TEST(RunStage, InterruptedStageResumesInItsFolderOnlyWithTheSameKey) {
  TempDir dir;
  const std::string stage = dir.file("train");
  EXPECT_THROW(run_stage(stage, record("k1"), {"model.bin"}, true,
                         [&](const StageContext& ctx) -> json {
                           write_file_atomic(ctx.dir + "/checkpoint.bin", "step 3");
                           fail("interrupted");
                         }),
               Error);
  EXPECT_TRUE(fs::exists(stage + "/stage.started.json"));
  EXPECT_EQ(stage_state(stage, "k1", {"model.bin"}), StageState::Resumable);
  EXPECT_EQ(stage_state(stage, "k2", {"model.bin"}), StageState::Stale);

  bool resumed = false;
  run_stage(stage, record("k1"), {"model.bin"}, true, [&](const StageContext& ctx) {
    resumed = ctx.resume;
    EXPECT_TRUE(fs::exists(ctx.dir + "/checkpoint.bin"));
    write_file_atomic(ctx.dir + "/model.bin", "done");
    return json::object();
  });
  EXPECT_TRUE(resumed);
  EXPECT_EQ(stage_state(stage, "k1", {"model.bin"}), StageState::Current);

  // A stage that cannot resume starts over even with the same key.
  EXPECT_THROW(run_stage(dir.file("other"), record("k1"), {"x"}, false,
                         [&](const StageContext& ctx) -> json {
                           write_file_atomic(ctx.dir + "/partial", "1");
                           fail("stop");
                         }),
               Error);
  run_stage(dir.file("other"), record("k1"), {"x"}, false, [&](const StageContext& ctx) {
    EXPECT_FALSE(ctx.resume);
    EXPECT_FALSE(fs::exists(ctx.dir + "/partial"));
    write_file_atomic(ctx.dir + "/x", "1");
    return json::object();
  });
}

TEST(RunStage, MissingOutputAfterTheBodyIsAnError) {
  TempDir dir;
  try {
    run_stage(dir.file("s"), record("k"), {"needed.txt"}, false, [](const StageContext&) { return json::object(); });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needed.txt"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.file("s/stage.json")));
}

}  // namespace
}  // namespace lathe::pipeline
