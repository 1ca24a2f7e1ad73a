#include "encoder/model_hub.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>

namespace contextd {
namespace {

namespace fs = std::filesystem;

std::string Hex(const unsigned char* d, unsigned n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(kDigits[d[i] >> 4]);
    out.push_back(kDigits[d[i] & 15]);
  }
  return out;
}

// Digest of `prefix` followed by the file's bytes; "" when the file cannot be read.
std::string DigestFile(const std::string& path, const EVP_MD* md, const std::string& prefix) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, md, nullptr);
  EVP_DigestUpdate(ctx, prefix.data(), prefix.size());
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  return Hex(out, n);
}

struct FileSpec {
  const char* name;
  bool required;
};
// Tokenizer: tokenizer.json or vocab.txt, checked after the loop.
constexpr FileSpec kFiles[] = {
    {"config.json", true},
    {"model.safetensors", true},
    {"tokenizer.json", false},
    {"vocab.txt", false},
    {"tokenizer_config.json", false},
    {"special_tokens_map.json", false},
    {"modules.json", false},
    {"sentence_bert_config.json", false},
    {"config_sentence_transformers.json", false},
    {"1_Pooling/config.json", false},
};

// What one GET learned from the response headers (of every hop of a redirect chain).
struct Response {
  long status = 0;
  std::string etag, linked_etag;  // unquoted
  FILE* out = nullptr;
  uint64_t received = 0, resumed_from = 0, total = 0;
  const PullOptions* options = nullptr;
  const std::string* file = nullptr;
};

