#include "engine/shard_candidates.h"

#include <cmath>
#include <cstring>

#include "common/json.h"
#include "engine/wire_format.h"
#include "index/filter.h"

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

// ShardQuery: 'S', version, then the fields in the order below; optional floats behind a
// presence bit each.
constexpr char kQueryMagic = 'S';
constexpr uint8_t kQueryVersion = 1;
constexpr uint64_t kHasVector = 1, kHasMmr = 2, kHasK1 = 4, kHasB = 8, kHasTitleBoost = 16, kGroupByDocument = 32;

Status BadQuery(const std::string& what) { return InvalidArgument("shard query: " + what, "invalid_shard_query"); }

void PutIds(std::string* out, const std::vector<uint32_t>& ids) {
  wire::PutVarint(out, ids.size());
  for (uint32_t id : ids) wire::PutVarint(out, id);
}

bool GetIds(wire::Reader* r, std::vector<uint32_t>* ids) {
  uint64_t n = 0;
  if (!r->Count(&n)) return false;
  ids->resize(n);
  for (uint32_t& id : *ids) {
    uint64_t v = 0;
    if (!r->Varint(&v) || v > UINT32_MAX) return false;
    id = static_cast<uint32_t>(v);
  }
  return true;
}

void PutOptional(std::string* out, const std::optional<float>& v) {
  if (v) wire::PutFloats(out, &*v, 1);
}

bool GetOptional(wire::Reader* r, bool present, std::optional<float>* v) {
  if (!present) return true;
  std::vector<float> f;
  if (!r->Floats(&f, 1) || !std::isfinite(f[0])) return false;
  *v = f[0];
  return true;
}

}  // namespace

std::string EncodeShardQuery(const ShardQuery& q) {
  const QueryRequest& r = q.request;
  std::string out;
  out.push_back(kQueryMagic);
  out.push_back(static_cast<char>(kQueryVersion));
  wire::PutBytes(&out, q.tenant);
  wire::PutBytes(&out, q.collection);
  wire::PutVarint(&out, q.collection_id);
  wire::PutVarint(&out, q.read_after);
  wire::PutVarint(&out, q.epoch);
  wire::PutVarint(&out, static_cast<uint64_t>(std::max<int64_t>(0, q.timeout_ms)));
  const uint64_t flags = (r.vector ? kHasVector : 0) | (r.mmr_lambda ? kHasMmr : 0) | (r.bm25_k1 ? kHasK1 : 0) |
                         (r.bm25_b ? kHasB : 0) | (r.title_boost ? kHasTitleBoost : 0) |
                         (r.group_by_document ? kGroupByDocument : 0);
  wire::PutVarint(&out, flags);
  wire::PutVarint(&out, static_cast<uint64_t>(r.mode));
  wire::PutVarint(&out, static_cast<uint64_t>(r.fusion));
  wire::PutVarint(&out, r.k);
  wire::PutVarint(&out, r.ef);
  wire::PutVarint(&out, r.depth);
  wire::PutBytes(&out, r.text);
  wire::PutBytes(&out, r.filter_key);
  if (r.vector) {
    wire::PutVarint(&out, r.vector->size());
    wire::PutFloats(&out, r.vector->data(), r.vector->size());
  }
  PutOptional(&out, r.mmr_lambda);
  PutOptional(&out, r.bm25_k1);
  PutOptional(&out, r.bm25_b);
  PutOptional(&out, r.title_boost);
  PutIds(&out, q.vector_shards);
  PutIds(&out, q.keyword_shards);
  return out;
}

StatusOr<ShardQuery> DecodeShardQuery(std::string_view in) {
  if (in.size() < 2 || in[0] != kQueryMagic) return BadQuery("not a shard query");
  if (static_cast<uint8_t>(in[1]) != kQueryVersion) return BadQuery("unknown version " + std::to_string(in[1]));
  wire::Reader rd(in.substr(2));
  ShardQuery q;
  QueryRequest& r = q.request;
  uint64_t timeout = 0, flags = 0, mode = 0, fusion = 0, k = 0, ef = 0, depth = 0;
  if (!rd.Bytes(&q.tenant) || !rd.Bytes(&q.collection) || !rd.Varint(&q.collection_id) || !rd.Varint(&q.read_after) ||
      !rd.Varint(&q.epoch) || !rd.Varint(&timeout) || !rd.Varint(&flags) || !rd.Varint(&mode) || !rd.Varint(&fusion) ||
      !rd.Varint(&k) || !rd.Varint(&ef) || !rd.Varint(&depth) || !rd.Bytes(&r.text) || !rd.Bytes(&r.filter_key)) {
    return BadQuery("truncated header");
  }
  if (mode > static_cast<uint64_t>(QueryMode::kHybrid)) return BadQuery("unknown mode " + std::to_string(mode));
  if (fusion > static_cast<uint64_t>(Fusion::kWeighted)) return BadQuery("unknown fusion " + std::to_string(fusion));
  if (k == 0 || k > kMaxK || ef > (1u << 20) || depth > (1u << 20) || timeout > (1ull << 40)) {
    return BadQuery("k, ef, depth or the timeout out of range");
  }
  q.timeout_ms = static_cast<int64_t>(timeout);
  r.mode = static_cast<QueryMode>(mode);
  r.mode_given = true;
  r.fusion = static_cast<Fusion>(fusion);
  r.k = k;
  r.ef = ef;
  r.depth = depth;
  r.group_by_document = (flags & kGroupByDocument) != 0;
  if (flags & kHasVector) {
    uint64_t dim = 0;
    std::vector<float> v;
    if (!rd.Varint(&dim) || dim == 0 || dim > 65536 || !rd.Floats(&v, dim)) return BadQuery("truncated vector");
    r.vector = std::move(v);
  }
  if (!GetOptional(&rd, flags & kHasMmr, &r.mmr_lambda) || !GetOptional(&rd, flags & kHasK1, &r.bm25_k1) ||
      !GetOptional(&rd, flags & kHasB, &r.bm25_b) || !GetOptional(&rd, flags & kHasTitleBoost, &r.title_boost)) {
    return BadQuery("truncated or not finite parameters");
  }
  if (!GetIds(&rd, &q.vector_shards) || !GetIds(&rd, &q.keyword_shards)) return BadQuery("truncated shard lists");
  if (!rd.done()) return BadQuery("trailing bytes");
  if (!r.filter_key.empty()) {
    auto spec = ParseJson(r.filter_key);
    if (!spec.ok()) return BadQuery("the filter is not JSON");
    auto filter = Filter::Parse(*spec);
    if (!filter.ok()) return BadQuery(filter.status().message());
    r.filter = std::move(filter).value();
  }
  return q;
}

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
