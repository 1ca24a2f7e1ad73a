// QueryCache: a collection's cache of query results that knows which answers a write made
// stale.
//
// Tiers of lookup: exact (the normalised query text, or the query vector, plus every other
// parameter) and semantic (a cached query with the same parameters whose embedding has
// cosine >= the threshold with the new one).
//
// Invalidation, run by every write after it is visible to searches:
//   1. an entry whose results contain a changed (upserted or deleted) document goes; so
//      does one that names a changed document among what it depends on (doc_ids: the
//      hits, the documents they cite, and for entries kept across writes every candidate
//      they were ranked from);
//   2. a vector-mode entry a new chunk could now enter goes: when the chunk scores at least
//      the entry's k-th score against the cached query (any score when the entry had fewer
//      than k results). A vector score never changes once a chunk is indexed, so entries
//      the rules spare are exactly what a fresh search returns.
//   3. keyword and hybrid entries (uses_terms) go unless the owner's `keep_terms` says the
//      write's new chunks cannot enter them. BM25 scores still move with every write (idf
//      and the average length change with the corpus), and that alone can reorder results:
//      the stale-hit suite caught a swap after a write that shared no term with the query.
//      So such an entry is not served again until the owner has re-checked it against the
//      statistics now: a lookup that finds one re-checked since the last write returns
//      it; otherwise it returns it marked `recheck`, and the owner calls Confirm() with its
//      verdict (engine/keyword_evidence.h has the rules the engine uses).
//
// Races: a result computed while a write was in flight is not cached. Insert() takes the
// write count the query saw before searching (writes_started() and writes_done() equal),
// and refuses when a write has started since; BeginWrite() counts under the same lock, so
// every entry either predates a write's invalidation or is refused.
//
// Tiers: hot, warm and cold, each an LRU list with its own size (bytes) and TTL. New
// entries enter hot; a hit promotes an entry one tier up; an entry pushed out of a full
// tier moves down one (its TTL restarting at the new tier's), and out of cold it is gone.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cache/verifier.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "embed/cache_key.h"
#include "index/distance.h"

namespace contextd {

struct QueryCacheTier {
  size_t max_bytes;
  int64_t ttl_ms;
};

struct QueryCacheOptions {
  bool enabled = true;
  float threshold = 0.98f;  // cosine for a semantic hit
  // hot, warm, cold: a small fast-turning hot set, most of the bytes warm, a long cold tail.
  std::array<QueryCacheTier, 3> tiers = {QueryCacheTier{8ull << 20, 600 * 1000},
                                         QueryCacheTier{40ull << 20, 3600 * 1000},
                                         QueryCacheTier{16ull << 20, 6 * 3600 * 1000}};
};

inline const char* QueryCacheTierName(int tier) { return tier == 0 ? "hot" : tier == 1 ? "warm" : "cold"; }

// What the collection stores and gets back: the result (opaque to the cache) plus what
// invalidation needs.
template <typename Result>
struct QueryCacheEntry {
  std::string params_key;           // every parameter but the query itself
  std::vector<float> query_vector;  // normalised for cosine; empty for keyword queries
  bool semantic = true;             // the semantic tier may find it (by query_vector)
  std::unordered_set<std::string> doc_ids;
  bool uses_terms = false, uses_vector = false;  // keyword side (BM25), vector side
  // What the query's text pins down (numbers, names, negation...), for verifying a
  // semantic hit; empty for a query by vector.
  std::optional<PromptFacts> facts;
  // Vector mode: the k-th score (lowest bar a new chunk must reach), or nullopt when the
  // result had fewer than k hits. Hybrid: the lowest score of its vector list, likewise.
  std::optional<float> vector_bar;
  Result result;
  size_t bytes = 0;
};

// The new state a write made visible, for invalidation.
struct WriteChange {
  std::vector<std::string> doc_ids;               // upserted or deleted
  std::vector<std::vector<float>> chunk_vectors;  // new chunks, as the index scores them
};

// What a lookup found. `recheck`: a keyword or hybrid answer that writes may have moved;
// it must pass Confirm() before it is served (and counts as a hit only then).
template <typename Result>
struct QueryCacheHit {
  Result result;
  int tier = 0;
  float similarity = 1;
  bool semantic = false;
  bool recheck = false;
  EmbedKey key;
  uint64_t writes = 0;  // the writes done when it was found, for Confirm()
};

struct QueryCacheStats {
  uint64_t exact_hits = 0, semantic_hits = 0, misses = 0, invalidated = 0;
  std::array<uint64_t, 3> tier_hits{};  // hits by the tier the entry was in
  std::array<size_t, 3> tier_entries{}, tier_bytes{};
  // Sampled hits recomputed in the background, and those whose fresh top k differed.
  uint64_t verified = 0, verify_mismatches = 0;
  size_t entries = 0, bytes = 0;
};

template <typename Result>
class QueryCache {
 public:
  using Entry = QueryCacheEntry<Result>;

