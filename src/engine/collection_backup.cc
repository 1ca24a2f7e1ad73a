// Collection's side of backups: writing its documents into a snapshot file, and restoring
// documents from one through the update log (engine/snapshot_file.h has the format,
// engine/snapshots.cc the Engine's endpoints).
#include <cstring>

#include "common/json.h"
#include "engine/chunk_record.h"
#include "engine/collection.h"

namespace contextd {
namespace {

// Documents between looks at the request's deadline.
constexpr uint64_t kDeadlineEvery = 256;

Status NotInSnapshot(const std::string& why) {
  return InvalidArgument("the snapshot does not fit this collection: " + why, "invalid_snapshot");
}

}  // namespace

Status Collection::WriteSnapshot(const RequestContext& ctx, SnapshotFileWriter* out, SnapshotHeader* header) const {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  {
    // Everything applied up to here is in the store, so in the scan's moment, which follows.
    ReaderLock lock(&mu_);
    header->sequence = applied_sequence_;
  }
  header->config = config_.ToJson();
  return store_->ScanCollectionAtOneMoment(
      tenant_, id_, [&](std::string_view id, std::string_view record, const std::vector<Store::ChunkRecord>& chunks) {
        if (header->documents % kDeadlineEvery == 0) CTX_RETURN_IF_ERROR(ctx.CheckDeadline("writing the snapshot"));
        CTX_RETURN_IF_ERROR(out->AddDocument(id, record));
        for (const auto& c : chunks) CTX_RETURN_IF_ERROR(out->AddChunk(c.ordinal, c.value));
        ++header->documents;
        header->chunks += chunks.size();
        return Status::Ok();
      });
}

Status Collection::RestoreDocuments(const RequestContext& ctx, const std::vector<SnapshotDocument>& docs,
                                    UpsertResult* result) {
  const size_t dim = static_cast<size_t>(config_.dim);
  Mutation m;
  m.kind = MutationKind::kUpsertDocuments;
  m.tenant = tenant_;
  m.collection = name_;
  m.collection_id = id_;
  m.dim = static_cast<uint32_t>(dim);
  for (const SnapshotDocument& in : docs) {
    auto record = ParseJson(in.record);
    if (!record.ok() || !record->is_object()) return NotInSnapshot("document '" + std::string(in.id) + "' is not JSON");
    StoredDocument stored = DocumentFromRecord(in.id, *record);
    MutationDocument d;
    d.id = std::move(stored.id);
    d.title = std::move(stored.title);
    d.text = std::move(stored.text);
    d.metadata = std::move(stored.metadata);
    d.refs = std::move(stored.refs);
    if (in.chunks.empty()) return NotInSnapshot("document '" + d.id + "' has no chunks");
    for (size_t i = 0; i < in.chunks.size(); ++i) {
      uint32_t slot = 0;
      std::string_view text;
      const char* raw = nullptr;
      if (in.chunks[i].first != i || !DecodeChunk(in.chunks[i].second, config_.dim, d.text, &slot, &text, &raw)) {
        return NotInSnapshot("chunk " + std::to_string(i) + " of document '" + d.id + "' is not a chunk of " +
                             std::to_string(dim) + " dimensions within its document's text");
      }
      d.chunks.AddView(d.text, text);
      const size_t at = m.vectors.size();
      m.vectors.resize(at + dim);
      std::memcpy(&m.vectors[at], raw, sizeof(float) * dim);
    }
    m.documents.push_back(std::move(d));
  }
  ApplyResult applied;
  CTX_RETURN_IF_ERROR(log_->Commit(ctx, &m, &applied));
  result->upserted += applied.documents;
  result->chunks += applied.chunks;
  return Status::Ok();
}

}  // namespace contextd
