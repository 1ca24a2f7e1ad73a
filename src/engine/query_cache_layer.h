// QueryCacheLayer: the query cache in front of a collection's searches. A query passes
// through it in steps: Begin() (before anything else, so a result computed across a
// write is never cached), FindExact() (before embedding: an exact repeat needs none),
// FindSimilar() (after embedding: a cached query whose embedding is close enough), and
// Store() after a search. Writes call BeginWrite()/EndWrite() around making their change
// visible, which drops the entries it made stale (cache/query_cache.h has the rules).
//
// Keyword and hybrid answers are kept across writes that cannot change them: each carries
// its KeywordEvidence (engine/keyword_evidence.h); a write drops those its new chunks
// could enter, and a hit on one that writes may have moved is re-checked against the
// index's statistics now (read through the owner's `stats` function) before it is served.
//
// Hits are checked by sampling: a background thread recomputes a share of them
// (cache_verify_fraction), bypassing the cache, and counts those whose fresh top k
// differs, which /metrics reports as a measured staleness rate.
//
// Thread safety: safe for concurrent use. The search given to StartVerifier() runs on the
// verifier's thread until Stop(), so the owner calls Stop() before what it reads goes.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cache/query_cache.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "engine/collection_types.h"
#include "engine/keyword_evidence.h"
#include "engine/query_executor.h"
#include "engine/requests.h"

namespace contextd {

class QueryCacheLayer {
 public:
  // `stats` reads the statistics of an evidence's terms now, under the lock the index is
  // read under; it is called with no lock of the cache's held.
  using StatsReader = std::function<KeywordEvidence::Stats(const KeywordEvidence&)>;
  QueryCacheLayer(const CollectionConfig& config, const Clock* clock, StatsReader stats);
  ~QueryCacheLayer();

  // Starts the sampled verification of hits (when the config asks for it): `search`
  // answers a request without the cache.
  void StartVerifier(std::function<StatusOr<QueryResult>(const QueryRequest&)> search);
  // Stops and joins the verifier. Idempotent.
  void Stop();

  // One query's pass through the cache.
  struct Pass {
    bool active = false;  // the cache is on and the request did not bypass it
    std::optional<uint64_t> snapshot;
    std::string params_key;
    EmbedKey exact_key;
    std::string text;      // the query's text (empty for a query by vector), for verification
    bool semantic = true;  // the semantic tier may answer (not for a vector given with text)
  };
  // When the pass is not active, *result says why ("off" or "bypass").
  Pass Begin(const QueryRequest& req, QueryResult* result) const;
  // A cached result for this very query, marked as a hit ("exact" and its tier).
  std::optional<QueryResult> FindExact(const Pass& pass, const QueryRequest& req);
  // A cached result for a query whose embedding is within the threshold of `vector`.
  std::optional<QueryResult> FindSimilar(const Pass& pass, const QueryRequest& req, const std::vector<float>& vector);
  // Counts the miss and caches `result` (not when degraded): what it used (vector, terms),
  // the documents it holds or cites and its vector bar decide which writes make it stale.
  // Takes extras' keyword evidence.
  void Store(const Pass& pass, QueryMode mode, const std::vector<float>& vector, QueryExecutor::Extras& extras,
             const QueryResult& result);

  // Whether a write's new chunks are worth listing for EndWrite (some keyword or hybrid
  // entry could be kept). Asked after BeginWrite(), so no such entry can appear before
  // EndWrite().
  bool holds_term_entries() const { return cache_.holds_term_entries(); }
  void BeginWrite() { cache_.BeginWrite(); }
  // new_chunks: the terms of the write's new chunks; null when not known (too many to
  // list), which drops every keyword and hybrid entry.
  void EndWrite(const WriteChange& change, const std::vector<ChunkTerms>* new_chunks);
  // Drops every entry (the shard layout changed under them).
  void Clear() { cache_.Clear(); }
  QueryCacheStats stats() const { return cache_.stats(); }

 private:
  // What the cache holds per query: the answer, and for keyword and hybrid answers what
  // they rest on.
  struct Cached {
    QueryResult result;
    std::shared_ptr<const KeywordEvidence> evidence;
  };
  using Cache = QueryCache<Cached>;
  // A hit's answer, re-checked first when writes may have moved it; nullopt when it no
  // longer stands (or a write came between).
  std::optional<QueryResult> Serve(Cache::Hit& hit);  // takes hit.result
  void MaybeVerify(const QueryRequest& req, const QueryResult& served);
  void VerifyLoop();

  const float verify_fraction_;
  Cache cache_;
  const StatsReader stats_;
  std::function<StatusOr<QueryResult>(const QueryRequest&)> search_;
  Mutex verify_mu_;
  std::condition_variable verify_cv_;
  std::deque<std::pair<QueryRequest, std::vector<std::string>>> verify_queue_ GUARDED_BY(verify_mu_);
  bool verify_stop_ GUARDED_BY(verify_mu_) = false;
  std::thread verifier_;
};

}  // namespace contextd