  QueryCache(QueryCacheOptions options, Metric metric, int dim, const Clock* clock)
      : options_(options), metric_(metric), dim_(dim), clock_(clock) {}

  bool enabled() const { return options_.enabled; }
  const QueryCacheOptions& options() const { return options_; }

  // The exact key of a query: its normalised text (or vector bytes) and parameters.
  static EmbedKey ExactKey(const std::string& params_key, const std::string& text_or_vector_bytes) {
    return MakeEmbedKey(params_key, text_or_vector_bytes);
  }

  using Hit = QueryCacheHit<Result>;

  std::optional<Hit> LookupExact(const EmbedKey& key) {
    MutexLock lock(&mu_);
    auto it = exact_.find(key);
    if (it == exact_.end() || Expired(*it->second) || !Servable(*it->second)) return std::nullopt;
    return Found(it->second, 1.0f, /*semantic=*/false);
  }

  // The best cached query with the same parameters at cosine >= threshold that `accept`
  // (when given) accepts; it runs under the cache's lock, on the few over the threshold.
  std::optional<Hit> LookupSemantic(const std::string& params_key, const std::vector<float>& query_vector,
                                    const std::function<bool(const Entry&, float)>& accept = {}) {
    const std::vector<float> q = Normalised(query_vector);
    MutexLock lock(&mu_);
    auto bucket = by_params_.find(params_key);
    if (bucket == by_params_.end() || query_vector.empty()) return std::nullopt;
    // One batched pass over the bucket's contiguous vectors; expiry is checked only for
    // the few above the threshold.
    const Bucket& b = bucket->second;
    sims_.resize(b.nodes.size());
    DotProductBatch(q.data(), b.rows.data(), b.nodes.size(), static_cast<size_t>(dim_), sims_.data());
    candidates_.clear();
    for (size_t i = 0; i < sims_.size(); ++i) {
      if (sims_[i] >= options_.threshold && !Expired(*b.nodes[i]) && Servable(*b.nodes[i]))
        candidates_.emplace_back(sims_[i], i);
    }
    std::sort(candidates_.begin(), candidates_.end(), std::greater<>());
    for (const auto& [sim, i] : candidates_) {
      if (accept && !accept(*b.nodes[i]->entry, sim)) continue;
      return Found(b.nodes[i]->self, sim, /*semantic=*/true);
    }
    return std::nullopt;
  }

  // The owner's verdict on a hit marked `recheck`, reached with the state as of
  // hit.writes: when no write has started since, a failed check drops the entry, and a
  // passed one lets `update` refresh its result (scores move with statistics), marks it
  // checked, counts the hit and returns true. Otherwise (a write came between, or the
  // entry went) it returns false and the lookup is a miss.
  bool Confirm(const Hit& hit, bool passed, const std::function<void(Result*)>& update) {
    MutexLock lock(&mu_);
    if (writes_started_ != hit.writes || writes_done_ != hit.writes) return false;
    auto it = exact_.find(hit.key);
    if (it == exact_.end()) return false;
    if (!passed) {
      EraseLocked(it->second);
      ++stats_.invalidated;
      return false;
    }
    if (update) update(&it->second->entry->result);
    it->second->checked_at = hit.writes;
    ++(hit.semantic ? stats_.semantic_hits : stats_.exact_hits);
    Promote(it->second);
    return true;
  }

