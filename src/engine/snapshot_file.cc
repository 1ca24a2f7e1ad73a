#include "engine/snapshot_file.h"

#include <cstring>
#include <filesystem>
#include <optional>

#include <unistd.h>

#include "common/hash.h"

namespace contextd {
namespace {

constexpr std::string_view kMagic = "CTXSNAP1";

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}

Status Invalid(const std::string& why) { return InvalidArgument("not a valid snapshot: " + why, "invalid_snapshot"); }

// Reads the record at `*pos`; false with `why` set when the bytes end early.
bool NextRecord(std::string_view in, size_t* pos, char* kind, std::string_view* key, std::string_view* value,
                std::string* why) {
  auto u32 = [&](uint32_t* v) {
    if (in.size() - *pos < 4) return false;
    std::memcpy(v, in.data() + *pos, 4);
    *pos += 4;
    return true;
  };
  if (*pos >= in.size()) {
    *why = "it ends before its end record";
    return false;
  }
  *kind = in[(*pos)++];
  uint32_t n = 0;
  if (!u32(&n) || in.size() - *pos < n) {
    *why = "a record's key runs past the end";
    return false;
  }
  *key = in.substr(*pos, n);
  *pos += n;
  if (!u32(&n) || in.size() - *pos < n) {
    *why = "a record's value runs past the end";
    return false;
  }
  *value = in.substr(*pos, n);
  *pos += n;
  return true;
}

}  // namespace

Json SnapshotHeader::ToJson() const {
  Json j = Json::MakeObject();
  j["format"] = 1;
  j["collection"] = collection;
  j["config"] = config;
  j["documents"] = static_cast<int64_t>(documents);
  j["chunks"] = static_cast<int64_t>(chunks);
  j["sequence"] = static_cast<int64_t>(sequence);
  j["created_ms"] = created_ms;
  return j;
}

StatusOr<SnapshotHeader> SnapshotHeader::FromJson(const Json& j) {
  SnapshotHeader h;
  const Json* format = j.Find("format");
  if (format == nullptr || !format->is_int() || format->as_int() != 1) return Invalid("unknown format version");
  const Json* name = j.Find("collection");
  const Json* config = j.Find("config");
  if (name == nullptr || !name->is_string() || config == nullptr || !config->is_object()) {
    return Invalid("its header lacks the collection or its settings");
  }
  h.collection = name->as_string();
  h.config = *config;
  auto count = [&](const char* key, uint64_t* out) {
    const Json* v = j.Find(key);
    if (v != nullptr && v->is_int() && v->as_int() >= 0) *out = static_cast<uint64_t>(v->as_int());
  };
  count("documents", &h.documents);
  count("chunks", &h.chunks);
  count("sequence", &h.sequence);
  if (const Json* v = j.Find("created_ms"); v != nullptr && v->is_int()) h.created_ms = v->as_int();
  return h;
}

StatusOr<std::unique_ptr<SnapshotFileWriter>> SnapshotFileWriter::Create(const std::string& path) {
  std::FILE* f = std::fopen((path + ".partial").c_str(), "wb");
  if (f == nullptr) {
    return Internal("cannot write snapshot " + path + ": " + std::strerror(errno), "storage_error");
  }
  std::unique_ptr<SnapshotFileWriter> w(new SnapshotFileWriter(path, f));
  CTX_RETURN_IF_ERROR(w->Write(kMagic));
  return w;
}

SnapshotFileWriter::~SnapshotFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) {
    std::error_code ec;
    std::filesystem::remove(path_ + ".partial", ec);
  }
}

Status SnapshotFileWriter::Write(std::string_view bytes) {
  hash_ = Hash64(bytes, hash_);
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    return Internal("cannot write snapshot " + path_ + ": " + std::strerror(errno), "storage_error");
  }
  size_ += bytes.size();
  return Status::Ok();
}

Status SnapshotFileWriter::Record(char kind, std::string_view key, std::string_view value) {
  std::string rec;
  rec.reserve(9 + key.size() + value.size());
  rec.push_back(kind);
  PutU32(&rec, static_cast<uint32_t>(key.size()));
  rec.append(key);
  PutU32(&rec, static_cast<uint32_t>(value.size()));
  rec.append(value);
  return Write(rec);
}

