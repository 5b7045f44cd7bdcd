// lathe::Error — the one exception type for user-facing failures (bad file, bad key, bad flag).
// The CLI catches it, prints "lathe: <message>" on one line and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace lathe {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& message) { throw Error(message); }

}  // namespace lathe
