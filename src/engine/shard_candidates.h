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

std::string EncodeShardCandidates(const ShardCandidates& c);
// InvalidArgument (invalid_candidates) for anything short, long or inconsistent.
StatusOr<ShardCandidates> DecodeShardCandidates(std::string_view in);

}  // namespace contextd
