// Checkpoint folders (newest complete one wins, temporary ones ignored, keep K), RNG state
// round trip, LR schedules against transformers' formulas, and global-norm clipping against
// a direct computation.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/atomic_file.h"
#include "tests/support/test_support.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;

TEST(Checkpoint, NewestCompleteWinsAndOldOnesArePruned) {
  TempDir dir;
  EXPECT_FALSE(latest_checkpoint(dir.path()));
  TrainState s;
  for (int64_t step : {1, 2, 3}) {
    s.step = step;
    save_checkpoint(dir.path(), s, 2, [&](const std::string& d) { write_file_atomic(d + "/w.bin", "x"); });
  }
  EXPECT_FALSE(fs::exists(dir.file("checkpoints/step-1")));
  EXPECT_TRUE(fs::exists(dir.file("checkpoints/step-2/w.bin")));
  EXPECT_EQ(*latest_checkpoint(dir.path()), dir.file("checkpoints/step-3"));
  // A later folder without state.json (a crash mid-write) and a temporary folder do not count.
  fs::create_directories(dir.file("checkpoints/step-9"));
  fs::create_directories(dir.file("checkpoints/.tmp-step-10-1"));
  write_file_atomic(dir.file("checkpoints/.tmp-step-10-1/state.json"), "{}");
  EXPECT_EQ(*latest_checkpoint(dir.path()), dir.file("checkpoints/step-3"));
  // A payload that throws leaves the previous checkpoint as the newest.
  s.step = 4;
  EXPECT_ANY_THROW(save_checkpoint(dir.path(), s, 2, [](const std::string&) { throw std::runtime_error("disk full"); }));
  EXPECT_EQ(*latest_checkpoint(dir.path()), dir.file("checkpoints/step-3"));
  TrainState back = load_checkpoint_state(dir.file("checkpoints/step-3"));
  EXPECT_EQ(back.step, 3);
}

TEST(Checkpoint, RngStateRoundTrips) {
  TempDir dir;
  torch::manual_seed(7);
  save_rng_state(dir.file("rng.pt"));
  auto a = torch::rand({5});
  torch::manual_seed(99);
  load_rng_state(dir.file("rng.pt"));
  EXPECT_TRUE(torch::rand({5}).equal(a));
}

TEST(Optimizer, SchedulesMatchTransformers) {
  LrSchedule s;
  s.lr = 1.0;
  s.warmup_steps = 4;
  s.total_steps = 14;
  EXPECT_DOUBLE_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(2), 0.5);
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);
  EXPECT_NEAR(s.at(9), 0.5 * (1 + std::cos(M_PI * 0.5)), 1e-15);
  EXPECT_NEAR(s.at(14), 0.0, 1e-15);
  s.kind = "linear";
  EXPECT_DOUBLE_EQ(s.at(9), 0.5);
  s.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(s.at(14), 0.1);
  s.kind = "constant";
  EXPECT_DOUBLE_EQ(s.at(13), 1.0);
}

TEST(Optimizer, ClipGradNormScalesToMaxNorm) {
  auto a = torch::tensor({3.0f, 0.0f}).requires_grad_();
  auto b = torch::tensor({4.0f}).requires_grad_();
  (a * torch::tensor({3.0f, 0.0f})).sum().backward();  // grad a = [3, 0]
  (b * 4.0f).sum().backward();                          // grad b = [4]
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b}, 0.0), 5.0);   // 0 = measure only
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b}, 1.0), 5.0);
  EXPECT_NEAR(a.grad()[0].item<double>(), 3.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(b.grad()[0].item<double>(), 4.0 / (5.0 + 1e-6), 1e-6);
}

}  // namespace
}  // namespace lathe
