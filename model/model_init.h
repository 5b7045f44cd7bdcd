// Models made from nothing: named shape presets and seeded random weights, for tests,
// benchmarks, the demo and pretraining from scratch.
#pragma once
#include <string>

#include "model/hf_config.h"
#include "model/transformer.h"

namespace lathe {

// Normal(0, std) weights, ones for norms, zeros for biases; deterministic for a seed.
void init_random_weights(CausalLM& model, uint64_t seed, double std = 0.02);

// Named tiny presets for tests, the demo and benchmarks ("tiny", "qwen2.5-0.5b-shape").
ModelConfig preset_config(const std::string& name);

}  // namespace lathe
