// GloveEmbedder: SIF-weighted average of GloVe word vectors (Arora et al., 2017), normalised.
//
// Word weights are a / (a + p(w)) with a = 1e-3 and p(w) estimated from the word's frequency
// rank by Zipf's law, since the GloVe file is ordered by frequency but carries no counts.
// (The common-component removal of full SIF needs corpus statistics and is left out.)
//
// The vectors come from a file written by scripts/convert_glove.js and are memory-mapped:
//   [0,8) "CTXGLV01"  [8,12) dim u32  [12,16) count u32  [16,24) vocab offset u64
//   [24,32) vocab bytes u64  [32,40) codes offset u64  [40,48) scales offset u64
//   vocab: words joined by '\n', most frequent first; codes: count*dim int8;
//   scales: count f32, vector i = codes[i] * scales[i].
//
// Thread safety: immutable after Open(); safe for concurrent use.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "embed/embedder.h"

namespace contextd {

class GloveEmbedder final : public Embedder {
 public:
  static StatusOr<std::unique_ptr<GloveEmbedder>> Open(const std::string& path);
  ~GloveEmbedder() override;

  std::string model() const override { return "glove-6b-100d"; }
  int dim() const override { return dim_; }
  Status Embed(const std::vector<std::string_view>& texts, float* out) const override;

  size_t vocab_size() const { return count_; }

 private:
  GloveEmbedder() = default;
  void EmbedOne(std::string_view text, float* out) const;

  void* map_ = nullptr;
  size_t map_size_ = 0;
  int dim_ = 0;
  size_t count_ = 0;
  const int8_t* codes_ = nullptr;
  const char* scales_ = nullptr;                          // unaligned f32s
  std::vector<float> weights_;                            // SIF weight by rank
  std::unordered_map<std::string_view, uint32_t> index_;  // views into the mapping
};

}  // namespace contextd
