#include "train/nonfinite_guard.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace lathe {

bool NonFiniteGuard::accept(double loss, double grad_norm, const std::string& step_name) {
  if (std::isfinite(loss) && std::isfinite(grad_norm)) {
    in_a_row_ = 0;
    return true;
  }
  ++skipped_;
  ++in_a_row_;
  std::ostringstream what;
  what << step_name << ": loss " << loss << ", gradient norm " << grad_norm;
  if (in_a_row_ >= limit_)
    fail(what.str() + " — " + std::to_string(in_a_row_) + " steps in a row were not finite (" + limit_key_ + "=" +
         std::to_string(limit_) + "); the run stops with its last good checkpoint kept (a lower learning rate, "
         "gradient clipping or f32 may help)");
  log::warn(what.str() + " is not finite: step skipped, weights unchanged (" + std::to_string(in_a_row_) + " in a row)");
  return false;
}

}  // namespace lathe
