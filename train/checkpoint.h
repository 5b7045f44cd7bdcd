// Run folders and crash-safe checkpoints.
//
// runs/<name>/
//   config.yaml                 the resolved config
//   metrics.jsonl               one JSON object per logged step / evaluation
//   checkpoints/step-N/         state.json (written last) + model/ or adapter/ + optimizer.pt + rng.pt
//   best/, adapter/ or model/   best-by-eval and final weights
// A checkpoint is written into checkpoints/.tmp-step-N-<pid>/ and renamed into place, so a crash
// at any moment leaves the previous complete checkpoint; leftover .tmp-* folders are ignored
// (and removed by the next save). Only the newest `keep` checkpoints are kept.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace lathe {

inline constexpr int kCheckpointVersion = 1;

// Where the loop stands; everything a resumed run needs besides weights and optimizer.
struct TrainState {
  int64_t step = 0;            // optimizer steps done
  int64_t epoch = 0;           // current epoch
  int64_t batch_in_epoch = 0;  // micro-batches of this epoch already consumed
  int64_t tokens_seen = 0;
  double best_eval_loss = 0;   // meaningful when has_best
  bool has_best = false;
  uint64_t seed = 0;
  int64_t world_size = 1;      // processes of the run that wrote it (data order and shares depend on it)
  nlohmann::json to_json() const;
  static TrainState from_json(const nlohmann::json& j, const std::string& source);
};

// Writes checkpoints/step-<state.step>: write_payload(tmp_dir) adds the weights and optimizer,
// then state.json and rng.pt are written, the folder renamed into place, and older checkpoints
// beyond `keep` removed. Returns the final folder.
std::string save_checkpoint(const std::string& run_dir, const TrainState& state, int64_t keep,
                            const std::function<void(const std::string& dir)>& write_payload);

// The newest complete checkpoint folder (has state.json), ignoring temporary folders.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Reads DIR/state.json (version checked) and restores the global RNG from DIR/rng.pt.
TrainState load_checkpoint_state(const std::string& dir);

// A lathe::Error unless the checkpoint in `dir` was written by a run of `world_size` processes.
void check_resume_world_size(const TrainState& state, int64_t world_size, const std::string& dir);

// The default CPU generator's state (dropout, random init), saved and restored exactly.
void save_rng_state(const std::string& path);
void load_rng_state(const std::string& path);

// Appends one JSON line and flushes (a crash loses at most the line being written).
void append_jsonl(const std::string& path, const nlohmann::json& record);

}  // namespace lathe
