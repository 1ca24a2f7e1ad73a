// Analyzer: turns text into index terms for BM25 (words, case-folded, stopwords dropped,
// Snowball-stemmed).
//
// Thread safety: Analyze() is safe for concurrent use (the stemmer state is per thread).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace contextd {

class Analyzer {
 public:
  virtual ~Analyzer() = default;
  virtual std::string name() const = 0;
  // Appends the terms of `text`, in order, to `terms` (cleared first).
  virtual void Analyze(std::string_view text, std::vector<std::string>* terms) const = 0;
};

// "english": fold case, drop English stopwords, Porter2 (Snowball English) stemming.
// "standard": fold case only. "none": exact words.
StatusOr<std::unique_ptr<Analyzer>> MakeAnalyzer(std::string_view name);

}  // namespace contextd
