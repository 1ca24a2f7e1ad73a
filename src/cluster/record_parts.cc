#include "cluster/record_parts.h"

#include <algorithm>

#include "common/hash.h"
#include "engine/wire_format.h"

namespace contextd {
namespace {

constexpr char kPartMagic = 'P';
constexpr char kIndexMagic = 'I';
constexpr char kFramingVersion = 1;
// More parts than any record within the body limits could need (1 GB in 1 MB parts).
constexpr uint64_t kMaxParts = 1024;

Status Malformed(const std::string& what) {
  return InvalidArgument("a large log record's " + what, "invalid_mutation");
}

}  // namespace

std::vector<std::string> SplitRecord(std::string_view record, size_t part_bytes) {
  part_bytes = std::max<size_t>(part_bytes, 1);
  const uint64_t n = (record.size() + part_bytes - 1) / part_bytes;
  std::vector<std::string> out;
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    const std::string_view slice = record.substr(i * part_bytes, part_bytes);
    std::string m;
    m.reserve(slice.size() + 24);
    m.push_back(kPartMagic);
    m.push_back(kFramingVersion);
    wire::PutVarint(&m, i);
    wire::PutVarint(&m, n);
    m.append(slice);
    out.push_back(std::move(m));
  }
  return out;
}

uint64_t RecordHash(std::string_view record) { return Hash64(record); }

std::string EncodeRecordIndex(const RecordIndex& index) {
  std::string out;
  out.push_back(kIndexMagic);
  out.push_back(kFramingVersion);
  wire::PutVarint(&out, index.size);
  wire::PutVarint(&out, index.hash);
  wire::PutVarint(&out, index.sequences.size());
  for (uint64_t s : index.sequences) wire::PutVarint(&out, s);
  return out;
}

bool IsRecordPart(std::string_view message) { return message.size() >= 2 && message[0] == kPartMagic; }
bool IsRecordIndex(std::string_view message) { return message.size() >= 2 && message[0] == kIndexMagic; }

StatusOr<RecordIndex> DecodeRecordIndex(std::string_view message) {
  if (!IsRecordIndex(message) || message[1] != kFramingVersion) return Malformed("index has an unknown framing");
  wire::Reader r(message.substr(2));
  RecordIndex index;
  uint64_t n = 0;
  if (!r.Varint(&index.size) || !r.Varint(&index.hash) || !r.Varint(&n)) return Malformed("index is cut short");
  if (n == 0 || n > kMaxParts) return Malformed("index names no parts or too many");
  index.sequences.resize(n);
  for (auto& s : index.sequences) {
    if (!r.Varint(&s) || s == 0) return Malformed("index is cut short");
  }
  if (!r.done()) return Malformed("index has trailing bytes");
  return index;
}

namespace {

// A part's header (its place, the i-th of n) and its slice of the record.
bool ReadPart(std::string_view message, uint64_t* i, uint64_t* n, std::string_view* slice) {
  if (!IsRecordPart(message) || message[1] != kFramingVersion) return false;
  wire::Reader r(message.substr(2));
  if (!r.Varint(i) || !r.Varint(n) || *i >= *n) return false;
  *slice = r.Rest();
  return true;
}

}  // namespace

bool ParseRecordPart(std::string_view message, uint64_t* i, uint64_t* n) {
  std::string_view slice;
  return ReadPart(message, i, n, &slice);
}

Status AppendRecordPart(std::string_view message, uint64_t i, uint64_t n, std::string* record) {
  uint64_t at = 0, of = 0;
  std::string_view slice;
  if (!ReadPart(message, &at, &of, &slice)) return Malformed("index names a message that is not one of its parts");
  if (at != i || of != n) {
    return Malformed("part " + std::to_string(at) + " of " + std::to_string(of) + " is where the index expects part " +
                     std::to_string(i) + " of " + std::to_string(n));
  }
  record->append(slice);
  return Status::Ok();
}

Status CheckAssembledRecord(const RecordIndex& index, std::string_view record) {
  if (record.size() != index.size) {
    return Malformed("parts hold " + std::to_string(record.size()) + " bytes where the index says " +
                     std::to_string(index.size));
  }
  if (RecordHash(record) != index.hash) return Malformed("parts do not hash to the index's hash");
  return Status::Ok();
}

}  // namespace contextd
