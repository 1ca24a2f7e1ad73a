#include "index/bm25_index.h"

#include <algorithm>
#include <cmath>

namespace contextd {

void Bm25Index::Add(uint32_t slot, const std::vector<std::string>& terms) {
  if (docs_.size() <= slot) {
    docs_.resize(slot + 1);
    lengths_.resize(slot + 1, 0);
  }
  Doc& doc = docs_[slot];
  std::unordered_map<uint32_t, uint32_t> tf;
  for (const auto& t : terms) {
    auto [it, inserted] = terms_.try_emplace(t, static_cast<uint32_t>(postings_.size()));
    if (inserted) {
      postings_.emplace_back();
      max_tf_.push_back(0);
      min_length_.push_back(UINT32_MAX);
    }
    ++tf[it->second];
  }
  const uint32_t length = static_cast<uint32_t>(std::max<size_t>(terms.size(), 1));
  lengths_[slot] = length;
  doc.term_ids.clear();
  doc.term_ids.reserve(tf.size());
  for (auto [term, count] : tf) {
    auto& list = postings_[term];
    // New slots usually come last; a reused slot goes in its place.
    if (list.empty() || list.back().slot < slot) {
      list.push_back({slot, count});
    } else {
      auto pos =
          std::lower_bound(list.begin(), list.end(), slot, [](const Posting& p, uint32_t s) { return p.slot < s; });
      list.insert(pos, {slot, count});
    }
    max_tf_[term] = std::max(max_tf_[term], count);
    min_length_[term] = std::min(min_length_[term], length);
    doc.term_ids.push_back(term);
  }
  ++doc_count_;
  total_length_ += lengths_[slot];
}

void Bm25Index::Remove(uint32_t slot) {
  if (slot >= docs_.size() || lengths_[slot] == 0) return;
  Doc& doc = docs_[slot];
  for (uint32_t term : doc.term_ids) {
    auto& list = postings_[term];
    auto it = std::lower_bound(list.begin(), list.end(), slot, [](const Posting& p, uint32_t s) { return p.slot < s; });
    if (it != list.end() && it->slot == slot) list.erase(it);
  }
  total_length_ -= lengths_[slot];
  lengths_[slot] = 0;
  --doc_count_;
  doc = Doc();
}

float Bm25Index::TermScore(uint32_t tf, uint32_t df, uint32_t doc_len) const {
  const double n = static_cast<double>(doc_count_);
  const double idf = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
  const double avgdl = doc_count_ ? static_cast<double>(total_length_) / doc_count_ : 1.0;
  const double norm = params_.k1 * (1.0 - params_.b + params_.b * doc_len / avgdl);
  return static_cast<float>(idf * tf / (tf + norm));
}

std::vector<ScoredSlot> Bm25Index::Search(const std::vector<std::string>& query_terms, size_t k,
                                          const SlotFilter& filter) const {
  // Per query: idf once per term, and the length norm k1 * (1 - b + b * dl / avgdl) as one
  // multiply-add per posting.
  const double avgdl = doc_count_ ? static_cast<double>(total_length_) / doc_count_ : 1.0;
  const float norm_base = params_.k1 * (1.0f - params_.b);
  const float norm_slope = static_cast<float>(params_.k1 * params_.b / avgdl);
  struct Cursor {
    const Posting* it;
    const Posting* end;
    float idf;
    float bound;  // the most this term can add to any document's score
  };
  std::vector<Cursor> cursors;
  std::vector<uint32_t> seen;
  for (const auto& t : query_terms) {
    auto found = terms_.find(t);
    if (found == terms_.end()) continue;
    const uint32_t term = found->second;
    if (std::find(seen.begin(), seen.end(), term) != seen.end() || postings_[term].empty()) continue;
    seen.push_back(term);
    const auto& list = postings_[term];
    const double df = static_cast<double>(list.size());
    const float idf = static_cast<float>(std::log(1.0 + (doc_count_ - df + 0.5) / (df + 0.5)));
    const float tf = static_cast<float>(max_tf_[term]);
    // Slightly inflated so float rounding can never make a bound smaller than a real score.
    const float bound =
        idf * tf / (tf + norm_base + norm_slope * static_cast<float>(min_length_[term])) * 1.0001f + 1e-6f;
    cursors.push_back({list.data(), list.data() + list.size(), idf, bound});
  }
  std::sort(cursors.begin(), cursors.end(), [](const Cursor& a, const Cursor& b) { return a.bound < b.bound; });
  const size_t n = cursors.size();
  std::vector<float> prefix(n);  // prefix[i]: sum of the bounds of cursors 0..i
  for (size_t i = 0; i < n; ++i) prefix[i] = cursors[i].bound + (i ? prefix[i - 1] : 0.0f);
  auto contribution = [&](const Cursor& c) {
    const float tf = static_cast<float>(c.it->tf);
    return c.idf * tf / (tf + norm_base + norm_slope * static_cast<float>(lengths_[c.it->slot]));
  };

  TopK top(k);
  float theta = -1.0f;         // the k-th best score once there are k; scores are positive
  size_t first_essential = 0;  // cursors below this only probe, they do not propose
  while (first_essential < n) {
    uint32_t doc = UINT32_MAX;
    for (size_t i = first_essential; i < n; ++i) {
      if (cursors[i].it != cursors[i].end) doc = std::min(doc, cursors[i].it->slot);
    }
    if (doc == UINT32_MAX) break;
    float score = 0;
    for (size_t i = first_essential; i < n; ++i) {
      Cursor& c = cursors[i];
      if (c.it != c.end && c.it->slot == doc) {
        score += contribution(c);
        ++c.it;
      }
    }
    bool pruned = false;
    for (size_t i = first_essential; i-- > 0;) {
      if (score + prefix[i] <= theta) {
        pruned = true;
        break;
      }
      Cursor& c = cursors[i];
      c.it = std::lower_bound(c.it, c.end, doc, [](const Posting& p, uint32_t s) { return p.slot < s; });
      if (c.it != c.end && c.it->slot == doc) score += contribution(c);
    }
    // Documents come in slot order, so a later one never wins a tie: <= is exact.
    if (pruned || (top.Full() && score <= theta)) continue;
    if (filter && !filter(doc)) continue;
    top.Push(score, doc);
    if (top.Full()) {
      theta = top.Threshold();
      while (first_essential < n && prefix[first_essential] <= theta) ++first_essential;
    }
  }
  return top.Take();
}

}  // namespace contextd