std::string Unquote(std::string v) {
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
  if (v.rfind("W/", 0) == 0) v = v.substr(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  std::string line(data, size * n);
  const size_t colon = line.find(':');
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response of the chain: its status decides where the body goes.
    const size_t sp = line.find(' ');
    if (sp != std::string::npos) r->status = std::strtol(line.c_str() + sp + 1, nullptr, 10);
  } else if (colon != std::string::npos) {
    std::string key = line.substr(0, colon);
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string value = Unquote(line.substr(colon + 1 + (line.size() > colon + 1 && line[colon + 1] == ' ')));
    // The hub sends the LFS SHA-256 on the first (redirecting) response; keep the first.
    if (key == "x-linked-etag" && r->linked_etag.empty()) r->linked_etag = value;
    if (key == "etag" && r->etag.empty()) r->etag = value;
    if (key == "content-length" && (r->status == 200 || r->status == 206))
      r->total = std::strtoull(value.c_str(), nullptr, 10) + (r->status == 206 ? r->resumed_from : 0);
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  if (r->status != 200 && r->status != 206) return size * n;  // error pages are dropped
  if (r->status == 200 && r->resumed_from > 0) {
    // The server ignored the Range: start the file over.
    if (std::fseek(r->out, 0, SEEK_SET) != 0 || ftruncate(fileno(r->out), 0) != 0) return 0;
    r->resumed_from = 0;
  }
  if (std::fwrite(data, 1, size * n, r->out) != size * n) return 0;
  r->received += size * n;
  if (r->options->progress) r->options->progress(*r->file, r->resumed_from + r->received, r->total);
  return size * n;
}

// The checksum the server gave for this file, and how to compute it locally.
struct Expected {
  std::string digest;  // hex, "" when the server gave none usable
  bool sha256 = false;
};

Expected ExpectedFrom(const Response& r) {
  auto is_hex = [](const std::string& s, size_t len) {
    return s.size() == len && s.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  if (is_hex(r.linked_etag, 64)) return {r.linked_etag, true};
  if (is_hex(r.etag, 64)) return {r.etag, true};
  if (is_hex(r.etag, 40)) return {r.etag, false};
  return {};
}

std::string LocalDigest(const std::string& path, const Expected& e) {
  return e.sha256 ? Sha256File(path) : GitBlobSha1File(path);
}

std::once_flag curl_init;

// One GET (or HEAD) of `url` whose headers land in *r; the caller sets the body handling.
struct Request {
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  char err[CURL_ERROR_SIZE] = {0};

  Request(const std::string& url, const PullOptions& options, Response* r) {
    curl = curl_easy_init();
    if (curl == nullptr) return;
    if (!options.token.empty())
      headers = curl_slist_append(headers, ("Authorization: Bearer " + options.token).c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "contextd-model-pull/1");
    // Abort a transfer that stalls (under 1 KB/s for a minute) instead of hanging forever.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  ~Request() {
    if (curl != nullptr) curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
  }
  std::string Error(CURLcode rc) const { return err[0] ? err : curl_easy_strerror(rc); }
};

}  // namespace

std::string Sha256File(const std::string& path) { return DigestFile(path, EVP_sha256(), ""); }

std::string GitBlobSha1File(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return "";
  return DigestFile(path, EVP_sha1(), "blob " + std::to_string(size) + std::string(1, '\0'));
}

StatusOr<PullResult> PullModel(const std::string& repo, const std::string& models_dir, const PullOptions& options) {
  const size_t slash = repo.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == repo.size() ||
      repo.find('/', slash + 1) != std::string::npos || repo.find("..") != std::string::npos ||
      repo.find_first_of(" ?#%\\") != std::string::npos)
    return InvalidArgument("model name '" + repo + "' must be ORG/NAME");
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  PullResult result;
  result.dir = models_dir + "/" + repo;
  std::error_code ec;
  fs::create_directories(result.dir + "/1_Pooling", ec);
  if (ec) return Internal("cannot create " + result.dir + ": " + ec.message());

  for (const FileSpec& spec : kFiles) {
    const std::string file = spec.name;
    const std::string final_path = result.dir + "/" + file;
    const std::string part = final_path + ".part";
    const bool have_final = fs::exists(final_path);
    const uint64_t have_part = fs::exists(part) ? fs::file_size(part) : 0;

    const std::string url = options.endpoint + "/" + repo + "/resolve/" + options.revision + "/" + file;
    if (have_final) {
      // Already here: ask only for the headers and verify the local copy.
      Response head;
      Request req(url, options, &head);
      if (req.curl == nullptr) return Internal("curl_easy_init failed");
      curl_easy_setopt(req.curl, CURLOPT_NOBODY, 1L);
      const CURLcode rc = curl_easy_perform(req.curl);
      if (rc != CURLE_OK) return Unavailable("checking " + url + ": " + req.Error(rc));
      const Expected e = ExpectedFrom(head);
      if (head.status == 200 && (e.digest.empty() || LocalDigest(final_path, e) == e.digest)) {
        result.verified.push_back(file);
        continue;
      }
      if (head.status == 404 && !spec.required) continue;
      fs::remove(final_path, ec);  // stale or corrupt: fetch it again
    }
    Response r;
    r.options = &options;
    r.file = &file;
    Request req(url, options, &r);
    if (req.curl == nullptr) return Internal("curl_easy_init failed");
    FILE* out = std::fopen(part.c_str(), have_part > 0 ? "r+b" : "wb");
    if (out == nullptr) return Internal("cannot write " + part);
    if (have_part > 0) {
      std::fseek(out, 0, SEEK_END);
      curl_easy_setopt(req.curl, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(have_part));
      r.resumed_from = have_part;
    }
    r.out = out;
    curl_easy_setopt(req.curl, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(req.curl, CURLOPT_WRITEDATA, &r);
    const CURLcode rc = curl_easy_perform(req.curl);
    const bool wrote_ok = std::fflush(out) == 0 && fsync(fileno(out)) == 0;
    std::fclose(out);
    result.bytes += r.received;
    if (r.status == 404) {
      fs::remove(part, ec);
      if (spec.required) return NotFound(repo + " has no " + file + " (" + url + ")");
      continue;
    }
    if (rc != CURLE_OK || !wrote_ok) {
      // The .part stays: the next pull resumes it.
      return Unavailable("downloading " + url + ": " + req.Error(rc) + "; run the pull again to resume");
    }
    if (r.status == 416 && have_part > 0) {
      // Range past the end: the part may already be whole; the checksum decides.
    } else if (r.status != 200 && r.status != 206) {
      fs::remove(part, ec);
      return Unavailable("downloading " + url + ": HTTP " + std::to_string(r.status));
    }
    const Expected e = ExpectedFrom(r);
    if (!e.digest.empty()) {
      const std::string got = LocalDigest(part, e);
      if (got != e.digest) {
        fs::remove(part, ec);
        return Internal(file + " failed its checksum (" + std::string(e.sha256 ? "SHA-256" : "git SHA-1") +
                            " expected " + e.digest + ", got " + got + "); the partial file was removed",
                        "checksum_mismatch");
      }
    }
    fs::rename(part, final_path, ec);
    if (ec) return Internal("cannot rename " + part + ": " + ec.message());
    result.fetched.push_back(file);
  }
  if (!fs::exists(result.dir + "/tokenizer.json") && !fs::exists(result.dir + "/vocab.txt"))
    return NotFound(repo + " has neither tokenizer.json nor vocab.txt");
  if (fs::is_empty(result.dir + "/1_Pooling", ec)) fs::remove(result.dir + "/1_Pooling", ec);
  return result;
}

}  // namespace contextd
