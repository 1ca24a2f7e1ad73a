// Embedder: turns texts into fixed-size vectors. Batch-first, FAISS style.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace contextd {

class Embedder {
 public:
  virtual ~Embedder() = default;
  // The model identity stored with a collection ("glove-6b-100d", "hash-256"); vectors of
  // different models are never mixed.
  virtual std::string model() const = 0;
  virtual int dim() const = 0;
  // texts: n strings. out: n * dim() floats, caller-owned. Every output row has unit L2
  // norm, or is all zeros when the text carries nothing the model knows.
  virtual Status Embed(const std::vector<std::string_view>& texts, float* out) const = 0;
};

}  // namespace contextd