  // Writes call BeginWrite() before their changes become visible and EndWrite() (which
  // invalidates) after.
  void BeginWrite() {
    MutexLock lock(&mu_);
    ++writes_started_;
  }
  // keep_terms(entry), for keyword and hybrid entries: whether none of the write's new
  // chunks can enter it (rule 3); without it they all go.
  void EndWrite(const WriteChange& change, const std::function<bool(const Entry&)>& keep_terms = {}) {
    MutexLock lock(&mu_);
    std::unordered_set<std::string> changed(change.doc_ids.begin(), change.doc_ids.end());
    std::vector<std::vector<float>> chunks;
    for (const auto& v : change.chunk_vectors) chunks.push_back(Normalised(v));
    for (auto& list : tiers_) {
      for (auto it = list.begin(); it != list.end();) {
        if (Stale(*it->entry, changed, chunks, keep_terms)) {
          it = EraseLocked(it);
          ++stats_.invalidated;
        } else {
          ++it;
        }
      }
    }
    ++writes_done_;
  }
  // Drops every entry and refuses results computed before the call: for changes under all
  // of them at once (a shard split moves chunks between indexes and routing with them).
  void Clear() {
    MutexLock lock(&mu_);
    ++writes_started_;
    ++writes_done_;
    for (auto& list : tiers_) {
      stats_.invalidated += list.size();
      list.clear();
    }
    exact_.clear();
    by_params_.clear();
    bytes_ = {};
    term_entries_ = 0;
  }
  // The write count to pass to Insert(): nullopt while a write is in flight (its result
  // would not be safe to cache).
  std::optional<uint64_t> Snapshot() const {
    MutexLock lock(&mu_);
    if (writes_started_ != writes_done_) return std::nullopt;
    return writes_started_;
  }
  // Caches a result computed at `snapshot`, unless a write has started since.
  void Insert(uint64_t snapshot, const EmbedKey& key, Entry entry) {
    if (!entry.query_vector.empty()) entry.query_vector = Normalised(entry.query_vector);
    MutexLock lock(&mu_);
    if (writes_started_ != snapshot) return;
    if (auto old = exact_.find(key); old != exact_.end()) EraseLocked(old->second);
    tiers_[0].push_front(Node{});
    auto node = tiers_[0].begin();
    node->self = node;
    node->key = key;
    node->tier = 0;
    node->expires_ms = clock_->WallMillis() + options_.tiers[0].ttl_ms;
    node->entry = std::make_unique<Entry>(std::move(entry));
    node->checked_at = writes_done_;
    term_entries_ += node->entry->uses_terms;
    bytes_[0] += node->entry->bytes;
    exact_[key] = node;
    if (!node->entry->query_vector.empty() && node->entry->semantic) {
      Bucket& b = by_params_[node->entry->params_key];
      node->row = b.nodes.size();
      b.nodes.push_back(&*node);
      b.rows.insert(b.rows.end(), node->entry->query_vector.begin(), node->entry->query_vector.end());
    }
    Rebalance();
  }

  // Whether any keyword or hybrid entry is held (a write need not work out what could
  // enter them otherwise).
  bool holds_term_entries() const {
    MutexLock lock(&mu_);
    return term_entries_ > 0;
  }
  size_t size() const {
    MutexLock lock(&mu_);
    return tiers_[0].size() + tiers_[1].size() + tiers_[2].size();
  }
  void CountVerified(bool mismatch) {
    MutexLock lock(&mu_);
    ++stats_.verified;
    stats_.verify_mismatches += mismatch;
  }
  // A query the cache could not answer (it was searched).
  void CountMiss() {
    MutexLock lock(&mu_);
    ++stats_.misses;
  }
  QueryCacheStats stats() const {
    MutexLock lock(&mu_);
    QueryCacheStats s = stats_;
    for (int t = 0; t < 3; ++t) {
      s.tier_entries[t] = tiers_[t].size();
      s.tier_bytes[t] = bytes_[t];
      s.entries += tiers_[t].size();
      s.bytes += bytes_[t];
    }
    return s;
  }

 private:
  struct Node;
  using Iter = typename std::list<Node>::iterator;
  struct Node {
    Iter self;
    EmbedKey key;
    int tier = 0;
    int64_t expires_ms = 0;  // in its current tier
    std::unique_ptr<Entry> entry;
    size_t row = SIZE_MAX;    // in its params bucket; SIZE_MAX without a query vector
    uint64_t checked_at = 0;  // writes done when its answer was last known to stand
  };
  // The cached query vectors of one parameter set, contiguous for a batched scan; a
  // removed row is filled by the last one, so removal costs one row's copy.
  struct Bucket {
    std::vector<float> rows;   // nodes.size() * dim
    std::vector<Node*> nodes;  // by row
  };

