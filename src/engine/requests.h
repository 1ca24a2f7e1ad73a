// The engine's typed requests: a collection's config, a document to upsert, a query. The
// server reads them from JSON bodies (server/request_codec.h) and validates them there,
// before anything is changed; the engine takes them as given. CollectionConfig keeps its
// own stored form (ToJson/FromStored), which is also what a create mutation carries.
//
// Thread safety: free functions and values.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "engine/shards.h"
#include "index/distance.h"
#include "index/filter.h"
#include "text/chunker.h"

namespace contextd {

struct CollectionConfig {
  std::string embedder = "glove";  // "glove", "hash" or "none"
  std::string model;               // the model that produced the vectors; empty for none
  int dim = 0;
  Metric metric = Metric::kCosine;
  ChunkingOptions chunking;
  std::string analyzer = "english";
  int hnsw_m = 16;  // "index": {"M": .., "ef_construction": ..}
  int hnsw_ef_construction = 200;
  bool int8 = false;  // "index": {"quantization": "int8"}: graph walks int8 codes
  // "cache": {"enabled", "threshold", "verify_fraction", "tiers": {"hot"|"warm"|"cold":
  // {"max_mb", "ttl_s"}}}: the query-result cache.
  bool cache_enabled = true;
  float cache_threshold = 0.98f;
  std::array<int, 3> cache_tier_mb = {8, 40, 16};
  std::array<int, 3> cache_tier_ttl_s = {600, 3600, 6 * 3600};
  // Share of cache hits recomputed in the background to measure stale answers.
  float cache_verify_fraction = 0.01f;
  // "sharding": {"max_shard_chunks", "clear_margin", "probe_margin", "min_probe",
  // "max_probe_fraction"}: topic shards and query routing (engine/shards.h).
  ShardingOptions sharding;

  Json ToJson() const;
  // A config as stored by ToJson(); trusted, but still checked.
  static StatusOr<CollectionConfig> FromStored(const Json& stored);
};

// {"max_shard_chunks", "clear_margin", "probe_margin", "min_probe", "max_probe_fraction"}:
// the "sharding" object of a collection's config, also shown by GET .../shards.
Json ShardingOptionsJson(const ShardingOptions& o);

// Collection names: 1..64 of [A-Za-z0-9_-], so they are safe in paths, keys and labels.
Status ValidateCollectionName(const std::string& name);
// Document ids: 1..512 bytes of UTF-8 without control characters.
Status ValidateDocumentId(const std::string& id);

struct DocumentInput {
  std::string id;
  std::string title;
  std::string text;
  Json metadata = Json::MakeObject();
  std::optional<std::vector<float>> vector;
  // Ids of documents this one cites ("refs"); they need not exist (yet).
  std::vector<std::string> refs;
};
inline constexpr size_t kMaxRefs = 256;

enum class QueryMode { kVector, kKeyword, kHybrid };
std::string_view QueryModeName(QueryMode m);

enum class Fusion { kAuto, kRrf, kWeighted };

struct QueryRequest {
  std::string text;  // may be empty when vector is set
  std::optional<std::vector<float>> vector;
  size_t k = 10;
  size_t ef = 0;  // HNSW candidate list size; 0 = derived from k
  // Hybrid: how many candidates each list (vector, keyword) brings to the fusion; 0 =
  // derived from k (see Collection::Query).
  size_t depth = 0;
  QueryMode mode = QueryMode::kHybrid;
  Filter filter;
  // Hybrid: by default each list weighed per query by how sure it is of its order
  // (FuseAuto); or reciprocal rank fusion (k = 60, "fusion":"rrf"), or alpha * vector +
  // (1 - alpha) * keyword over min-max normalised scores ("fusion":"weighted","alpha":..).
  Fusion fusion = Fusion::kAuto;
  float alpha = 0.5f;
  // Maximal marginal relevance over the candidates ("mmr":{"lambda":0.7}): lambda *
  // relevance - (1 - lambda) * max cosine to what is already chosen.
  std::optional<float> mmr_lambda;
  // "group_by":"document": the best chunk of each document, k documents.
  bool group_by_document = false;
  // "bm25":{"k1":..,"b":..}: query-time BM25 parameters.
  std::optional<float> bm25_k1, bm25_b;
  // "bm25":{"title_boost":..}: weight of a query term's match in the title field.
  std::optional<float> title_boost;
  // "cache":"bypass" skips the collection's query cache (neither read nor filled).
  bool cache_bypass = false;
  // "shards":"all" searches every shard instead of the routed ones (to compare, or when
  // recall matters more than time).
  bool all_shards = false;
  // "routing": {"clear_margin", "probe_margin", "min_probe", "max_probe_fraction"}: this
  // query's routing instead of the collection's (a per-call search parameter).
  std::optional<ShardingOptions> routing;
  // "strategy": "auto" | "simple" | "moderate" | "complex" runs the query planner
  // (engine/planner.h) instead of one search; empty: one search as asked.
  std::string strategy;
  // "expand_refs": the best chunk of each document the results cite (refs) joins them,
  // from whichever shard holds it.
  bool expand_refs = false;
  // "mode" was in the body (the planner then keeps it for every step).
  bool mode_given = false;
  // The filter as given, canonical (members sorted at every level), for the cache key.
  std::string filter_key;
};

// The query-result cache key's parameter part: every field of `q` that can change its
// results but the query itself (text, vector) and the cache switch, canonical. Computed
// here only, from the typed request, so a /query body, a /v1/context search and a
// planner step that ask the same thing share cache entries, and any field that changes
// the answer changes the key.
std::string QueryCacheKey(const QueryRequest& q);

inline constexpr size_t kMaxK = 1000;

}  // namespace contextd
