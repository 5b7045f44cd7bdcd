// c10d process groups for the recipes: see distributed.h. The c10d headers stay in this file
// (Gloo's and NCCL's headers come with them; cmake/distributed.cmake finds what this LibTorch
// build links).
//
// Store keys (under "lathe/"): joined/<rank> = "<world_size> <host> <pid>" (the rendezvous),
// joined and left (counters), heartbeat/<rank> = "<beat> <sequence> <in|after> <label>" (a
// rank's pulse and the collective it is in or last finished), pg/... (the process group's own).
#include "train/distributed.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <torch/version.h>  // TORCH_VERSION_MAJOR: 1.13 and 2.x name the collectives' base class differently

#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "train/c10d_backends.h"

// LibTorch's own USE_C10D_GLOO / USE_C10D_NCCL say which backends the build has; the cmake
// probe adds that their headers' dependencies (gloo's, nccl.h) are there.
#if LATHE_HAVE_C10D_GLOO && !defined(USE_C10D_GLOO)
#error "cmake found ProcessGroupGloo usable, but LibTorch's USE_C10D_GLOO is not defined here"
#endif
#if LATHE_HAVE_C10D_NCCL && !defined(USE_C10D_NCCL)
#error "cmake found ProcessGroupNCCL usable, but LibTorch's USE_C10D_NCCL is not defined here"
#endif
#if LATHE_HAVE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if LATHE_HAVE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace lathe {

namespace {

// LibTorch 2.x split the collectives' interface out of ProcessGroup into Backend, which the
// Gloo and NCCL groups implement; 1.13's groups derive from ProcessGroup itself.
#if TORCH_VERSION_MAJOR >= 2
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif

using Clock = std::chrono::steady_clock;

// The shortest gap between two heartbeats: entering a collective publishes early, but no more
// often than this (every rank writes to rank 0's store).
constexpr std::chrono::milliseconds kEagerPulse{250};

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, const std::string& text, int min, int max) {
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || value < min || value > max)
    fail(std::string(name) + "=" + text + ": expected an integer in [" + std::to_string(min) + ", " +
         std::to_string(max) + "]");
  return static_cast<int>(value);
}

std::vector<uint8_t> to_bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string from_bytes(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

std::string hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

std::string key(const std::string& name, int rank) { return "lathe/" + name + "/" + std::to_string(rank); }

// What a rank last published: its pulse and where it is.
struct Pulse {
  int64_t beat = 0;
  int64_t sequence = 0;
  bool inside = false;  // in the collective `label`, or past it
  std::string label;
};

std::optional<Pulse> parse_pulse(const std::string& text) {
  std::istringstream in(text);
  Pulse p;
  std::string where;
  if (!(in >> p.beat >> p.sequence >> where)) return std::nullopt;
  p.inside = where == "in";
  std::getline(in, p.label);
  if (!p.label.empty() && p.label[0] == ' ') p.label.erase(0, 1);
  return p;
}

// Where a rank is, from its pulse. A rank that stopped answering is described as of its last
// heartbeat, which may be a fraction of a second (at most a heartbeat) behind where it stopped.
std::string describe(const Pulse& p, bool alive) {
  if (alive) {
    if (p.sequence == 0) return "it has not reached any collective yet";
    return std::string(p.inside ? "it is in '" : "its last collective was '") + p.label + "'";
  }
  if (p.sequence == 0) return "at its last heartbeat it had not reached any collective";
  return std::string(p.inside ? "at its last heartbeat it was in '" : "at its last heartbeat it was past '") + p.label +
         "'";
}

// c10::Error's what() carries a C++ backtrace after the message; an error line wants the message.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string seconds_text(std::chrono::milliseconds ms) {
  std::ostringstream s;
  s << static_cast<double>(ms.count()) / 1000.0 << " s";
  return s.str();
}

}  // namespace

// ---- environment and config ------------------------------------------------------------------

