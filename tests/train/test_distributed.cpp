// The c10d runtime in one process: torchrun's environment parsed strictly, shards, a group of
// one as the identity, and two ranks (threads, Gloo over loopback) summing gradients across
// several buckets, broadcasting weights, reducing and gathering; a rank that leaves, one that
// never arrives and one that is alive but late are each named in the survivor's error.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <thread>

#include "core/error.h"
#include "core/launch.h"
#include "train/distributed.h"

namespace lathe {
namespace {

using namespace std::chrono_literals;

// Sets the variables for the life of the object, clearing every torchrun variable first.
using EnvVars = std::vector<std::pair<const char*, const char*>>;

class ScopedEnv {
 public:
  explicit ScopedEnv(const EnvVars& values) {
    for (const char* name : kNames) ::unsetenv(name);
    for (const auto& [name, value] : values) ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    for (const char* name : kNames) ::unsetenv(name);
  }

 private:
  static constexpr const char* kNames[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                                           "MASTER_PORT"};
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DistributedEnv, NoVariablesIsOneProcess) {
  ScopedEnv env(EnvVars{{"LOCAL_RANK", "3"}});  // LOCAL_RANK alone (some launchers) is not a group
  const DistributedEnv e = distributed_env_from_environment();
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
}

TEST(DistributedEnv, ReadsTorchrunVariables) {
  ScopedEnv env({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                 {"MASTER_ADDR", "10.0.0.7"}, {"MASTER_PORT", "29511"}});
  const DistributedEnv e = distributed_env_from_environment();
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.7");
  EXPECT_EQ(e.master_port, 29511);
}

TEST(DistributedEnv, IncompleteOrBadVariablesNameTheVariable) {
  {
    ScopedEnv env(EnvVars{{"RANK", "0"}});
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("WORLD_SIZE is not"), std::string::npos);
  }
  {
    ScopedEnv env({{"RANK", "2"}, {"WORLD_SIZE", "2"}});
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("RANK=2: expected an integer in [0, 1]"),
              std::string::npos);
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"}});
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("MASTER_PORT is not set"), std::string::npos);
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"},
                   {"MASTER_PORT", "http"}});
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("MASTER_PORT=http"), std::string::npos);
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "1"}});  // torchrun --nproc 1: a single process
    EXPECT_EQ(distributed_env_from_environment().world_size, 1);
  }
}

TEST(Distributed, ShardRangeSplitsContiguouslyAndEvenly) {
  EXPECT_EQ(shard_range(8, 0, 2), (std::pair<int64_t, int64_t>{0, 4}));
  EXPECT_EQ(shard_range(8, 1, 2), (std::pair<int64_t, int64_t>{4, 8}));
  EXPECT_EQ(shard_range(7, 0, 3), (std::pair<int64_t, int64_t>{0, 3}));
  EXPECT_EQ(shard_range(7, 1, 3), (std::pair<int64_t, int64_t>{3, 5}));
  EXPECT_EQ(shard_range(7, 2, 3), (std::pair<int64_t, int64_t>{5, 7}));
  EXPECT_EQ(shard_range(1, 1, 2), (std::pair<int64_t, int64_t>{1, 1}));  // an empty share
}

TEST(Distributed, GroupOfOneIsTheIdentity) {
  Distributed one;
  EXPECT_FALSE(one.active());
  EXPECT_EQ(one.all_reduce({1.5, -2}, ReduceOp::Sum, "x"), (std::vector<double>{1.5, -2}));
  auto p = torch::ones({3}, torch::requires_grad());
  one.all_reduce_gradients({p}, "x");
  EXPECT_FALSE(p.grad().defined());  // untouched: single-process runs behave exactly as before
  EXPECT_EQ(one.all_gather_bytes("abc", "x"), std::vector<std::string>{"abc"});
  one.barrier("x");
  one.check_same(5, "x");
  one.shutdown();
}

// Runs body(rank, dist) on `world` threads, each with its own Distributed; returns each
// thread's error message ("" = none).
std::vector<std::string> run_ranks(int world, DistributedOptions options,
                                   const std::function<void(int, Distributed&)>& body) {
  const int port = free_local_port();
  std::vector<std::future<std::string>> results;
  for (int r = 0; r < world; ++r)
    results.push_back(std::async(std::launch::async, [=] {
      try {
        DistributedEnv env;
        env.rank = r;
        env.world_size = world;
        env.local_rank = r;
        env.local_world_size = world;
        env.master_port = port;
        Distributed dist(env, torch::kCPU, options);
        body(r, dist);
        return std::string();
      } catch (const Error& e) {
        return std::string(e.what());
      }
    }));
  std::vector<std::string> errors;
  for (auto& f : results) errors.push_back(f.get());
  return errors;
}

DistributedOptions fast_options() {
  DistributedOptions o;
  o.timeout = 20s;
  o.heartbeat = 200ms;
  return o;
}

// The two-rank tests need Gloo (Debian: libgloo-dev at configure time).
#define REQUIRE_GLOO() \
  if (!distributed_backend_built("gloo")) GTEST_SKIP() << "this lathe was built without c10d's Gloo backend"

