// A seeded PRNG whose output is identical on every platform and standard library.
// std::uniform_*_distribution and std::shuffle are implementation-defined, so datasets built
// with them would differ between libstdc++ and libc++; everything in data/ draws from here.
#pragma once
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace lathe::data {

// splitmix64 (Steele, Lea, Flood 2014): tiny, full-period, good enough for sampling.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); the modulo bias is below 2^-40 for the small n used here.
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  int64_t between(int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1)));
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)

  // Index drawn with probability proportional to weights[i].
  size_t weighted(const std::vector<double>& weights) {
    double total = 0;
    for (double w : weights) total += w;
    double r = unit() * total;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (r < weights[i]) return i;
      r -= weights[i];
    }
    return weights.empty() ? 0 : weights.size() - 1;
  }

  template <typename T>
  void shuffle(std::vector<T>& items) {  // Fisher–Yates
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[below(i)]);
  }

 private:
  uint64_t state_;
};

// FNV-1a: a stable string hash for deriving per-family seeds (std::hash is not stable).
inline uint64_t stable_hash(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace lathe::data
