// HashEmbedder: signed feature hashing of analyzed terms and term bigrams into `dim` buckets,
// normalised. Needs no model files, so it is the fallback when GloVe vectors are missing:
// it matches shared words, not meanings.
//
// Thread safety: immutable; safe for concurrent use.
#pragma once

#include <memory>

#include "embed/embedder.h"
#include "text/analyzer.h"

namespace contextd {

class HashEmbedder final : public Embedder {
 public:
  explicit HashEmbedder(int dim = 256);
  std::string model() const override { return "hash-" + std::to_string(dim_); }
  int dim() const override { return dim_; }
  Status Embed(const std::vector<std::string_view>& texts, float* out) const override;

 private:
  int dim_;
  std::unique_ptr<Analyzer> analyzer_;
};

}  // namespace contextd