TEST(Distributed, TwoRanksSumGradientsBroadcastReduceAndGather) {
  REQUIRE_GLOO();
  DistributedOptions options = fast_options();
  options.bucket_bytes = 20;  // 5 floats: the three gradients below span several buckets
  std::vector<std::vector<torch::Tensor>> grads(2), weights(2);
  std::vector<std::vector<std::string>> gathered(2);
  std::vector<std::vector<double>> sums(2), maxima(2), minima(2);
  const auto errors = run_ranks(2, options, [&](int r, Distributed& dist) {
    std::vector<torch::Tensor> params = {torch::full({2, 3}, 10.0 * r + 1), torch::full({4}, 10.0 * r + 2),
                                         torch::full({1}, 10.0 * r + 3)};
    for (auto& p : params) p.set_requires_grad(true);
    // Rank 1 has no gradient for the last parameter (it saw no data for it): zeros.
    for (size_t i = 0; i < params.size(); ++i)
      if (r == 0 || i < 2) params[i].mutable_grad() = torch::arange(params[i].numel()).view(params[i].sizes()).to(torch::kFloat) * (r + 1);
    dist.all_reduce_gradients(params, "gradients");
    for (auto& p : params) grads[r].push_back(p.grad().clone());
    dist.broadcast_parameters(params, "weights");
    for (auto& p : params) weights[r].push_back(p.detach().clone());
    sums[r] = dist.all_reduce({1.0 + r, 0.5}, ReduceOp::Sum, "sums");
    maxima[r] = dist.all_reduce({1.0 + r, -1.0 * r}, ReduceOp::Max, "maxima");
    minima[r] = dist.all_reduce({1.0 + r, -1.0 * r}, ReduceOp::Min, "minima");
    gathered[r] = dist.all_gather_bytes(r == 0 ? std::string("rank zero\n\0 bytes", 17) : std::string(), "gather");
    dist.barrier("barrier");
    dist.check_same(7, "seven");
    dist.shutdown();
  });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));
  for (int r = 0; r < 2; ++r) {
    // Σ over ranks of arange × (rank + 1) = arange × 3; the parameter rank 1 lacked: arange × 1.
    EXPECT_TRUE(torch::equal(grads[r][0], torch::arange(6).view({2, 3}).to(torch::kFloat) * 3));
    EXPECT_TRUE(torch::equal(grads[r][1], torch::arange(4).to(torch::kFloat) * 3));
    EXPECT_TRUE(torch::equal(grads[r][2], torch::zeros({1})));
    EXPECT_TRUE(torch::equal(weights[r][0], torch::full({2, 3}, 1.0)));  // rank 0's values
    EXPECT_TRUE(torch::equal(weights[r][1], torch::full({4}, 2.0)));
    EXPECT_TRUE(torch::equal(weights[r][2], torch::full({1}, 3.0)));
    EXPECT_EQ(sums[r], (std::vector<double>{3.0, 1.0}));
    EXPECT_EQ(maxima[r], (std::vector<double>{2.0, 0.0}));
    EXPECT_EQ(minima[r], (std::vector<double>{1.0, -1.0}));
    EXPECT_EQ(gathered[r], (std::vector<std::string>{std::string("rank zero\n\0 bytes", 17), ""}));
  }
}

TEST(Distributed, CheckSameNamesEachRanksValue) {
  REQUIRE_GLOO();
  const auto errors = run_ranks(2, fast_options(), [](int r, Distributed& dist) {
    dist.check_same(r == 0 ? 22 : 20, "the number of training rows");
  });
  for (const auto& e : errors)
    EXPECT_NE(e.find("the ranks disagree on the number of training rows (rank 0: 22, rank 1: 20)"), std::string::npos) << e;
}

TEST(Distributed, RankThatLeavesIsNamed) {
  REQUIRE_GLOO();
  const auto start = std::chrono::steady_clock::now();
  const auto errors = run_ranks(2, fast_options(), [](int r, Distributed& dist) {
    dist.barrier("start");
    if (r == 1) return;  // leaves: its connections close, its heartbeat stops
    dist.all_reduce({1.0}, ReduceOp::Sum, "step 1 loss");
  });
  EXPECT_EQ(errors[1], "");
  EXPECT_NE(errors[0].find("rank 0 failed in 'step 1 loss': rank 1 died or stopped responding"), std::string::npos)
      << errors[0];
  EXPECT_NE(errors[0].find("'start'"), std::string::npos) << errors[0];  // where rank 1 was last
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);  // well within the 20 s timeout
}

TEST(Distributed, RankThatIsAliveButLateIsNamedAfterTheTimeout) {
  REQUIRE_GLOO();
  DistributedOptions options = fast_options();
  options.timeout = 2s;
  const auto start = std::chrono::steady_clock::now();
  const auto errors = run_ranks(2, options, [](int r, Distributed& dist) {
    dist.barrier("start");
    if (r == 1) {
      std::this_thread::sleep_for(5s);  // busy elsewhere, heartbeat still going
      return;
    }
    dist.all_reduce({1.0}, ReduceOp::Sum, "step 1 loss");
  });
  EXPECT_NE(errors[0].find("rank 1 is alive but has not reached it (its last collective was 'start')"),
            std::string::npos)
      << errors[0];
  EXPECT_LT(std::chrono::steady_clock::now() - start, 12s);
}

TEST(Distributed, RankThatNeverJoinsIsNamed) {
  REQUIRE_GLOO();
  DistributedOptions options = fast_options();
  options.timeout = 1s;
  DistributedEnv env;
  env.world_size = 2;
  env.master_port = free_local_port();
  const std::string error = error_of([&] { Distributed dist(env, torch::kCPU, options); });
  EXPECT_NE(error.find("rank(s) 1 did not join the rendezvous"), std::string::npos) << error;
}

TEST(Distributed, MissingBackendIsAClearError) {
  DistributedEnv env;
  env.world_size = 2;
  env.master_port = free_local_port();
  DistributedOptions options = fast_options();
  options.backend = "nccl";
  const std::string error = error_of([&] { Distributed dist(env, torch::kCPU, options); });
  if (distributed_backend_built("nccl")) EXPECT_NE(error.find("needs training.device=cuda"), std::string::npos) << error;
  else EXPECT_NE(error.find("this LibTorch build has no NCCL"), std::string::npos) << error;
}

}  // namespace
}  // namespace lathe