DistributedEnv distributed_env_from_environment() {
  DistributedEnv env;
  const auto rank = env_value("RANK");
  const auto world = env_value("WORLD_SIZE");
  if (!rank && !world) return env;  // not launched as a group
  if (!rank || !world)
    fail(std::string(rank ? "RANK" : "WORLD_SIZE") + " is set but " + (rank ? "WORLD_SIZE" : "RANK") +
         " is not: a distributed launch sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT "
         "(torchrun or lathe launch do)");
  env.world_size = env_int("WORLD_SIZE", *world, 1, 1 << 20);
  env.rank = env_int("RANK", *rank, 0, env.world_size - 1);
  if (env.world_size == 1) return env;
  for (const char* name : {"LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"})
    if (!env_value(name))
      fail(std::string(name) + " is not set (WORLD_SIZE=" + *world +
           "): a distributed launch sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT");
  if (const auto local_world = env_value("LOCAL_WORLD_SIZE"))
    env.local_world_size = env_int("LOCAL_WORLD_SIZE", *local_world, 1, env.world_size);
  env.local_rank = env_int("LOCAL_RANK", *env_value("LOCAL_RANK"), 0, env.world_size - 1);
  if (env.local_rank >= env.local_world_size && env_value("LOCAL_WORLD_SIZE"))
    fail("LOCAL_RANK=" + std::to_string(env.local_rank) + " is not below LOCAL_WORLD_SIZE=" +
         std::to_string(env.local_world_size));
  env.master_addr = *env_value("MASTER_ADDR");
  if (env.master_addr.empty()) fail("MASTER_ADDR is empty: set the address of rank 0's machine");
  env.master_port = env_int("MASTER_PORT", *env_value("MASTER_PORT"), 1, 65535);
  return env;
}

bool distributed_backend_built(const std::string& name) {
  return (name == "gloo" && LATHE_HAVE_C10D_GLOO) || (name == "nccl" && LATHE_HAVE_C10D_NCCL);
}

void add_distributed_config_keys(ConfigSchema& schema) {
  schema
      .add_string("distributed.backend", "auto",
                  "Collectives across processes (torchrun's environment): auto = nccl on CUDA where built, else gloo.",
                  {"auto", "gloo", "nccl"})
      .add_int("distributed.timeout_seconds", 600,
               "A rank that has not joined or reached a collective by then fails the run, named in the error.", 1)
      .add_float("distributed.bucket_mb", 25.0, "Gradient all-reduce bucket size (MB of f32).", 0.001);
}

