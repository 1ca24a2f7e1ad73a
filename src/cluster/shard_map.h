// ShardMap: which data nodes hold which shards, in cluster mode.
//
// The map records only what changes by decision: the data nodes that hold shards, the
// number of copies of each shard, and an epoch bumped at every change. The holders of a
// shard follow from it by rendezvous (highest random weight) hashing of the shard's key
// over those nodes: every node computes the same holders without a table per shard, a
// split's children are placed as soon as the split is applied, and adding or removing a
// node moves only the copies that node gains or loses.
//
// The housekeeping node writes the map to a JetStream key-value bucket with a
// compare-and-set on its revision (a write from a node that read an older map fails and
// is redone from the newer one); every node reads it there.
//
// Thread safety: plain values and free functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace contextd {

struct ShardMap {
  uint64_t epoch = 0;  // 0: no map written yet
  int replicas = 2;
  std::vector<std::string> nodes;  // the data nodes holding shards, sorted, each once

  // The nodes holding the shard, best first: min(replicas, nodes) of them.
  std::vector<std::string> Holders(const std::string& tenant, uint64_t collection_id, uint32_t shard) const;
  bool Contains(const std::string& node) const;

  // JSON: {"epoch":..,"replicas":..,"nodes":[..]}.
  std::string Encode() const;
  // InvalidArgument (invalid_shard_map) for anything else.
  static StatusOr<ShardMap> Decode(std::string_view in);
};

// The map the housekeeping node writes next, given the data nodes up now: `current` when
// they and the replica count are unchanged, else the new set with the next epoch.
ShardMap NextShardMap(const ShardMap& current, std::vector<std::string> data_nodes_up, int replicas);

}  // namespace contextd