  bool Expired(const Node& n) const { return n.expires_ms <= clock_->WallMillis(); }
  bool NeedsRecheck(const Node& n) const REQUIRES(mu_) { return n.entry->uses_terms && n.checked_at != writes_done_; }
  // An entry that needs a re-check cannot get one while a write is in flight (the state
  // it would be checked against is moving): until the write ends it is not served.
  bool Servable(const Node& n) const REQUIRES(mu_) { return !NeedsRecheck(n) || writes_started_ == writes_done_; }
  // A lookup's answer; a hit that needs no re-check counts and is promoted now, one that
  // does in Confirm().
  Hit Found(Iter it, float similarity, bool semantic) REQUIRES(mu_) {
    Hit hit{it->entry->result, it->tier, similarity, semantic, NeedsRecheck(*it), it->key, writes_done_};
    if (!hit.recheck) {
      ++(semantic ? stats_.semantic_hits : stats_.exact_hits);
      Promote(it);
    }
    return hit;
  }
  // Moves an entry to the front of tier `to` (splice keeps iterators and pointers valid).
  void MoveTo(Iter it, int to) REQUIRES(mu_) {
    bytes_[it->tier] -= it->entry->bytes;
    bytes_[to] += it->entry->bytes;
    tiers_[to].splice(tiers_[to].begin(), tiers_[it->tier], it);
    it->tier = to;
    it->expires_ms = clock_->WallMillis() + options_.tiers[to].ttl_ms;
  }
  // A hit: one tier up (hot stays hot, most recent).
  void Promote(Iter it) REQUIRES(mu_) {
    if (it->tier == 0) {
      tiers_[0].splice(tiers_[0].begin(), tiers_[0], it);
    } else {
      MoveTo(it, it->tier - 1);
    }
    Rebalance();
  }
  // Overfull tiers push their least recent entries one tier down; cold's leave.
  void Rebalance() REQUIRES(mu_) {
    for (int t = 0; t < 3; ++t) {
      while (bytes_[t] > options_.tiers[t].max_bytes && !tiers_[t].empty()) {
        Iter last = std::prev(tiers_[t].end());
        if (t == 2) {
          EraseLocked(last);
        } else {
          MoveTo(last, t + 1);
        }
      }
    }
  }

  Iter EraseLocked(Iter it) REQUIRES(mu_) {
    exact_.erase(it->key);
    if (it->row != SIZE_MAX) {
      auto bucket = by_params_.find(it->entry->params_key);
      Bucket& b = bucket->second;
      const size_t dim = static_cast<size_t>(dim_), last = b.nodes.size() - 1;
      if (it->row != last) {
        b.nodes[it->row] = b.nodes[last];
        b.nodes[it->row]->row = it->row;
        std::copy_n(&b.rows[last * dim], dim, &b.rows[it->row * dim]);
      }
      b.nodes.pop_back();
      b.rows.resize(last * dim);
      if (b.nodes.empty()) by_params_.erase(bucket);
    }
    bytes_[it->tier] -= it->entry->bytes;
    term_entries_ -= it->entry->uses_terms;
    return tiers_[it->tier].erase(it);
  }

  std::vector<float> Normalised(const std::vector<float>& v) const {
    if (metric_ != Metric::kCosine) return v;
    double sq = 0;
    for (float x : v) sq += static_cast<double>(x) * x;
    std::vector<float> out(v);
    if (sq > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(sq));
      for (float& x : out) x *= inv;
    }
    return out;
  }

  // The chunk's score against the cached query, as the index computes it.
  float Score(const std::vector<float>& query, const std::vector<float>& chunk) const {
    const size_t d = static_cast<size_t>(dim_);
    return metric_ == Metric::kL2 ? -L2Squared(query.data(), chunk.data(), d)
                                  : DotProduct(query.data(), chunk.data(), d);
  }

  bool Stale(const Entry& e, const std::unordered_set<std::string>& changed,
             const std::vector<std::vector<float>>& chunks, const std::function<bool(const Entry&)>& keep_terms) const {
    for (const auto& id : e.doc_ids) {
      if (changed.count(id)) return true;
    }
    if (e.uses_vector) {
      for (const auto& c : chunks) {
        if (!e.vector_bar || Score(e.query_vector, c) >= *e.vector_bar) return true;
      }
    }
    return e.uses_terms && !(keep_terms && keep_terms(e));  // rule 3
  }

  const QueryCacheOptions options_;
  const Metric metric_;
  const int dim_;
  const Clock* clock_;
  mutable Mutex mu_;
  std::array<std::list<Node>, 3> tiers_ GUARDED_BY(mu_);  // hot, warm, cold; front = most recent
  std::unordered_map<EmbedKey, Iter, EmbedKeyHash> exact_ GUARDED_BY(mu_);
  std::unordered_map<std::string, Bucket> by_params_ GUARDED_BY(mu_);
  std::vector<float> sims_ GUARDED_BY(mu_);                           // LookupSemantic's scratch
  std::vector<std::pair<float, size_t>> candidates_ GUARDED_BY(mu_);  // likewise
  std::array<size_t, 3> bytes_ GUARDED_BY(mu_){};
  size_t term_entries_ GUARDED_BY(mu_) = 0;  // entries with uses_terms
  uint64_t writes_started_ GUARDED_BY(mu_) = 0, writes_done_ GUARDED_BY(mu_) = 0;
  QueryCacheStats stats_ GUARDED_BY(mu_);
};

}  // namespace contextd
