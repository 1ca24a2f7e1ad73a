#include "embed/hash_embedder.h"

#include <cmath>

#include "common/hash.h"

namespace contextd {

HashEmbedder::HashEmbedder(int dim) : dim_(dim), analyzer_(std::move(MakeAnalyzer("english").value())) {}

Status HashEmbedder::Embed(const std::vector<std::string_view>& texts, float* out) const {
  std::vector<std::string> terms;
  for (size_t i = 0; i < texts.size(); ++i) {
    float* row = out + i * dim_;
    std::fill(row, row + dim_, 0.0f);
    analyzer_->Analyze(texts[i], &terms);
    auto add = [&](std::string_view feature, float weight) {
      uint64_t h = Hash64(feature, 0x9e3779b97f4a7c15ULL);
      row[h % static_cast<uint64_t>(dim_)] += (h >> 63) ? weight : -weight;
    };
    for (size_t t = 0; t < terms.size(); ++t) {
      add(terms[t], 1.0f);
      if (t + 1 < terms.size()) add(terms[t] + " " + terms[t + 1], 0.5f);
    }
    double norm = 0;
    for (int j = 0; j < dim_; ++j) norm += static_cast<double>(row[j]) * row[j];
    if (norm > 0) {
      float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (int j = 0; j < dim_; ++j) row[j] *= inv;
    }
  }
  return Status::Ok();
}

}  // namespace contextd
