// ShardRouter: how a node asks the others for their part of a query when a collection's
// shards are held on several nodes (cluster mode; cluster/shard_router.h implements it).
// The engine decides which shards a query needs (Collection::Query routes by centroid);
// the router decides who answers for each: one live holder per shard, and another
// holder when the first does not answer.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/request_context.h"
#include "common/status.h"
#include "engine/shard_candidates.h"

namespace contextd {

class ShardRouter {
 public:
  virtual ~ShardRouter() = default;

  // Whether a query over these shards of the collection is spread at all: false when this
  // node holds every one of them (or no map is known yet), and answers alone. The
  // collection passes every shard when AsksHolders(), else only those it could not answer
  // as well itself (partial indexing: big shards whose graphs it does not link).
  virtual bool Spreads(const std::string& tenant, uint64_t collection_id,
                       const std::vector<uint32_t>& shard_ids) const = 0;

  // Whether this node links the graph of the shard (searches it through HNSW) or only
  // stores its vectors, leaving its searches to the nodes holding it (partial indexing).
  // Called under the collection's lock: must not call back into the engine.
  virtual bool Indexes(const std::string& tenant, uint64_t collection_id, uint32_t shard_id) const = 0;
  // Whether every part of a query is asked of the shards' holders, even the parts this
  // node could answer as well itself (--query-routing shards).
  virtual bool AsksHolders() const = 0;

  // What a Gather reached: the shards asked (vector and keyword, each once), those no
  // holder answered for, and the nodes that answered (this one included).
  struct Coverage {
    std::vector<uint32_t> asked, missing;
    std::vector<std::string> nodes;
  };
  // Asks for q's shards (q.vector_shards, q.keyword_shards), each of one live holder,
  // the holders in parallel, and appends the parts that came back to *parts and what
  // was asked and reached to *coverage (a second Gather adds to the first's). A shard
  // whose every holder failed (and that the router could not answer otherwise) is named
  // in coverage->missing, never silently left out.
  // Fails only when the request itself is bad or its deadline passed.
  virtual Status Gather(const RequestContext& ctx, const ShardQuery& q, std::vector<ShardCandidates>* parts,
                        Coverage* coverage) = 0;
};

}  // namespace contextd
