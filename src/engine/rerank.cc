#include "engine/rerank.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace contextd {
namespace {

std::vector<ScoredSlot> Best(std::vector<ScoredSlot> all, size_t k) {
  // Ties break by slot so results are deterministic.
  auto better = [](const ScoredSlot& a, const ScoredSlot& b) {
    return a.score != b.score ? a.score > b.score : a.slot < b.slot;
  };
  if (all.size() > k) {
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), better);
    all.resize(k);
  } else {
    std::sort(all.begin(), all.end(), better);
  }
  return all;
}

// Sums scores of equal slots (lists are short: sort by slot and merge neighbours).
std::vector<ScoredSlot> SumBySlot(std::vector<ScoredSlot> parts) {
  std::sort(parts.begin(), parts.end(), [](const ScoredSlot& a, const ScoredSlot& b) { return a.slot < b.slot; });
  std::vector<ScoredSlot> out;
  for (size_t i = 0; i < parts.size();) {
    float score = parts[i].score;
    size_t j = i + 1;
    for (; j < parts.size() && parts[j].slot == parts[i].slot; ++j) score += parts[j].score;
    out.push_back({score, parts[i].slot});
    i = j;
  }
  return out;
}

// Appends weight * the list's scores min-max normalised to [0, 1] (all 1 when equal).
void AddMinMax(const std::vector<ScoredSlot>& list, float weight, std::vector<ScoredSlot>* parts) {
  if (list.empty()) return;
  float lo = list[0].score, hi = list[0].score;
  for (const auto& h : list) {
    lo = std::min(lo, h.score);
    hi = std::max(hi, h.score);
  }
  for (const auto& h : list) {
    const float norm = hi > lo ? (h.score - lo) / (hi - lo) : 1.0f;
    parts->push_back({weight * norm, h.slot});
  }
}

}  // namespace

std::vector<ScoredSlot> FuseRrf(const std::vector<std::vector<ScoredSlot>>& lists, size_t k, float rrf_k) {
  std::vector<ScoredSlot> parts;
  for (const auto& list : lists) {
    for (size_t r = 0; r < list.size(); ++r) parts.push_back({RrfTerm(r, rrf_k), list[r].slot});
  }
  return Best(SumBySlot(std::move(parts)), k);
}

std::vector<ScoredSlot> FuseWeighted(const std::vector<ScoredSlot>& vector_hits,
                                     const std::vector<ScoredSlot>& keyword_hits, float alpha, size_t k) {
  std::vector<ScoredSlot> parts;
  AddMinMax(vector_hits, alpha, &parts);
  AddMinMax(keyword_hits, 1.0f - alpha, &parts);
  return Best(SumBySlot(std::move(parts)), k);
}

float ListConfidence(const std::vector<ScoredSlot>& hits) {
  if (hits.size() < 2) return 0.0f;
  double sum = 0, sq = 0;
  for (const auto& h : hits) {
    sum += h.score;
    sq += static_cast<double>(h.score) * h.score;
  }
  const double n = static_cast<double>(hits.size()), mean = sum / n;
  const double sd = std::sqrt(std::max(0.0, sq / n - mean * mean));
  if (std::abs(mean) < 1e-12) return sd > 0 ? 1.0f : 0.0f;
  return static_cast<float>(std::min(1.0, sd / std::abs(mean)));
}

std::vector<ScoredSlot> FuseAuto(const std::vector<ScoredSlot>& vector_hits,
                                 const std::vector<ScoredSlot>& keyword_hits, size_t k, float* alpha_out) {
  const float cv = ListConfidence(vector_hits), ck = ListConfidence(keyword_hits);
  float alpha = cv + ck > 0 ? cv / (cv + ck) : 0.5f;
  if (keyword_hits.empty()) alpha = 1.0f;
  if (vector_hits.empty()) alpha = 0.0f;
  if (alpha_out != nullptr) *alpha_out = alpha;
  std::vector<ScoredSlot> parts;
  AddMinMax(vector_hits, alpha, &parts);
  float top = 0;
  for (const auto& h : keyword_hits) top = std::max(top, h.score);
  if (top > 0) {
    for (const auto& h : keyword_hits) parts.push_back({(1.0f - alpha) * std::max(0.0f, h.score) / top, h.slot});
  } else {
    AddMinMax(keyword_hits, 1.0f - alpha, &parts);
  }
  return Best(SumBySlot(std::move(parts)), k);
}

std::vector<ScoredSlot> Mmr(const std::vector<ScoredSlot>& candidates, const float* vectors, size_t dim, float lambda,
                            size_t k) {
  const size_t n = candidates.size();
  if (n == 0 || k == 0) return {};
  float lo = candidates[0].score, hi = candidates[0].score;
  for (const auto& c : candidates) {
    lo = std::min(lo, c.score);
    hi = std::max(hi, c.score);
  }
  std::vector<float> inv_norm(n);
  for (size_t i = 0; i < n; ++i) {
    double sq = 0;
    for (size_t d = 0; d < dim; ++d) sq += static_cast<double>(vectors[i * dim + d]) * vectors[i * dim + d];
    inv_norm[i] = sq > 0 ? static_cast<float>(1.0 / std::sqrt(sq)) : 0.0f;
  }
  // max_sim[i]: the highest cosine between candidate i and anything picked so far.
  std::vector<float> max_sim(n, -1.0f);
  std::vector<bool> picked(n, false);
  std::vector<ScoredSlot> out;
  while (out.size() < std::min(k, n)) {
    size_t best = n;
    float best_value = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < n; ++i) {
      if (picked[i]) continue;
      const float relevance = hi > lo ? (candidates[i].score - lo) / (hi - lo) : 1.0f;
      const float penalty = out.empty() ? 0.0f : max_sim[i];
      const float value = lambda * relevance - (1.0f - lambda) * penalty;
      if (value > best_value) {
        best_value = value;
        best = i;
      }
    }
    picked[best] = true;
    out.push_back(candidates[best]);
    for (size_t i = 0; i < n; ++i) {
      if (picked[i]) continue;
      float dot = 0;
      for (size_t d = 0; d < dim; ++d) dot += vectors[i * dim + d] * vectors[best * dim + d];
      max_sim[i] = std::max(max_sim[i], dot * inv_norm[i] * inv_norm[best]);
    }
  }
  return out;
}

}  // namespace contextd
