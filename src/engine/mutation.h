// Mutation: one change to the engine's state, as the update log carries it.
//
// Every write the engine accepts becomes exactly one Mutation before anything changes:
// collection create and drop, a batch of document upserts, a document delete, a session
// turn appended, a session deleted, an LLM-cache namespace configured, an entry stored,
// entries deleted, a tenant or an API key created, changed or deleted, a topic shard split
// (engine/shard_layout.h: so every replica places chunks alike), a shard found indivisible
// (so every replica stops waiting for its split, and links its graph). A mutation
// is complete on its own: an upsert carries every chunk's text and final vector, so
// applying it never calls an embedder and every replica that applies the same mutations
// in the same order ends in the same state (engine/update_log.h).
//
// The wire form (EncodeMutation) is versioned binary: what a remote log (JetStream) stores
// and what a replica decodes. DecodeMutation never trusts its input: a short, long or
// inconsistent record is InvalidArgument, never a crash.
//
// Thread safety: plain values and free functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "engine/chunk_spans.h"
#include "index/bm25_index.h"

namespace contextd {

enum class MutationKind : uint8_t {
  kCreateCollection = 1,
  kDropCollection = 2,
  kUpsertDocuments = 3,
  kDeleteDocument = 4,
  kAppendTurn = 5,
  kDeleteSession = 6,
  kCacheConfigure = 7,
  kCacheStore = 8,
  kCacheDelete = 9,
  kTenantPut = 10,
  kTenantDelete = 11,
  kKeyPut = 12,
  kKeyDelete = 13,
  kSplitShard = 14,
  kCacheFeedback = 15,
  kShardUnsplittable = 16,
};
std::string_view MutationKindName(MutationKind kind);

// One document of an upsert, chunked: chunk(j) is the text of chunk j, a span of `text`
// where it is one (engine/chunk_spans.h).
struct MutationDocument {
  std::string id;
  std::string title;
  std::string text;
  Json metadata = Json::MakeObject();
  std::vector<std::string> refs;
  ChunkSpans chunks;
  // Each chunk's keyword terms, one run per chunk (DocumentTerms), as the proposer
  // analysed them; none (no runs) where the applier is to analyse the text itself. The log
  // carries them counted, so a replica neither stems nor hashes every word again.
  TermList terms;

  std::string_view chunk(size_t j) const { return chunks.Get(text, j); }
  // Appends a chunk: a span of `text` when it is one (set `text` first), else a copy.
  void AddChunk(std::string_view c) { chunks.Add(text, c); }
};

struct Mutation {
  // Assigned by the update log when it commits the mutation; 0 until then. Sequences only
  // grow, and a create's sequence becomes the collection's id (unique, never reused).
  uint64_t sequence = 0;
  MutationKind kind = MutationKind::kUpsertDocuments;
  std::string tenant;
  // The collection; for the cache kinds, the cache namespace.
  std::string collection;
  // Drop, upsert and delete: the id of the collection they were made for, so a mutation
  // never lands in a later collection of the same name.
  uint64_t collection_id = 0;
  // Create: the collection's config as CollectionConfig::ToJson() writes it. Cache
  // configure: the namespace's settings. Cache store: {"scope","response","expires_ms"}.
  // Cache feedback: {"similarity","confidence","correct"}.
  // Tenant and key put: the record (TenantRecord / KeyRecord JSON, the key's hash only).
  std::string config;
  // Upsert: the documents, and every chunk's vector in document then chunk order
  // (dim floats each). Split: the new shards' centroids (dim floats each).
  std::vector<MutationDocument> documents;
  std::vector<float> vectors;
  uint32_t dim = 0;
  // Split: the shard split. Unsplittable: the shard k-means could not divide.
  uint32_t shard = 0;
  // Delete: the document. Cache store and feedback: the entry's id. Tenant and key delete:
  // its id.
  std::string doc_id;
  // Cache delete: the entries.
  std::vector<std::string> ids;
  // Session turn and session delete: the session; a turn's role, content (cache store:
  // the prompt) and time (the
  // proposer's wall clock, so every replica ages the session alike) and the session's new
  // expiry window (0: keep it).
  std::string session;
  std::string role;
  std::string content;
  int64_t at_ms = 0;
  int64_t ttl_s = 0;

  size_t chunk_count() const;
};

// A mutation of `kind` by `tenant`, the rest to fill in.
inline Mutation NewMutation(MutationKind kind, std::string tenant) {
  Mutation m;
  m.kind = kind;
  m.tenant = std::move(tenant);
  return m;
}

std::string EncodeMutation(const Mutation& m);
StatusOr<Mutation> DecodeMutation(std::string_view bytes);

}  // namespace contextd