std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int world_size) {
  const int64_t base = n / world_size, extra = n % world_size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

void seed_rank_stream(const Distributed& dist, uint64_t seed, int64_t step) {
  if (dist.rank() == 0) return;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(dist.rank()) * 0xBF58476D1CE4E5B9ull +
               static_cast<uint64_t>(step);
  x = (x ^ (x >> 31)) * 0x94D049BB133111EBull;
  torch::manual_seed(x ^ (x >> 29));
}

// ---- the group ---------------------------------------------------------------------------------

// The heartbeat's state is shared with its thread, which may outlive the group when the store
// stops answering (the thread is then left behind rather than joined forever).
struct HeartbeatState {
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  bool finished = false;
  int64_t sequence = 0;
  bool inside = false;
  std::string label;
};

struct Distributed::Impl {
  DistributedEnv env;
  DistributedOptions options;
  c10::intrusive_ptr<c10d::TCPStore> store;    // this thread's connection (rank 0: also the server)
  c10::intrusive_ptr<CollectiveGroup> group;
  bool host_buffers = true;                    // gloo: collectives on CPU tensors
  std::shared_ptr<HeartbeatState> pulse = std::make_shared<HeartbeatState>();
  std::thread heartbeat;
  bool broken = false;  // a collective failed: no more collectives (shutdown skips its barrier)

  ~Impl() { stop_heartbeat(); }  // also when the constructor throws

  // Publishes the pulse every `heartbeat`, and sooner (at most every kEagerPulse) when the rank
  // enters another collective, so a rank that dies shows where it was, not where it was a
  // heartbeat ago.
  void start_heartbeat(c10::intrusive_ptr<c10d::TCPStore> monitor) {
    heartbeat = std::thread([state = pulse, monitor, k = key("heartbeat", env.rank), every = options.heartbeat] {
      int64_t beat = 0;
      std::unique_lock<std::mutex> lock(state->mutex);
      // Once more on the way out, so a rank that leaves early shows where it was.
      for (bool last = false; !last;) {
        last = state->stopping;
        const int64_t published = state->sequence;
        const std::string value = std::to_string(++beat) + " " + std::to_string(published) + " " +
                                  (state->inside ? "in " : "after ") + state->label;
        const auto next = Clock::now() + every;
        lock.unlock();
        try {
          monitor->set(k, to_bytes(value));
        } catch (const std::exception&) {
          // The store is gone (rank 0 died or left); the collectives report it.
        }
        lock.lock();
        if (last) break;
        state->wake.wait_for(lock, std::min(every, kEagerPulse), [&] { return state->stopping; });
        state->wake.wait_until(lock, next, [&] { return state->stopping || state->sequence != published; });
      }
      state->finished = true;
      state->wake.notify_all();
    });
  }

  void stop_heartbeat() {
    if (!heartbeat.joinable()) return;
    std::unique_lock<std::mutex> lock(pulse->mutex);
    pulse->stopping = true;
    pulse->wake.notify_all();
    // A set() blocked on a store that stopped answering would hold the join forever.
    const bool done = pulse->wake.wait_for(lock, std::chrono::seconds(3), [&] { return pulse->finished; });
    lock.unlock();
    if (done) heartbeat.join();
    else heartbeat.detach();
  }

  void enter(const std::string& what) {
    std::lock_guard<std::mutex> lock(pulse->mutex);
    ++pulse->sequence;
    pulse->inside = true;
    pulse->label = what;
    pulse->wake.notify_all();
  }
  void leave() {
    std::lock_guard<std::mutex> lock(pulse->mutex);
    pulse->inside = false;
  }

  // Everyone else's pulse, read on a helper thread so that a store that stopped answering
  // (rank 0 frozen) costs a bounded wait; nullopt when the store did not answer.
  std::optional<std::vector<std::optional<Pulse>>> read_pulses(std::chrono::milliseconds limit) {
    auto task = std::make_shared<std::packaged_task<std::vector<std::optional<Pulse>>()>>(
        [store = store, world = env.world_size] {
          std::vector<std::optional<Pulse>> out(world);
          for (int r = 0; r < world; ++r) {
            const std::string k = key("heartbeat", r);
            if (store->check({k})) out[r] = parse_pulse(from_bytes(store->get(k)));
          }
          return out;
        });
    auto result = task->get_future();
    std::thread([task] { (*task)(); }).detach();
    if (result.wait_for(limit) != std::future_status::ready) return std::nullopt;
    try {
      return result.get();
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  // The error for a collective that failed or timed out: which ranks are gone or late.
  [[noreturn]] void fail_collective(const std::string& what, const std::string& error) {
    broken = true;
    int64_t my_sequence;
    {
      std::lock_guard<std::mutex> lock(pulse->mutex);
      my_sequence = pulse->sequence;
    }
    const std::string head = "distributed: rank " + std::to_string(env.rank) + " failed in '" + what + "': ";
    const std::string tail = " (" + error + ")";
    const std::string store_gone = "rank 0 (which hosts the rendezvous store at " + env.master_addr + ":" +
                                   std::to_string(env.master_port) + ") died or stopped responding";
    const auto wait = std::max(options.heartbeat * 5 / 2, std::chrono::milliseconds(500));
    const auto first = read_pulses(std::chrono::seconds(5));
    if (!first) fail(head + store_gone + tail);
    std::this_thread::sleep_for(wait);
    const auto second = read_pulses(std::chrono::seconds(5));
    if (!second) fail(head + store_gone + tail);
    std::vector<std::string> found;
    for (int r = 0; r < env.world_size; ++r) {
      if (r == env.rank) continue;
      const auto& before = (*first)[r];
      const auto& now = (*second)[r];
      if (!now) {
        found.push_back("rank " + std::to_string(r) + " never published a heartbeat");
      } else if (before && before->beat == now->beat) {
        found.push_back("rank " + std::to_string(r) + " died or stopped responding (no heartbeat for " +
                        seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(wait)) + "; " +
                        describe(*now, false) + ")");
      } else if (now->sequence < my_sequence || (now->sequence == my_sequence && !now->inside)) {
        found.push_back("rank " + std::to_string(r) + " is alive but has not reached it (" + describe(*now, true) + ")");
      }
    }
    if (found.empty()) fail(head + "every rank is alive and reached it; the transport failed" + tail);
    std::string names;
    for (const auto& f : found) names += (names.empty() ? "" : "; ") + f;
    fail(head + names + tail);
  }

  // Starts the collectives, then waits for each within the timeout.
  template <class Start>
  void run(const std::string& what, Start start) {
    enter(what);
    try {
      std::vector<c10::intrusive_ptr<c10d::Work>> works = start();
      for (auto& w : works) w->wait(options.timeout);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail_collective(what, first_line(e.what()));
    }
    leave();
  }

  torch::Tensor to_collective(const torch::Tensor& t, torch::Device device) const {
    return host_buffers ? t.to(torch::kCPU) : t.to(device);
  }
};

Distributed::Distributed(torch::Device device) : device_(device) {}

Distributed::Distributed(const DistributedEnv& env, torch::Device device, const DistributedOptions& options)
    : env_(env), device_(device), impl_(std::make_unique<Impl>()) {
  impl_->env = env;
  impl_->options = options;
  // A write to a peer that died must be an error, not SIGPIPE (Python ignores SIGPIPE for
  // torch.distributed; a C++ program has to).
  std::signal(SIGPIPE, SIG_IGN);

  std::string backend = options.backend;
  if (backend == "auto") backend = device.is_cuda() && LATHE_HAVE_C10D_NCCL ? "nccl" : "gloo";
  if (backend == "nccl" && !LATHE_HAVE_C10D_NCCL)
    fail("distributed.backend=nccl: this LibTorch build has no NCCL (ProcessGroupNCCL); use gloo "
         "(distributed.backend=gloo), or build lathe against a CUDA LibTorch with nccl.h (docs/distributed.md)");
  if (backend == "nccl" && !device.is_cuda())
    fail("distributed.backend=nccl needs training.device=cuda; on CPU use gloo");
  if (backend == "gloo" && !LATHE_HAVE_C10D_GLOO)
    fail("distributed: this lathe was built without Gloo (ProcessGroupGloo): install libgloo-dev and reconfigure "
         "(scripts/setup.sh), or with an official LibTorch pass -DLATHE_GLOO_INCLUDE_DIR (docs/distributed.md)");
  backend_ = backend;
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  const std::string me = "rank " + std::to_string(env.rank);

  // Rendezvous: rank 0 hosts the store; everyone announces itself and waits for the others.
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(env.master_port);
  store_options.isServer = env.rank == 0;
  store_options.waitWorkers = false;
  store_options.timeout = options.timeout;
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    store_options.isServer = false;
    auto monitor = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    impl_->store->set(key("joined", env.rank),
                      to_bytes(std::to_string(env.world_size) + " " + hostname() + " " + std::to_string(::getpid())));
    impl_->store->add("lathe/joined", 1);
    impl_->start_heartbeat(monitor);
  } catch (const std::exception& e) {
    fail("distributed: " + me + (env.rank == 0 ? " cannot host the rendezvous store on port " : " cannot reach the rendezvous store at ") +
         (env.rank == 0 ? std::to_string(env.master_port) : where) + " (MASTER_ADDR/MASTER_PORT): " + first_line(e.what()));
  }
  // The store's host may die during the rendezvous: its client calls then throw.
  try {
    const auto deadline = Clock::now() + options.timeout;
    while (impl_->store->add("lathe/joined", 0) < env.world_size) {
      if (Clock::now() >= deadline) {
        std::string missing;
        for (int r = 0; r < env.world_size; ++r)
          if (!impl_->store->check({key("joined", r)})) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        fail("distributed: rank(s) " + missing + " did not join the rendezvous at " + where + " within " +
             seconds_text(options.timeout) + " (started with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE=" +
             std::to_string(env.world_size) + "?)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (int r = 0; r < env.world_size; ++r) {
      std::istringstream joined(from_bytes(impl_->store->get(key("joined", r))));
      int world = 0;
      std::string host, pid;
      joined >> world >> host >> pid;
      if (world != env.world_size)
        fail("distributed: rank " + std::to_string(r) + " (" + host + ", pid " + pid + ") has WORLD_SIZE=" +
             std::to_string(world) + ", " + me + " has " + std::to_string(env.world_size));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("distributed: " + me + " lost the rendezvous store at " + where +
         " while waiting for the other ranks (rank 0 died?): " + first_line(e.what()));
  }

  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("lathe/pg", impl_->store);
  try {
    impl_->enter("joining the " + backend + " process group");
    if (backend == "gloo") {
#if LATHE_HAVE_C10D_GLOO
      auto gloo = c10d::ProcessGroupGloo::Options::create(options.timeout);
      // As torch.distributed: GLOO_SOCKET_IFNAME names the interfaces; otherwise the loopback
      // for a loopback MASTER_ADDR, else the address this machine's hostname resolves to.
      if (const auto ifnames = env_value("GLOO_SOCKET_IFNAME")) {
        std::istringstream names(*ifnames);
        for (std::string name; std::getline(names, name, ',');)
          if (!name.empty()) gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      } else if (is_loopback(env.master_addr)) {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, gloo);
      impl_->host_buffers = true;
#endif
    } else {
#if LATHE_HAVE_C10D_NCCL
      c10::cuda::set_device(device.index());
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = options.timeout;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, nccl);
      impl_->host_buffers = false;
#endif
    }
    impl_->leave();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    impl_->fail_collective("joining the " + backend + " process group", first_line(e.what()));
  }
  log::info("distributed: rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + " (" +
            backend + ", store " + where + ", device " + device.str() + ")");
}

Distributed::~Distributed() {
  // Closing the group waits for collectives still in flight, each bounded by the timeout.
  if (impl_) impl_->stop_heartbeat();
}

void Distributed::shutdown() {
  if (!impl_ || impl_->broken || !impl_->group) return;
  barrier("shutdown");
  impl_->stop_heartbeat();
  // Rank 0's store must outlive every other rank's last use of it.
  try {
    impl_->store->add("lathe/left", 1);
    if (is_main()) {
      const auto deadline = Clock::now() + impl_->options.timeout;
      while (impl_->store->add("lathe/left", 0) < world_size() && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } catch (const std::exception&) {
    // Leaving is best effort: the training is done and saved.
  }
  impl_->group.reset();
  impl_->store.reset();
}

int Distributed::threads(int configured) const {
  if (configured > 0 || env_.local_world_size <= 1) return configured;
  const int each = std::max(1, available_cores() / env_.local_world_size);
  log::info("training.threads=0 with " + std::to_string(env_.local_world_size) + " processes on this machine: " +
            std::to_string(each) + " thread(s) each");
  return each;
}

void Distributed::all_reduce_gradients(const std::vector<torch::Tensor>& params, const std::string& what) {
  if (!active()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (!p.grad().defined()) const_cast<torch::Tensor&>(p).mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  // Consecutive gradients of one dtype and device, up to bucket_bytes per bucket.
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    const int64_t size = grads[i].numel() * static_cast<int64_t>(grads[i].element_size());
    const bool same_kind = !buckets.empty() && grads[buckets.back().front()].scalar_type() == grads[i].scalar_type() &&
                           grads[buckets.back().front()].device() == grads[i].device();
    if (buckets.empty() || !same_kind || bytes + size > impl_->options.bucket_bytes) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += size;
  }
  std::vector<torch::Tensor> flats;
  for (const auto& bucket : buckets) {
    std::vector<torch::Tensor> pieces;
    for (size_t i : bucket) pieces.push_back(grads[i].reshape({-1}));
    flats.push_back(impl_->to_collective(torch::cat(pieces), device_));
  }
  impl_->run(what, [&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& flat : flats) {
      std::vector<at::Tensor> one{flat};
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      works.push_back(impl_->group->allreduce(one, o));
    }
    return works;
  });
  for (size_t b = 0; b < buckets.size(); ++b) {
    int64_t offset = 0;
    for (size_t i : buckets[b]) {
      const int64_t n = grads[i].numel();
      grads[i].copy_(flats[b].narrow(0, offset, n).view(grads[i].sizes()));
      offset += n;
    }
  }
}

void Distributed::broadcast_parameters(const std::vector<torch::Tensor>& params, const std::string& what) {
  if (!active() || params.empty()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> pieces;
  for (const auto& p : params) pieces.push_back(p.detach().to(params.front().scalar_type()).reshape({-1}));
  torch::Tensor flat = impl_->to_collective(torch::cat(pieces), device_);
  impl_->run(what, [&] {
    std::vector<at::Tensor> one{flat};
    c10d::BroadcastOptions o;
    o.rootRank = 0;
    return std::vector<c10::intrusive_ptr<c10d::Work>>{impl_->group->broadcast(one, o)};
  });
  int64_t offset = 0;
  for (const auto& p : params) {
    const int64_t n = p.numel();
    const_cast<torch::Tensor&>(p).copy_(flat.narrow(0, offset, n).view(p.sizes()));
    offset += n;
  }
}

std::vector<double> Distributed::all_reduce(std::vector<double> values, ReduceOp op, const std::string& what) {
  if (!active() || values.empty()) return values;
  torch::Tensor t = impl_->to_collective(torch::tensor(values, torch::kFloat64), device_);
  impl_->run(what, [&] {
    std::vector<at::Tensor> one{t};
    c10d::AllreduceOptions o;
    o.reduceOp = op == ReduceOp::Sum ? c10d::ReduceOp::SUM : op == ReduceOp::Max ? c10d::ReduceOp::MAX
                                                                                 : c10d::ReduceOp::MIN;
    return std::vector<c10::intrusive_ptr<c10d::Work>>{impl_->group->allreduce(one, o)};
  });
  t = t.to(torch::kCPU);
  std::copy(t.data_ptr<double>(), t.data_ptr<double>() + t.numel(), values.begin());
  return values;
}

std::vector<std::string> Distributed::all_gather_bytes(const std::string& bytes, const std::string& what) {
  if (!active()) return {bytes};
  const int world = world_size();
  // Lengths first, then every rank's bytes padded to the longest.
  torch::Tensor length = impl_->to_collective(torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kInt64), device_);
  std::vector<std::vector<at::Tensor>> lengths(1);
  for (int r = 0; r < world; ++r) lengths[0].push_back(torch::empty_like(length));
  impl_->run(what + " (sizes)", [&] {
    std::vector<at::Tensor> in{length};
    return std::vector<c10::intrusive_ptr<c10d::Work>>{impl_->group->allgather(lengths, in)};
  });
  std::vector<int64_t> sizes;
  int64_t longest = 1;
  for (auto& l : lengths[0]) {
    sizes.push_back(l.to(torch::kCPU).item<int64_t>());
    longest = std::max(longest, sizes.back());
  }
  torch::Tensor mine = torch::zeros({longest}, torch::kUInt8);
  std::memcpy(mine.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  mine = impl_->to_collective(mine, device_);
  std::vector<std::vector<at::Tensor>> all(1);
  for (int r = 0; r < world; ++r) all[0].push_back(torch::empty_like(mine));
  impl_->run(what, [&] {
    std::vector<at::Tensor> in{mine};
    return std::vector<c10::intrusive_ptr<c10d::Work>>{impl_->group->allgather(all, in)};
  });
  std::vector<std::string> out;
  for (int r = 0; r < world; ++r) {
    torch::Tensor t = all[0][r].to(torch::kCPU);
    out.emplace_back(reinterpret_cast<const char*>(t.data_ptr<uint8_t>()), static_cast<size_t>(sizes[r]));
  }
  return out;
}

void Distributed::barrier(const std::string& what) {
  if (!active()) return;
  impl_->run(what, [&] {
    return std::vector<c10::intrusive_ptr<c10d::Work>>{impl_->group->barrier(c10d::BarrierOptions())};
  });
}

void Distributed::check_same(int64_t value, const std::string& what) {
  if (!active()) return;
  const auto all = all_gather_bytes(std::to_string(value), "comparing " + what);
  if (std::all_of(all.begin(), all.end(), [&](const std::string& v) { return v == all.front(); })) return;
  std::string each;
  for (int r = 0; r < world_size(); ++r) each += (r ? ", " : "") + ("rank " + std::to_string(r) + ": " + all[r]);
  fail("distributed: the ranks disagree on " + what + " (" + each + ")");
}

std::unique_ptr<Distributed> init_distributed(const Config& config) {
  const DistributedEnv env = distributed_env_from_environment();
  torch::Device device = parse_device(config.get_string("training.device"));
  if (env.world_size == 1) return std::make_unique<Distributed>(device);
  // Plain "cuda": one GPU per process on its machine, as torchrun's scripts do.
  if (device.is_cuda() && config.get_string("training.device") == "cuda")
    device = parse_device("cuda:" + std::to_string(env.local_rank));
  DistributedOptions options;
  options.backend = config.get_string("distributed.backend");
  options.timeout = std::chrono::seconds(config.get_int("distributed.timeout_seconds"));
  options.bucket_bytes = static_cast<int64_t>(config.get_float("distributed.bucket_mb") * (1 << 20));
  return std::make_unique<Distributed>(env, device, options);
}

}  // namespace lathe
