// Collection snapshots over HTTP: /v1/collections/{c}/snapshots (engine/snapshots.cc does
// the work; engine/snapshot_file.h is the format).
#include <fstream>
#include <memory>

#include "engine/snapshot_file.h"
#include "server/api.h"
#include "server/request_codec.h"

namespace contextd {
namespace {

Json SnapshotJson(const SnapshotInfo& s) {
  Json j = Json::MakeObject();
  if (!s.name.empty()) j["name"] = s.name;
  j["collection"] = s.collection;
  j["documents"] = static_cast<int64_t>(s.documents);
  j["chunks"] = static_cast<int64_t>(s.chunks);
  j["size_bytes"] = static_cast<int64_t>(s.size_bytes);
  j["sequence"] = static_cast<int64_t>(s.sequence);
  j["created_ms"] = s.created_ms;
  return j;
}

}  // namespace

StatusOr<SnapshotService*> Api::Snapshots() const {
  if (backends_.snapshots == nullptr) return Unavailable("this server keeps no snapshots", "snapshots_unavailable");
  return backends_.snapshots;
}

StatusOr<Api::Reply> Api::CreateSnapshot(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(SnapshotService * snapshots, Snapshots());
  CTX_ASSIGN_OR_RETURN(SnapshotInfo info, snapshots->CreateSnapshot(ctx.tenant, p[0], ctx));
  Reply r;
  r.status = 201;
  r.json = SnapshotJson(info);
  return r;
}

StatusOr<Api::Reply> Api::ListSnapshots(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(SnapshotService * snapshots, Snapshots());
  CTX_ASSIGN_OR_RETURN(auto list, snapshots->ListSnapshots(ctx.tenant, p[0]));
  Reply r;
  r.json = Json::MakeObject();
  Json items = Json::MakeArray();
  for (const auto& s : list) items.push_back(SnapshotJson(s));
  r.json["snapshots"] = std::move(items);
  return r;
}

// Streamed a piece at a time, never more than kQueuedBytes ahead of the client: a
// snapshot may be far larger than the memory a request should take.
StatusOr<Api::Reply> Api::DownloadSnapshot(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(SnapshotService * snapshots, Snapshots());
  CTX_ASSIGN_OR_RETURN(std::string path, snapshots->SnapshotFile(ctx.tenant, p[0], p[1]));
  auto file = std::make_shared<std::ifstream>(path, std::ios::binary);
  if (!*file) return NotFound("snapshot '" + p[1] + "' could not be opened", "snapshot_not_found");
  Reply r;
  r.content_type = "application/octet-stream";
  r.channel = std::make_shared<HttpBodyChannel>();
  r.produce = [file, channel = r.channel] {
    constexpr size_t kPieceBytes = 1 << 20, kQueuedBytes = 4 << 20;
    // A client that reads nothing for this long is given up on.
    constexpr std::chrono::seconds kStalled(60);
    std::string piece(kPieceBytes, '\0');
    while (*file) {
      file->read(piece.data(), static_cast<std::streamsize>(piece.size()));
      const auto n = static_cast<size_t>(file->gcount());
      if (n == 0) break;
      if (!channel->WaitForRoom(kQueuedBytes, kStalled) || !channel->Write(piece.substr(0, n))) return;
    }
    channel->Close();
  };
  return r;
}

StatusOr<Api::Reply> Api::DeleteSnapshot(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(SnapshotService * snapshots, Snapshots());
  CTX_RETURN_IF_ERROR(snapshots->DeleteSnapshot(ctx.tenant, p[0], p[1]));
  Reply r;
  r.json = Json::MakeObject();
  r.json["deleted"] = p[1];
  return r;
}

// Into collection {name}, from the uploaded snapshot file, or from one this server keeps:
// {"from":{"collection":"docs","snapshot":"NAME"}}.
StatusOr<Api::Reply> Api::RestoreSnapshot(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(SnapshotService * snapshots, Snapshots());
  std::string kept;
  std::string_view bytes = req.body;
  if (!IsSnapshot(req.body)) {  // the JSON form
    CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, /*allow_empty=*/false));
    const Json* from = body.Find("from");
    const Json* collection = from != nullptr ? from->Find("collection") : nullptr;
    const Json* name = from != nullptr ? from->Find("snapshot") : nullptr;
    if (collection == nullptr || !collection->is_string() || name == nullptr || !name->is_string()) {
      return InvalidArgument(
          "the body is neither a snapshot file nor {\"from\":{\"collection\":..,\"snapshot\":..}} naming one on "
          "this server",
          "missing_field");
    }
    CTX_ASSIGN_OR_RETURN(kept, snapshots->ReadSnapshot(ctx.tenant, collection->as_string(), name->as_string()));
    bytes = kept;
  }
  if (bytes.empty()) return InvalidArgument("the body holds no snapshot", "invalid_snapshot");
  CTX_ASSIGN_OR_RETURN(SnapshotInfo info, snapshots->RestoreSnapshot(ctx.tenant, p[0], bytes, ctx));
  Reply r;
  r.status = 201;
  r.json = SnapshotJson(info);
  r.json["restored_from"] = r.json["collection"];
  r.json["collection"] = p[0];
  return r;
}

}  // namespace contextd
