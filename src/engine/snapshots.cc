// The Engine's snapshot endpoints (SnapshotService): files under
// data_dir/snapshots/TENANT/COLLECTION/NAME.snap, each with a NAME.json beside it that
// lists it without reading it (the file holds the same header; see snapshot_file.h).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/names.h"
#include "engine/engine.h"

namespace contextd {
namespace {

namespace fs = std::filesystem;

// Documents per restore mutation, and their bytes: a batch like a client's upsert.
constexpr size_t kRestoreBatchDocuments = 256;
constexpr size_t kRestoreBatchBytes = 8 << 20;

Status CheckSnapshotName(const std::string& name) {
  if (!IsName(name, 128)) {
    return InvalidArgument("a snapshot name is 1 to 128 letters, digits, '_' and '-'", "invalid_name");
  }
  return Status::Ok();
}

SnapshotInfo InfoOf(const std::string& name, const SnapshotHeader& h, uint64_t size) {
  SnapshotInfo info;
  info.name = name;
  info.collection = h.collection;
  info.documents = h.documents;
  info.chunks = h.chunks;
  info.sequence = h.sequence;
  info.created_ms = h.created_ms;
  info.size_bytes = size;
  return info;
}

StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("no snapshot at " + path, "snapshot_not_found");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string Engine::SnapshotDir(const std::string& tenant, const std::string& collection) const {
  return options_.data_dir + "/snapshots/" + tenant + "/" + collection;
}

StatusOr<SnapshotInfo> Engine::CreateSnapshot(const std::string& tenant, const std::string& collection,
                                              const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, GetCollection(tenant, collection));
  const std::string dir = SnapshotDir(tenant, collection);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message(), "storage_error");
  SnapshotHeader header;
  header.collection = collection;
  header.created_ms = options_.clock->WallMillis();
  // Unique per collection: the moment and the log's position at it.
  const std::string name =
      collection + "-" + std::to_string(header.created_ms) + "-" + std::to_string(applied_sequence());
  CTX_ASSIGN_OR_RETURN(auto writer, SnapshotFileWriter::Create(dir + "/" + name + ".snap"));
  CTX_RETURN_IF_ERROR(c->WriteSnapshot(ctx, writer.get(), &header));
  CTX_ASSIGN_OR_RETURN(uint64_t size, writer->Finish(header));
  SnapshotInfo info = InfoOf(name, header, size);
  Json listed = header.ToJson();
  listed["size_bytes"] = static_cast<int64_t>(size);
  std::ofstream(dir + "/" + name + ".json") << listed.Dump();
  spdlog::info("collection {}: snapshot {} ({} documents, {} chunks, {} bytes)", collection, name, info.documents,
               info.chunks, size);
  return info;
}

StatusOr<std::vector<SnapshotInfo>> Engine::ListSnapshots(const std::string& tenant,
                                                          const std::string& collection) const {
  CTX_RETURN_IF_ERROR(ValidateCollectionName(collection));
  std::vector<SnapshotInfo> out;
  std::error_code ec;
  // A dropped collection's snapshots are still listed; a name never seen is not found.
  if (!GetCollection(tenant, collection).ok() && !fs::exists(SnapshotDir(tenant, collection), ec)) {
    return NotFound("collection '" + collection + "' not found", "collection_not_found");
  }
  for (const auto& entry : fs::directory_iterator(SnapshotDir(tenant, collection), ec)) {
    if (entry.path().extension() != ".json") continue;
    const std::string name = entry.path().stem().string();
    if (!fs::exists(entry.path().parent_path() / (name + ".snap"))) continue;  // being deleted
    auto text = ReadWhole(entry.path().string());
    auto parsed = text.ok() ? ParseJson(*text) : StatusOr<Json>(text.status());
    if (!parsed.ok()) continue;
    auto header = SnapshotHeader::FromJson(*parsed);
    if (!header.ok()) continue;
    const Json* size = parsed->Find("size_bytes");
    out.push_back(InfoOf(name, *header, size != nullptr && size->is_int() ? size->as_int() : 0));
  }
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.created_ms != b.created_ms ? a.created_ms > b.created_ms : a.name > b.name;
  });
  return out;
}

StatusOr<std::string> Engine::SnapshotFile(const std::string& tenant, const std::string& collection,
                                           const std::string& name) const {
  CTX_RETURN_IF_ERROR(ValidateCollectionName(collection));
  CTX_RETURN_IF_ERROR(CheckSnapshotName(name));
  std::string path = SnapshotDir(tenant, collection) + "/" + name + ".snap";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return NotFound("collection '" + collection + "' has no snapshot '" + name + "'", "snapshot_not_found");
  }
  return path;
}

StatusOr<std::string> Engine::ReadSnapshot(const std::string& tenant, const std::string& collection,
                                           const std::string& name) const {
  CTX_ASSIGN_OR_RETURN(std::string path, SnapshotFile(tenant, collection, name));
  return ReadWhole(path);
}

Status Engine::DeleteSnapshot(const std::string& tenant, const std::string& collection, const std::string& name) {
  CTX_RETURN_IF_ERROR(ValidateCollectionName(collection));
  CTX_RETURN_IF_ERROR(CheckSnapshotName(name));
  const std::string base = SnapshotDir(tenant, collection) + "/" + name;
  std::error_code ec;
  if (!fs::remove(base + ".snap", ec)) {
    return NotFound("collection '" + collection + "' has no snapshot '" + name + "'", "snapshot_not_found");
  }
  fs::remove(base + ".json", ec);
  return Status::Ok();
}

StatusOr<SnapshotInfo> Engine::RestoreSnapshot(const std::string& tenant, const std::string& collection,
                                               std::string_view snapshot, const RequestContext& ctx) {
  CTX_RETURN_IF_ERROR(ValidateCollectionName(collection));
  // Checked whole before anything is created.
  CTX_ASSIGN_OR_RETURN(SnapshotHeader header, VerifySnapshot(snapshot));
  auto config = CollectionConfig::FromStored(header.config);
  if (!config.ok()) {
    return InvalidArgument("not a valid snapshot: its settings: " + config.status().message(), "invalid_snapshot");
  }
  CTX_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, CreateCollection(tenant, collection, *config, ctx));
  UpsertResult written;
  std::vector<SnapshotDocument> batch;
  size_t batch_bytes = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    Status st = c->RestoreDocuments(ctx, batch, &written);
    batch.clear();
    batch_bytes = 0;
    return st;
  };
  Status st = ForEachSnapshotDocument(snapshot, [&](const SnapshotDocument& d) -> Status {
    batch.push_back(d);
    batch_bytes += d.record.size();
    for (const auto& chunk : d.chunks) batch_bytes += chunk.second.size();
    if (batch.size() >= kRestoreBatchDocuments || batch_bytes >= kRestoreBatchBytes) return flush();
    return Status::Ok();
  });
  if (st.ok()) st = flush();
  if (!st.ok()) {
    // Nothing half-restored stays behind.
    c.reset();
    if (Status dropped = DropCollection(tenant, collection, RequestContext::Background()); !dropped.ok()) {
      spdlog::warn("restore of {} failed ({}), and dropping it failed too: {}", collection, st.ToString(),
                   dropped.ToString());
    }
    return st;
  }
  SnapshotInfo info = InfoOf("", header, snapshot.size());  // collection: the one it was taken of
  info.documents = written.upserted;
  info.chunks = written.chunks;
  spdlog::info("collection {}: restored {} documents, {} chunks from a snapshot of {}", collection, written.upserted,
               written.chunks, header.collection);
  return info;
}

}  // namespace contextd
