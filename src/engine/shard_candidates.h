// ShardCandidates: one node's part of a query over some of a collection's shards: the best
// chunks of each candidate list (by vector, by keyword, scored with the collection's own
// statistics), as ids and scores, small enough to travel from the node holding the shards
// to the node answering. QueryExecutor::Gather makes a part; QueryExecutor::Assemble merges
// the parts of every probed shard into the answer a single node holding them all gives
// (same hits, same scores, same order): the lists are merged by score before fusion,
// grouping and diversity run, exactly as they run over one node's lists. Only the final
// hits' texts are then fetched (query-then-fetch): every node stores every document.
//
// The wire form (EncodeShardCandidates) is versioned binary; DecodeShardCandidates never
// trusts its input.
//
// Thread safety: plain values and free functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/requests.h"

namespace contextd {

struct CandidateChunk {
  // The chunk's slot where it was found: replicas number slots alike, and it breaks ties
  // between equal scores as a single node's search does.
  uint32_t slot = 0;
  float score = 0;
  std::string doc_id;
  uint32_t ordinal = 0;
  std::vector<float> vector;  // only when the answer needs it (diversity, "mmr")
};

struct ShardCandidates {
  std::vector<CandidateChunk> by_vector;   // best first
  std::vector<CandidateChunk> by_keyword;  // best first
  int64_t chunks_scored = 0;
};

// The question a node holding some shards is asked: its part of one query (the request
// as the answering node resolved it: the mode it runs in and the query's vector, embedded
// once there) over the shards named.
struct ShardQuery {
  std::string tenant, collection;
  // The collection's id where the query was asked: a collection dropped and made again
  // under the same name has another, and must not answer for the old one.
  uint64_t collection_id = 0;
  // The holder answers once it has applied this far (the asking node's applied sequence:
  // the answer is at least as fresh as the asking node's own would be).
  uint64_t read_after = 0;
  // The shard map's epoch the asker routed by; a holder with a newer map refuses it.
  uint64_t epoch = 0;
  // What is left of the request's deadline when asked (0: none).
  int64_t timeout_ms = 0;
  // Only the fields a part depends on travel: text, vector, mode, k, ef, depth, filter
  // (as filter_key), fusion, mmr_lambda, group_by_document and the bm25 parameters.
  QueryRequest request;
  std::vector<uint32_t> vector_shards, keyword_shards;
};

// InvalidArgument (invalid_shard_query) for anything short, long or inconsistent.
std::string EncodeShardQuery(const ShardQuery& q);
StatusOr<ShardQuery> DecodeShardQuery(std::string_view in);

std::string EncodeShardCandidates(const ShardCandidates& c);
// InvalidArgument (invalid_candidates) for anything short, long or inconsistent.
StatusOr<ShardCandidates> DecodeShardCandidates(std::string_view in);

}  // namespace contextd
