#include "engine/shard_candidates.h"

#include <cmath>
#include <cstring>

#include "engine/wire_format.h"

namespace contextd {
namespace {

// Format: 'Q', version, chunks scored, then each list: count, then per chunk slot, score
// (raw float), document id, ordinal, vector length and floats.
constexpr char kMagic = 'Q';
constexpr uint8_t kVersion = 1;

Status Corrupt(const std::string& what) { return InvalidArgument("shard candidates: " + what, "invalid_candidates"); }

void PutList(std::string* out, const std::vector<CandidateChunk>& list) {
  wire::PutVarint(out, list.size());
  for (const CandidateChunk& c : list) {
    wire::PutVarint(out, c.slot);
    wire::PutFloats(out, &c.score, 1);
    wire::PutBytes(out, c.doc_id);
    wire::PutVarint(out, c.ordinal);
    wire::PutVarint(out, c.vector.size());
    wire::PutFloats(out, c.vector.data(), c.vector.size());
  }
}

bool GetList(wire::Reader* r, std::vector<CandidateChunk>* list, std::string* why) {
  uint64_t n = 0;
  if (!r->Count(&n)) return false;
  list->resize(n);
  for (CandidateChunk& c : *list) {
    uint64_t slot = 0, ordinal = 0, dim = 0;
    std::vector<float> score;
    if (!r->Varint(&slot) || slot > UINT32_MAX || !r->Floats(&score, 1) || !r->Bytes(&c.doc_id) ||
        !r->Varint(&ordinal) || ordinal > UINT32_MAX || !r->Varint(&dim) || dim > 65536 || !r->Floats(&c.vector, dim)) {
      return false;
    }
    c.slot = static_cast<uint32_t>(slot);
    c.ordinal = static_cast<uint32_t>(ordinal);
    c.score = score[0];
    if (std::isnan(c.score)) {
      *why = "a score is not a number";
      return false;
    }
  }
  return true;
}

}  // namespace

std::string EncodeShardCandidates(const ShardCandidates& c) {
  std::string out;
  out.push_back(kMagic);
  out.push_back(static_cast<char>(kVersion));
  wire::PutVarint(&out, static_cast<uint64_t>(c.chunks_scored));
  PutList(&out, c.by_vector);
  PutList(&out, c.by_keyword);
  return out;
}

StatusOr<ShardCandidates> DecodeShardCandidates(std::string_view in) {
  if (in.size() < 2 || in[0] != kMagic) return Corrupt("not a candidates record");
  if (static_cast<uint8_t>(in[1]) != kVersion) return Corrupt("unknown version " + std::to_string(in[1]));
  wire::Reader r(in.substr(2));
  ShardCandidates c;
  uint64_t scored = 0;
  std::string why = "truncated";
  if (!r.Varint(&scored) || scored > static_cast<uint64_t>(INT64_MAX)) return Corrupt("truncated header");
  c.chunks_scored = static_cast<int64_t>(scored);
  if (!GetList(&r, &c.by_vector, &why) || !GetList(&r, &c.by_keyword, &why)) return Corrupt(why);
  if (!r.done()) return Corrupt("trailing bytes");
  return c;
}

}  // namespace contextd
