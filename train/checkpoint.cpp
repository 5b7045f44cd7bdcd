// Run folders and checkpoints: see checkpoint.h.
#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace lathe {
namespace fs = std::filesystem;

nlohmann::json TrainState::to_json() const {
  return {{"format", "lathe-sft-checkpoint"}, {"version", kCheckpointVersion}, {"step", step},
          {"epoch", epoch}, {"batch_in_epoch", batch_in_epoch}, {"tokens_seen", tokens_seen},
          {"best_eval_loss", has_best ? nlohmann::json(best_eval_loss) : nlohmann::json(nullptr)},
          {"seed", seed}, {"world_size", world_size}};
}

TrainState TrainState::from_json(const nlohmann::json& j, const std::string& source) {
  try {
    if (j.at("format") != "lathe-sft-checkpoint") fail(source + ": not a lathe SFT checkpoint");
    if (j.at("version").get<int>() != kCheckpointVersion)
      fail(source + ": checkpoint version " + j.at("version").dump() + ", this lathe reads version " +
           std::to_string(kCheckpointVersion));
    TrainState s;
    s.step = j.at("step");
    s.epoch = j.at("epoch");
    s.batch_in_epoch = j.at("batch_in_epoch");
    s.tokens_seen = j.at("tokens_seen");
    s.has_best = !j.at("best_eval_loss").is_null();
    if (s.has_best) s.best_eval_loss = j.at("best_eval_loss");
    s.seed = j.at("seed");
    s.world_size = j.value("world_size", int64_t{1});  // absent before data-parallel runs: one process
    return s;
  } catch (const nlohmann::json::exception& e) {
    fail(source + ": " + e.what());
  }
}

namespace {

// step-N -> N, or -1 for anything else (temporary folders included).
int64_t checkpoint_step(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name.rfind("step-", 0) != 0 || name.size() == 5) return -1;
  const std::string digits = name.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoll(digits);
}

std::vector<std::pair<int64_t, fs::path>> complete_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::exists(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const int64_t step = checkpoint_step(entry.path());
    if (step >= 0 && fs::exists(entry.path() / "state.json")) out.push_back({step, entry.path()});
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string save_checkpoint(const std::string& run_dir, const TrainState& state, int64_t keep,
                            const std::function<void(const std::string& dir)>& write_payload) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  // Leftovers of a crashed save or prune are never read; clear them so they do not pile up.
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string leftover = entry.path().filename().string();
    if (leftover.rfind(".tmp-", 0) == 0 || leftover.find(".old-") != std::string::npos)
      fs::remove_all(entry.path());
  }
  const std::string name = "step-" + std::to_string(state.step);
  const fs::path tmp = root / (".tmp-" + name + "-" + std::to_string(::getpid()));
  const std::string final_dir = (root / name).string();
  try {
    fs::create_directories(tmp);
    write_payload(tmp.string());
    save_rng_state((tmp / "rng.pt").string());
    write_file_atomic((tmp / "state.json").string(), state.to_json().dump(2) + "\n");
    replace_directory_atomic(tmp.string(), final_dir);
  } catch (...) {
    // A full disk: give back what the half-written checkpoint took; the older ones stay.
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  auto all = complete_checkpoints(run_dir);
  // A pruned checkpoint leaves its step-N name in one rename before its files go: a kill
  // during the deletion must not leave a step-N folder that has state.json but no weights.
  for (std::size_t i = 0; i + static_cast<std::size_t>(std::max<int64_t>(keep, 1)) < all.size(); ++i) {
    const fs::path doomed = root / (".tmp-prune-" + all[i].second.filename().string());
    std::error_code ec;
    fs::rename(all[i].second, doomed, ec);
    if (ec) fail("cannot remove old checkpoint " + all[i].second.string() + ": " + ec.message());
    fs::remove_all(doomed, ec);
  }
  return final_dir;
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto all = complete_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second.string();
}

TrainState load_checkpoint_state(const std::string& dir) {
  const std::string path = dir + "/state.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path + ": " + e.what());
  }
  TrainState state = TrainState::from_json(j, path);
  load_rng_state(dir + "/rng.pt");
  return state;
}

void check_resume_world_size(const TrainState& state, int64_t world_size, const std::string& dir) {
  if (state.world_size == world_size) return;
  fail(dir + " was written by a run of " + std::to_string(state.world_size) + " process(es), this one has " +
       std::to_string(world_size) + ": resume it with " + std::to_string(state.world_size) +
       " (the data order and each rank's share of a batch depend on it), or start a new run");
}

void save_rng_state(const std::string& path) {
  auto gen = at::detail::getDefaultCPUGenerator();
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state();
  }
  torch::save(state, path);
}

void load_rng_state(const std::string& path) {
  if (!fs::exists(path)) fail(path + " is missing (incomplete checkpoint)");
  torch::Tensor state;
  torch::load(state, path);
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

void append_jsonl(const std::string& path, const nlohmann::json& record) {
  std::ofstream out(path, std::ios::app);
  if (!out) fail("cannot append to " + path);
  out << record.dump() << "\n";
  out.flush();
}

}  // namespace lathe