Status SnapshotFileWriter::AddDocument(std::string_view id, std::string_view record) { return Record('D', id, record); }

Status SnapshotFileWriter::AddChunk(uint32_t ordinal, std::string_view record) {
  char key[4];
  std::memcpy(key, &ordinal, 4);
  return Record('C', std::string_view(key, 4), record);
}

StatusOr<uint64_t> SnapshotFileWriter::Finish(const SnapshotHeader& header) {
  CTX_RETURN_IF_ERROR(Record('H', "", header.ToJson().Dump()));
  char sum[8];
  std::memcpy(sum, &hash_, 8);
  CTX_RETURN_IF_ERROR(Record('E', "", std::string_view(sum, 8)));
  const bool synced = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
  std::fclose(file_);
  file_ = nullptr;
  if (!synced) return Internal("cannot write snapshot " + path_ + ": " + std::strerror(errno), "storage_error");
  std::error_code ec;
  std::filesystem::rename(path_ + ".partial", path_, ec);
  if (ec) return Internal("cannot write snapshot " + path_ + ": " + ec.message(), "storage_error");
  finished_ = true;
  return size_;
}

// Of any format version: the magic less its last character, the version.
bool IsSnapshot(std::string_view bytes) {
  return bytes.substr(0, kMagic.size() - 1) == kMagic.substr(0, kMagic.size() - 1);
}

StatusOr<SnapshotHeader> VerifySnapshot(std::string_view in) {
  if (in.substr(0, kMagic.size()) != kMagic) return Invalid("it does not start with " + std::string(kMagic));
  uint64_t hash = Hash64(kMagic, 0);
  size_t pos = kMagic.size();
  std::optional<SnapshotHeader> header;
  bool ended = false, any_document = false;
  std::string why;
  while (!ended) {
    const size_t start = pos;
    char kind = 0;
    std::string_view key, value;
    if (!NextRecord(in, &pos, &kind, &key, &value, &why)) return Invalid(why);
    switch (kind) {
      case 'D':
        if (header) return Invalid("a document follows the header");
        any_document = true;
        break;
      case 'C':
        if (key.size() != 4) return Invalid("a chunk record's ordinal is not 4 bytes");
        if (!any_document || header) return Invalid("a chunk is not after its document");
        break;
      case 'H': {
        if (header) return Invalid("it has two headers");
        auto parsed = ParseJson(value);
        if (!parsed.ok()) return Invalid("its header is not JSON");
        CTX_ASSIGN_OR_RETURN(SnapshotHeader h, SnapshotHeader::FromJson(*parsed));
        header = std::move(h);
        break;
      }
      case 'E': {
        uint64_t sum = 0;
        if (value.size() != 8) return Invalid("its checksum is not 8 bytes");
        std::memcpy(&sum, value.data(), 8);
        if (sum != hash) return Invalid("its checksum does not match (damaged or truncated)");
        if (pos != in.size()) return Invalid("bytes follow its end record");
        ended = true;
        continue;
      }
      default:
        return Invalid("unknown record kind " + std::to_string(static_cast<unsigned char>(kind)));
    }
    hash = Hash64(in.substr(start, pos - start), hash);
  }
  if (!header) return Invalid("it has no header");
  return *header;
}

Status ForEachSnapshotDocument(std::string_view in, const std::function<Status(const SnapshotDocument&)>& fn) {
  size_t pos = kMagic.size();
  std::string why;
  SnapshotDocument doc;
  bool have = false;
  for (;;) {
    char kind = 0;
    std::string_view key, value;
    NextRecord(in, &pos, &kind, &key, &value, &why);
    if (kind == 'C') {  // after its document: checked above
      uint32_t ordinal = 0;
      std::memcpy(&ordinal, key.data(), 4);
      doc.chunks.emplace_back(ordinal, value);
      continue;
    }
    if (have) CTX_RETURN_IF_ERROR(fn(doc));
    if (kind != 'D') break;
    doc.id = key;
    doc.record = value;
    doc.chunks.clear();
    have = true;
  }
  return Status::Ok();
}

}  // namespace contextd
