// Split: seeded, deterministic train/val/test assignment, stratified by template family,
// with optional whole-family hold-out (held-out families go to test only, measuring
// generalisation rather than memorisation). Questions that are equal after normalisation
// (case, spaces, punctuation, full-width forms) form one group that never crosses splits.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/example.h"

namespace lathe::data {

struct SplitOptions {
  uint64_t seed = 1;
  double val_fraction = 0.1;
  double test_fraction = 0.1;
  std::vector<std::string> holdout_families;  // all of their examples go to test
};

struct DatasetSplits {
  std::vector<Example> train, val, test;
};

// Lowercase ASCII, full-width → half-width (U+FF01..FF5E, U+3000), and spaces and
// punctuation (ASCII and CJK) removed.
std::string normalize_question(const std::string& question);

// Same examples and options give the same splits regardless of input order. Throws
// lathe::Error on bad fractions; runs check_no_leakage before returning.
DatasetSplits split_examples(const std::vector<Example>& examples, const SplitOptions& options);

// Throws lathe::Error naming the first problem: an id in two splits, a normalised question
// in two splits, or a held-out family outside test.
void check_no_leakage(const DatasetSplits& splits, const std::vector<std::string>& holdout_families = {});

}  // namespace lathe::data
