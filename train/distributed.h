// Data-parallel training on LibTorch's own distributed engine (c10d), for `lathe sft` and
// `lathe grpo` started by torchrun, Slurm, Kubernetes or `lathe launch` (docs/distributed.md).
//
// torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT) names the group; a c10d TCPStore at MASTER_ADDR:MASTER_PORT (hosted by rank 0)
// is the rendezvous; ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA, where this LibTorch
// build has it) carries the collectives the recipes need: the trainable gradients summed in
// flat buckets, the initial weights broadcast from rank 0, metrics reduced, bytes gathered,
// barriers. Without that environment a recipe runs as a group of one: every collective is the
// identity and nothing is started.
//
// Failures: each rank publishes a heartbeat and its latest collective to the store once a
// second, and on entering a collective (at most every 250 ms). A collective that fails (a peer's connection closed) or outlasts
// distributed.timeout_seconds becomes a lathe::Error naming the rank(s) that died, stopped
// responding, or are alive but never reached it — torch.distributed leaves that to the
// launcher's agent and reports only a socket address or "timed out".
//
// Departures from torch DDP:
// * Gradients are summed, not averaged: the recipes divide each rank's loss by the global
//   normaliser (scored tokens, sequences, active tokens), so the sum is the gradient of the
//   global batch — exactly, also when ranks hold unequal shares (the last SFT batch of an epoch).
// * All-reduce does not overlap the backward pass (no autograd hooks): the buckets are reduced
//   once per optimizer step, after the micro-batches' backward passes.
#pragma once
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"

namespace lathe {

// torchrun's variables. With none of them set: one process (rank 0 of 1).
struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads the environment; some variables set but not the others, or a bad value, is a
// lathe::Error naming the variable.
DistributedEnv distributed_env_from_environment();

// Whether this lathe was built with c10d's "gloo" or "nccl" backend (cmake/distributed.cmake).
bool distributed_backend_built(const std::string& name);

// distributed.backend, distributed.timeout_seconds, distributed.bucket_mb — shared by the recipes.
void add_distributed_config_keys(ConfigSchema& schema);

struct DistributedOptions {
  std::string backend = "auto";                  // auto (nccl on CUDA where built, else gloo) | gloo | nccl
  std::chrono::milliseconds timeout{600000};     // rendezvous and every collective
  int64_t bucket_bytes = 25 << 20;               // gradient bucket size (torch DDP's default 25 MB)
  std::chrono::milliseconds heartbeat{1000};     // how often a rank publishes that it is alive
};

enum class ReduceOp { Sum, Max, Min };

class Distributed {
 public:
  // A group of one (no environment) on `device`: collectives are the identity, nothing runs.
  explicit Distributed(torch::Device device = torch::kCPU);
  // Joins the group `env` describes (world_size > 1): store rendezvous, then the process group
  // for `device` (CPU: gloo; CUDA: nccl, or gloo through host copies when asked).
  Distributed(const DistributedEnv& env, torch::Device device, const DistributedOptions& options);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const DistributedEnv& env() const { return env_; }
  bool is_main() const { return env_.rank == 0; }
  bool active() const { return env_.world_size > 1; }
  torch::Device device() const { return device_; }
  const std::string& backend() const { return backend_; }

  // Each collective names what it is for ("step 3 gradients"): the label a peer's error shows
  // when this rank is late or gone.
  //
  // Sums every parameter's gradient over the ranks in flat buckets of about bucket_bytes
  // (an undefined gradient counts as zeros, so a rank without data this step still takes part).
  void all_reduce_gradients(const std::vector<torch::Tensor>& params, const std::string& what);
  // Rank 0's values into every rank's tensors.
  void broadcast_parameters(const std::vector<torch::Tensor>& params, const std::string& what);
  // Element-wise over ranks, in f64.
  std::vector<double> all_reduce(std::vector<double> values, ReduceOp op, const std::string& what);
  // Every rank's bytes, in rank order.
  std::vector<std::string> all_gather_bytes(const std::string& bytes, const std::string& what);
  void barrier(const std::string& what);
  // A lathe::Error when `value` is not the same on every rank ("the data file has 22 rows
  // on rank 0 but 20 on rank 1"): `what` names the quantity.
  void check_same(int64_t value, const std::string& what);

  // Intra-op threads for this process: `configured`, or when 0 (all cores) and several ranks
  // share the machine, its cores divided among them (logged).
  int threads(int configured) const;

  // A barrier, then heartbeats stop and the group closes; rank 0 keeps the store up until
  // every rank has left it. Also run (without the barrier) by the destructor.
  void shutdown();

 private:
  struct Impl;
  DistributedEnv env_;
  torch::Device device_{torch::kCPU};
  std::string backend_ = "none";
  std::unique_ptr<Impl> impl_;
};

// The recipes' entry: a group of one without torchrun's environment, else joins the group on
// training.device (plain "cuda" becomes cuda:LOCAL_RANK) with the distributed.* keys.
std::unique_ptr<Distributed> init_distributed(const Config& config);

// Rank `rank`'s share [begin, end) of n items: contiguous, in rank order, sizes differing by at
// most one (the first n % world_size ranks take one more).
std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int world_size);

// Ranks > 0 draw dropout from their own stream, reseeded from (seed, rank, step) every step so
// a resumed run repeats them without saving each rank's generator; rank 0 keeps the global
// stream (saved in checkpoints), so a single process behaves exactly as before.
void seed_rank_stream(const Distributed& dist, uint64_t seed, int64_t step);

}  // namespace lathe
