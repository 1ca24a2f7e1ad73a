// RocksTier: the persistent L2 embedding cache, in its own RocksDB under the data
// directory (data/embed_cache).
//
// Its own database rather than a column family of the main one: RocksDB's sequence number
// is shared by all column families, and the main store's sequence is what proves a saved
// HNSW graph is current (Store::LatestSequence). Cache fills on the query path would bump
// it and throw the saved graphs away at every restart. Writes skip the WAL: a cache entry
// lost in a crash is recomputed, and nothing acknowledged depends on it.
//
// Entries expire after ttl_s: the value carries its expiry, checked on read, and the
// database is opened with DBWithTTL so compaction drops expired entries.
// Thread safety: safe for concurrent use.
#pragma once

#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "embed/embedding_cache.h"

namespace contextd {

class RocksTier final : public CacheTier {
 public:
  static StatusOr<std::unique_ptr<RocksTier>> Open(const std::string& dir, int64_t ttl_s, const Clock* clock);
  ~RocksTier() override;

  std::string name() const override { return "l2"; }
  void MultiGet(const std::vector<EmbedKey>& keys, int dim, float* out, std::vector<bool>* hit) override;
  void MultiPut(const std::vector<EmbedKey>& keys, int dim, const float* vecs) override;

 private:
  struct Rep;
  explicit RocksTier(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace contextd
