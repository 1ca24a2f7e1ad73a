// The typed results of a collection's calls (engine/services.h): what an upsert did, a
// query's hits and how it was answered, a collection's and its shards' descriptions, a
// stored document. Values; the server writes them as JSON (server/response_codec.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "engine/requests.h"

namespace contextd {

struct UpsertResult {
  size_t upserted = 0;
  size_t chunks = 0;
};

struct QueryHit {
  std::string doc_id;
  uint32_t chunk = 0;
  std::string text;
  float score = 0;
  Json metadata;
  // Pulled in by "expand_refs": the result document that cites this one. Its score is the
  // chunk's own similarity to the query (query terms matched, without a vector).
  std::string ref_of = {};
};

struct QueryResult {
  std::vector<QueryHit> hits;
  QueryMode mode = QueryMode::kHybrid;
  double embed_ms = 0;
  double search_ms = 0;
  // Scores are reciprocal-rank sums (hybrid RRF, fused plans): only their order means
  // anything, not their ratios.
  bool rank_fused = false;
  // The query's embedding could not be had (provider down, deadline, queue full), so the
  // answer is a keyword search instead of the mode asked for.
  bool degraded = false;
  std::string degraded_reason;
  // Where the answer came from: "miss" (searched), "exact" or "semantic" (the query
  // cache), "bypass" (the request skipped the cache), "off" (the collection has none).
  std::string cache = "miss";
  float cache_similarity = 0;  // semantic hits: cosine to the cached query
  std::string cache_tier;      // hits: "hot", "warm" or "cold"
  // Vector search only: the shards searched (their ids), of how many, and how the router
  // chose them. widened: the routed shards had fewer than k results, so every other shard
  // was searched too.
  struct Route {
    std::vector<uint32_t> shards;
    size_t shard_count = 1;
    float margin = 0;
    bool confident = true;
    bool widened = false;
  };
  std::optional<Route> route;
  // A query whose shards are held on several nodes (cluster mode): the distinct shards it
  // needed, how many of them some holder answered for, and the nodes that answered.
  // answered < shards means part of the collection is missing from the answer.
  struct Coverage {
    size_t shards = 0, answered = 0, nodes = 0;
  };
  std::optional<Coverage> coverage;
};

// GET /v1/collections/{name}: settings and counts.
struct CollectionInfo {
  std::string name;
  CollectionConfig config;
  bool embedder_available = false;
  size_t documents = 0, chunks = 0, shards = 0;
  std::string index_type;  // "hnsw" | "flat"
  size_t graph_nodes = 0, graph_tombstones = 0;
  std::string graph_source;  // where the graph came from at start: "loaded", "rebuilt", ...
  size_t memory_bytes = 0, mapped_bytes = 0;
};

// GET /v1/collections/{name}/shards.
struct ShardsReport {
  struct Shard {
    uint32_t id = 0;
    size_t chunks = 0;
    std::string index;  // "hnsw" | "flat" | "stored" (vectors kept, graph not linked here)
    uint64_t probes = 0;
    bool splitting = false;
    std::vector<std::string> top_terms;  // distinctive terms, most distinctive first
  };
  std::vector<Shard> shards;
  uint64_t queries = 0, single_shard = 0, widened = 0;  // routed vector searches
  double mean_shards_probed = 0;
  ShardingOptions options;
};

// A document as stored (GET .../documents/{id}).
struct StoredDocument {
  std::string id;
  std::string title;  // empty when it has none
  std::string text;
  Json metadata = Json::MakeObject();
  std::vector<std::string> refs;
  size_t chunks = 0;
};

// GET .../documents: a page of the documents in id order (an export).
struct DocumentListRequest {
  std::string after;  // the last id of the previous page ("": from the start)
  size_t limit = 100;
  Filter filter;  // on metadata; empty: every document
};
struct DocumentPage {
  std::vector<StoredDocument> documents;
  std::string next;    // the cursor for the next page; empty when this page ends the scan
  size_t scanned = 0;  // records read (more than returned with a filter)
};

}  // namespace contextd
