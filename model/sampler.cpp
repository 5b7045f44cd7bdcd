#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace lathe {

RowSampler::RowSampler(const SamplingParams& params, uint64_t seed) : params_(params), rng_(seed) {}

TokenChoice RowSampler::pick(const float* logits, int64_t vocab) {
  TokenChoice choice;
  choice.token = sample(logits, vocab);
  if (params_.logprobs >= 0 || params_.entropy) {
    // log-softmax of the raw distribution (vLLM's default logprobs mode), in double.
    const float max_logit = *std::max_element(logits, logits + vocab);
    double sum = 0, weighted = 0;  // sum_v e^(l_v - m), sum_v e^(l_v - m) (l_v - m)
    for (int64_t i = 0; i < vocab; ++i) {
      const double shifted = static_cast<double>(logits[i]) - max_logit;
      const double e = std::exp(shifted);
      sum += e;
      weighted += e * shifted;
    }
    const double log_sum = std::log(sum);
    const float log_z = max_logit + static_cast<float>(log_sum);
    choice.logprob = logits[choice.token] - log_z;
    // H = log Z - E_p[l] = log sum - E_p[l - m]
    if (params_.entropy) choice.entropy = static_cast<float>(log_sum - weighted / sum);
    if (params_.logprobs > 0) {
      const int64_t k = std::min<int64_t>(params_.logprobs, vocab);
      std::vector<int32_t> idx(vocab);
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                        [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
      for (int64_t i = 0; i < k; ++i) choice.top.emplace_back(idx[i], logits[idx[i]] - log_z);
    }
  }
  return choice;
}

int32_t RowSampler::sample(const float* logits, int64_t vocab) {
  if (params_.temperature <= 0.0) {
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  }
  const float inv_t = static_cast<float>(1.0 / params_.temperature);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b]; };

  order_.resize(vocab);
  std::iota(order_.begin(), order_.end(), 0);
  int64_t kept = vocab;
  int64_t sorted = 0;  // order_[0, sorted) is in descending logit order
  if (params_.top_k > 0 && params_.top_k < vocab) {
    kept = sorted = params_.top_k;
    std::partial_sort(order_.begin(), order_.begin() + kept, order_.end(), by_logit);
  }
  // Unnormalised softmax at temperature T over the kept candidates.
  float max_logit = -INFINITY;
  for (int64_t i = 0; i < kept; ++i) max_logit = std::max(max_logit, logits[order_[i]]);
  auto weight = [&](int64_t i) { return std::exp(static_cast<double>((logits[order_[i]] - max_logit) * inv_t)); };
  double total = 0;
  for (int64_t i = 0; i < kept; ++i) total += weight(i);

  if (params_.top_p < 1.0) {
    // Smallest prefix of the sorted candidates whose mass reaches top_p. The sorted prefix
    // widens geometrically, so a peaked distribution never sorts the whole vocabulary.
    const double target = params_.top_p * total;
    int64_t width = std::min<int64_t>(kept, 64);
    for (;;) {
      if (sorted < width) {
        std::partial_sort(order_.begin(), order_.begin() + width, order_.begin() + kept, by_logit);
        sorted = width;
      }
      double mass = 0;
      int64_t cut = -1;
      for (int64_t i = 0; i < width; ++i) {
        mass += weight(i);
        if (mass >= target) {
          cut = i + 1;
          break;
        }
      }
      if (cut > 0) {
        kept = cut;
        total = mass;
        break;
      }
      if (width == kept) break;  // rounding: keep everything
      width = std::min<int64_t>(kept, width * 8);
    }
  }
  std::uniform_real_distribution<double> uniform(0.0, total);
  const double u = uniform(rng_);
  double acc = 0;
  for (int64_t i = 0; i < kept; ++i) {
    acc += weight(i);
    if (u < acc) return order_[i];
  }
  return order_[kept - 1];
}

}  // namespace lathe
