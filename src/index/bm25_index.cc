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
    if (inserted) postings_.emplace_back();
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
  // Per-thread dense accumulator, reused across queries; only touched slots are reset.
  thread_local std::vector<float> acc;
  thread_local std::vector<uint32_t> touched;
  if (acc.size() < docs_.size()) acc.resize(docs_.size(), 0.0f);
  touched.clear();

  // Per query: idf once per term, and the length norm k1 * (1 - b + b * dl / avgdl) as one
  // multiply-add per posting.
  const double avgdl = doc_count_ ? static_cast<double>(total_length_) / doc_count_ : 1.0;
  const float norm_base = params_.k1 * (1.0f - params_.b);
  const float norm_slope = static_cast<float>(params_.k1 * params_.b / avgdl);
  std::vector<uint32_t> seen;
  for (const auto& t : query_terms) {
    auto it = terms_.find(t);
    if (it == terms_.end()) continue;
    uint32_t term = it->second;
    if (std::find(seen.begin(), seen.end(), term) != seen.end()) continue;
    seen.push_back(term);
    const auto& list = postings_[term];
    const double df = static_cast<double>(list.size());
    const float idf = static_cast<float>(std::log(1.0 + (doc_count_ - df + 0.5) / (df + 0.5)));
    for (const Posting& p : list) {
      if (acc[p.slot] == 0.0f) touched.push_back(p.slot);
      const float tf = static_cast<float>(p.tf);
      acc[p.slot] += idf * tf / (tf + norm_base + norm_slope * static_cast<float>(lengths_[p.slot]));
    }
  }
  TopK top(k);
  for (uint32_t slot : touched) {
    float score = acc[slot];
    acc[slot] = 0.0f;
    if (top.Full() && score < top.Threshold()) continue;
    if (filter && !filter(slot)) continue;
    top.Push(score, slot);
  }
  return top.Take();
}

}  // namespace contextd
