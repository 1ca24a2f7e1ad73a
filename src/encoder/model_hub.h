// `contextd model pull ORG/NAME`: fetches a sentence-transformers model from the Hugging
// Face hub (or any server with its layout: GET {endpoint}/{repo}/resolve/{revision}/{file})
// into MODELS_DIR/ORG/NAME, over HTTPS with libcurl.
//
// Each file downloads to FILE.part and is renamed only once complete and verified:
//  - resume: an existing .part continues with a Range request (a server that answers 200
//    instead of 206 restarts it);
//  - checksums: LFS files (the weights) against the SHA-256 the hub sends as
//    X-Linked-Etag, other files against their git blob SHA-1 (the ETag); a mismatch
//    deletes the .part and fails naming the file;
//  - files already present and matching their checksum are not fetched again.
// config.json and model.safetensors are required, and tokenizer.json or vocab.txt; the
// other sentence-transformers files are fetched when the repository has them.
//
// Thread safety: PullModel is reentrant; do not pull the same model twice at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace contextd {

struct PullOptions {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT overrides it in the CLI
  std::string revision = "main";
  std::string token;  // HF_TOKEN, sent as a bearer token when set
  long connect_timeout_s = 30;
  // Called as bytes arrive: file, bytes so far (including a resumed part), total or 0.
  std::function<void(const std::string& file, uint64_t done, uint64_t total)> progress;
};

struct PullResult {
  std::string dir;
  std::vector<std::string> fetched;   // files downloaded (fully or resumed)
  std::vector<std::string> verified;  // files already present with a matching checksum
  uint64_t bytes = 0;                 // bytes received over the network
};

// repo: "ORG/NAME". Errors are NotFound (the repository or a required file is missing),
// Unavailable (network), Internal with reason "checksum_mismatch", InvalidArgument (a bad name).
StatusOr<PullResult> PullModel(const std::string& repo, const std::string& models_dir, const PullOptions& options);

// Hex digests, for checksums and tests.
std::string Sha256File(const std::string& path);
std::string GitBlobSha1File(const std::string& path);

}  // namespace contextd
