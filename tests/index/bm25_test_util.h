// Test helper for the keyword index: a slot's terms in an order fit for comparing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "index/bm25_index.h"

namespace contextd {

using TermCounts = std::vector<std::pair<std::string, uint16_t>>;

// Every distinct term of an indexed slot with its count, sorted by term; its length in *len.
inline TermCounts SortedTermsOf(const Bm25Index& index, uint32_t slot, uint32_t* len) {
  TermCounts out;
  index.TermsOf(slot, len, &out);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace contextd
