// A collection snapshot as one file: every document's stored record with its chunk
// records (text and vector), then a header naming the collection and its settings, then
// a checksum over all of it. Self-contained: it restores on any node or server, through
// the update log like any write (Engine::RestoreSnapshot), with no re-embedding.
//
//   "CTXSNAP1"
//   records: kind:u8 | key length:u32 | key | value length:u32 | value   (little-endian)
//     'D' a document: key its id, value its stored record (JSON)
//     'C' one of that document's chunks (right after it): key the ordinal (u32), value
//         its stored chunk record (slot | text length | text | dim floats)
//     'H' the header (JSON, below), once, after the last document
//     'E' the end: key empty, value a u64 checksum: Hash64 chained over the magic and each
//         record before this one (each hashed with the previous hash as its seed)
//
// Thread safety: a writer is used by one thread; reading is a pure function.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace contextd {

struct SnapshotHeader {
  std::string collection;  // the name it had where it was taken
  Json config;             // CollectionConfig::ToJson()
  uint64_t documents = 0, chunks = 0;
  uint64_t sequence = 0;   // the update log's applied sequence when it was taken
  int64_t created_ms = 0;  // wall clock, Unix milliseconds

  Json ToJson() const;
  static StatusOr<SnapshotHeader> FromJson(const Json& j);
};

class SnapshotFileWriter {
 public:
  // Writes to `path`.partial; Finish() renames it to `path`, so a snapshot that exists is
  // whole.
  static StatusOr<std::unique_ptr<SnapshotFileWriter>> Create(const std::string& path);
  ~SnapshotFileWriter();  // an unfinished file is removed

  Status AddDocument(std::string_view id, std::string_view record);
  Status AddChunk(uint32_t ordinal, std::string_view record);
  // Writes the header and the checksum, syncs and renames. Returns the file's size.
  StatusOr<uint64_t> Finish(const SnapshotHeader& header);

 private:
  SnapshotFileWriter(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}
  Status Record(char kind, std::string_view key, std::string_view value);
  Status Write(std::string_view bytes);  // hashes `bytes` into the checksum

  const std::string path_;
  std::FILE* file_;
  uint64_t hash_ = 0;  // the chained checksum so far
  uint64_t size_ = 0;
  bool finished_ = false;
};

// One document of a snapshot and its chunks, views into the snapshot's bytes.
struct SnapshotDocument {
  std::string_view id;
  std::string_view record;
  std::vector<std::pair<uint32_t, std::string_view>> chunks;  // ordinal, record
};

// The bytes begin as a snapshot of any format version does: an upload meant as one.
bool IsSnapshot(std::string_view bytes);
// Checks the whole snapshot (magic, framing, checksum, header; every chunk follows a
// document) and returns its header; InvalidArgument (invalid_snapshot) saying what is
// wrong.
StatusOr<SnapshotHeader> VerifySnapshot(std::string_view bytes);
// Calls `fn` for each document in order, stopping at its first error.
// REQUIRES: VerifySnapshot(bytes) succeeded.
Status ForEachSnapshotDocument(std::string_view bytes, const std::function<Status(const SnapshotDocument&)>& fn);

}  // namespace contextd
