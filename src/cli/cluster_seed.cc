#include "cli/cluster_seed.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/dir_archive.h"
#include "net/http_client.h"

namespace contextd {
namespace {

// The member's checkpoint, unpacked into `dir` (its db, sessions and llm_cache folders).
Status FetchCheckpoint(const JetStreamUpdateLog::Member& m, const std::string& admin_key, const std::string& dir) {
  std::string host;
  int port = 0;
  CTX_RETURN_IF_ERROR(ParseUrl(m.url, &host, &port));
  HttpClient client(host, port);
  client.set_timeout_ms(10 * 60 * 1000);  // a large replica takes a while to copy
  HttpHeaders headers;
  if (!admin_key.empty()) headers.push_back({"Authorization", "Bearer " + admin_key});
  // Unpacked as it arrives: a replica's seed may be larger than this node's memory.
  DirArchiveExtractor extractor(dir);
  CTX_ASSIGN_OR_RETURN(ClientResponse r, client.Stream("GET", "/v1/admin/checkpoint", headers,
                                                       [&](std::string_view piece) { return extractor.Feed(piece); }));
  if (r.status != 200) return Unavailable("HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200));
  CTX_RETURN_IF_ERROR(extractor.Finish());
  spdlog::info("seed: {} MB, {} files from {} ({})", extractor.bytes() >> 20, extractor.files(), m.node_id, m.url);
  return Status::Ok();
}

}  // namespace

Status SeedFromClusterIfNeeded(const JetStreamLogOptions& log, const std::string& data_dir,
                               const std::string& admin_key) {
  namespace fs = std::filesystem;
  if (fs::exists(data_dir + "/db")) return Status::Ok();  // not new: it resumes from its store
  auto probe = JetStreamUpdateLog::Probe(log, 5000);
  if (!probe.ok()) {
    spdlog::warn("seed: cannot ask the cluster whether this new node needs a seed ({}); it will replay the log",
                 probe.status().message());
    return Status::Ok();
  }
  if (!probe->stream_exists || probe->first_sequence <= 1) return Status::Ok();
  spdlog::info("seed: the update log now starts at sequence {}; copying a member's checkpoint first",
               probe->first_sequence);
  const std::string staging = data_dir + "/.seed";
  std::string errors;
  for (const auto& m : probe->members) {
    if (m.url.empty() || m.node_id == log.node_id) continue;
    std::error_code ec;
    fs::remove_all(staging, ec);
    const Status st = FetchCheckpoint(m, admin_key, staging);
    if (!st.ok()) {
      spdlog::warn("seed: {} could not give a checkpoint: {}", m.node_id, st.message());
      errors += (errors.empty() ? "" : "; ") + m.node_id + ": " + st.message();
      continue;
    }
    // Into place only once complete: a node killed while copying starts over.
    for (const auto& entry : fs::directory_iterator(staging)) {
      fs::rename(entry.path(), fs::path(data_dir) / entry.path().filename(), ec);
      if (ec) return Internal("seed: moving " + entry.path().string() + " into " + data_dir + ": " + ec.message());
    }
    fs::remove_all(staging, ec);
    return Status::Ok();
  }
  return Unavailable("the update log was purged past its start (it begins at sequence " +
                     std::to_string(probe->first_sequence) + ") and no member gave a checkpoint to seed this node" +
                     (errors.empty() ? " (none has said where its HTTP API answers yet)" : ": " + errors));
}

}  // namespace contextd
