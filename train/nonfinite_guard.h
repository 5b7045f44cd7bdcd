// Numerical faults in a training loop: a step whose loss or gradient norm is NaN or infinite
// is skipped (no optimizer update, a warning, a counter in the metrics), since one bad batch
// should not end a long run; `limit` such steps in a row stop the run with an error instead,
// so a diverged run never goes on to write a NaN adapter. The run folder keeps its last good
// checkpoint either way.
#pragma once
#include <cstdint>
#include <string>

namespace lathe {

class NonFiniteGuard {
 public:
  // limit_key names the config key of the limit in the error ("training.max_nonfinite_steps").
  NonFiniteGuard(int64_t limit, std::string limit_key) : limit_(limit), limit_key_(std::move(limit_key)) {}

  // True when the step may update the weights. After `limit` rejected steps in a row, throws
  // lathe::Error naming the step, the values and the key.
  bool accept(double loss, double grad_norm, const std::string& step_name);

  int64_t skipped() const { return skipped_; }  // rejected steps since the run (re)started

 private:
  int64_t limit_;
  std::string limit_key_;
  int64_t skipped_ = 0, in_a_row_ = 0;
};

}  // namespace lathe
