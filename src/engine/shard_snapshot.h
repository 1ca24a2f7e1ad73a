// A topic shard on its own: what one shard of a collection holds at an applied sequence
// (ShardSnapshot, which Collection::SnapshotShard takes), in a form that travels between
// nodes (EncodeShardSnapshot), and a ShardReplica rebuilt from it that the mutations after
// that sequence bring up to date. That is what lets a shard move to another node: copy
// the snapshot, then follow the log from its sequence.
//
// A replica takes from an upsert exactly the chunks the source placed in this shard: those
// the layout (engine/shard_layout.h), as the snapshot recorded it and as later logged
// splits change it, places in this shard or in shards split from it. Placement depends on
// nothing else, so replica and source agree.
//
// Thread safety: ShardSnapshot is a value; a ShardReplica is not internally synchronised
// (one applier; the caller serialises queries against it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "engine/mutation.h"
#include "engine/shard_layout.h"
#include "index/distance.h"

namespace contextd {

struct ShardSnapshot {
  uint64_t sequence = 0;  // the highest mutation sequence the collection had applied
  uint64_t collection_id = 0;
  uint32_t shard_id = 0;
  uint32_t dim = 0;
  Metric metric = Metric::kCosine;
  std::string layout;  // the collection's ShardLayout, encoded
  struct Document {
    std::string id;
    std::string title;
    Json metadata = Json::MakeObject();
    std::vector<std::string> refs;
  };
  struct Chunk {
    uint32_t document = 0;  // index into documents
    uint32_t ordinal = 0;   // within its document
    std::string text;
    std::vector<float> vector;
  };
  std::vector<Document> documents;  // those with at least one chunk in the shard, by id
  std::vector<Chunk> chunks;        // by document, then ordinal
};

std::string EncodeShardSnapshot(const ShardSnapshot& s);
// InvalidArgument (invalid_snapshot) for anything short, long or inconsistent.
StatusOr<ShardSnapshot> DecodeShardSnapshot(std::string_view in);

// Order-independent digest of a shard's contents: (document id, ordinal, text, vector) of
// every chunk. Equal digests mean the same chunks with the same vectors.
uint64_t ShardDigest(const ShardSnapshot& s);

class ShardReplica {
 public:
  explicit ShardReplica(const ShardSnapshot& snapshot);

  // Applies a mutation of the snapshot's collection with a sequence above the last applied
  // one (at or below it: nothing changes, as for the Engine). Upserts replace the
  // document's chunks here with those of its new chunks that belong here; deletes remove
  // its chunks; splits change the layout. Mutations of other collections are
  // InvalidArgument.
  Status Apply(const Mutation& m);
  uint64_t applied_sequence() const { return meta_.sequence; }

  struct Hit {
    std::string doc_id;
    uint32_t ordinal = 0;
    float score = 0;
  };
  // The k chunks held here nearest `query`, best first (an exact scan: a shard on the move
  // is checked from here, not served).
  std::vector<Hit> Search(const float* query, size_t k) const;
  size_t chunk_count() const;
  // The shard as it stands now, in snapshot form.
  ShardSnapshot Snapshot() const;

 private:
  struct HeldChunk {
    uint32_t ordinal = 0;
    std::string text;
    std::vector<float> vector;
  };
  struct HeldDocument {
    ShardSnapshot::Document info;
    std::vector<HeldChunk> chunks;  // by ordinal
  };
  bool BelongsHere(const float* vector) const;

  ShardSnapshot meta_;  // everything but the documents and chunks
  ShardLayout layout_;
  std::map<std::string, HeldDocument> docs_;
};

}  // namespace contextd
