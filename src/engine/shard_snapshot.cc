#include "engine/shard_snapshot.h"

#include <algorithm>

#include "common/hash.h"
#include "engine/shards.h"
#include "engine/wire_format.h"
#include "index/search_types.h"

namespace contextd {
namespace {

// Format: 'S', version, then varints, length-prefixed bytes and raw little-endian floats.
constexpr char kMagic = 'S';
constexpr uint8_t kVersion = 2;  // 2: the layout replaced the flat centroids

Status Corrupt(const std::string& what) { return InvalidArgument("shard snapshot: " + what, "invalid_snapshot"); }

}  // namespace

std::string EncodeShardSnapshot(const ShardSnapshot& s) {
  std::string out;
  out.push_back(kMagic);
  out.push_back(static_cast<char>(kVersion));
  wire::PutVarint(&out, s.sequence);
  wire::PutVarint(&out, s.collection_id);
  wire::PutVarint(&out, s.shard_id);
  wire::PutVarint(&out, s.dim);
  wire::PutVarint(&out, static_cast<uint64_t>(s.metric));
  wire::PutBytes(&out, s.layout);
  wire::PutVarint(&out, s.documents.size());
  for (const auto& d : s.documents) {
    wire::PutBytes(&out, d.id);
    wire::PutBytes(&out, d.title);
    wire::PutBytes(&out, d.metadata.Dump());
    wire::PutVarint(&out, d.refs.size());
    for (const auto& r : d.refs) wire::PutBytes(&out, r);
  }
  wire::PutVarint(&out, s.chunks.size());
  for (const auto& c : s.chunks) {
    wire::PutVarint(&out, c.document);
    wire::PutVarint(&out, c.ordinal);
    wire::PutBytes(&out, c.text);
    wire::PutFloats(&out, c.vector.data(), c.vector.size());
  }
  return out;
}

StatusOr<ShardSnapshot> DecodeShardSnapshot(std::string_view in) {
  if (in.size() < 2 || in[0] != kMagic) return Corrupt("not a shard snapshot");
  if (static_cast<uint8_t>(in[1]) != kVersion) return Corrupt("unknown version " + std::to_string(in[1]));
  wire::Reader r(in.substr(2));
  ShardSnapshot s;
  uint64_t shard_id, dim, metric, n;
  if (!r.Varint(&s.sequence) || !r.Varint(&s.collection_id) || !r.Varint(&shard_id) || !r.Varint(&dim) ||
      !r.Varint(&metric) || !r.Bytes(&s.layout)) {
    return Corrupt("truncated header");
  }
  if (dim == 0 || dim > 65536 || metric > static_cast<uint64_t>(Metric::kL2) || shard_id > UINT32_MAX) {
    return Corrupt("bad header");
  }
  s.shard_id = static_cast<uint32_t>(shard_id);
  s.dim = static_cast<uint32_t>(dim);
  s.metric = static_cast<Metric>(metric);
  auto layout = ShardLayout::Decode(s.layout, s.metric, s.dim);
  if (!layout.ok()) return Corrupt(layout.status().message());
  if (!layout->contains(s.shard_id)) return Corrupt("the shard is not in the layout");
  if (!r.Count(&n)) return Corrupt("truncated documents");
  s.documents.resize(n);
  for (auto& d : s.documents) {
    std::string metadata;
    uint64_t refs;
    if (!r.Bytes(&d.id) || !r.Bytes(&d.title) || !r.Bytes(&metadata) || !r.Count(&refs)) {
      return Corrupt("truncated document");
    }
    auto parsed = ParseJson(metadata);
    if (!parsed.ok() || !parsed->is_object()) return Corrupt("document metadata is not an object");
    d.metadata = std::move(parsed).value();
    d.refs.resize(refs);
    for (auto& ref : d.refs) {
      if (!r.Bytes(&ref)) return Corrupt("truncated refs");
    }
  }
  if (!r.Count(&n)) return Corrupt("truncated chunks");
  s.chunks.resize(n);
  for (auto& c : s.chunks) {
    uint64_t doc, ordinal;
    if (!r.Varint(&doc) || !r.Varint(&ordinal) || !r.Bytes(&c.text) || !r.Floats(&c.vector, dim)) {
      return Corrupt("truncated chunk");
    }
    if (doc >= s.documents.size() || ordinal > UINT32_MAX) return Corrupt("chunk of no document");
    c.document = static_cast<uint32_t>(doc);
    c.ordinal = static_cast<uint32_t>(ordinal);
  }
  if (!r.done()) return Corrupt("trailing bytes");
  return s;
}

uint64_t ShardDigest(const ShardSnapshot& s) {
  // Sum of per-chunk hashes: independent of the order chunks are listed in.
  uint64_t sum = 0;
  for (const auto& c : s.chunks) {
    uint64_t h = Hash64(s.documents[c.document].id);
    h = Hash64(std::to_string(c.ordinal), h);
    h = Hash64(c.text, h);
    h = Hash64(std::string_view(reinterpret_cast<const char*>(c.vector.data()), c.vector.size() * sizeof(float)), h);
    sum += h;
  }
  return sum + s.chunks.size();
}

namespace {

// The snapshot's layout; one shard when it holds none readable (DecodeShardSnapshot
// refuses those, so only a snapshot made by hand gets here).
ShardLayout LayoutOf(const ShardSnapshot& s) {
  auto decoded = ShardLayout::Decode(s.layout, s.metric, s.dim);
  return decoded.ok() ? std::move(decoded).value() : ShardLayout(s.metric, s.dim);
}

}  // namespace

ShardReplica::ShardReplica(const ShardSnapshot& snapshot) : layout_(LayoutOf(snapshot)) {
  meta_ = snapshot;
  meta_.documents.clear();
  meta_.chunks.clear();
  for (const auto& c : snapshot.chunks) {
    const ShardSnapshot::Document& d = snapshot.documents[c.document];
    HeldDocument& held = docs_[d.id];
    held.info = d;
    held.chunks.push_back({c.ordinal, c.text, c.vector});
  }
}

bool ShardReplica::BelongsHere(const float* vector) const {
  // On the way down the layout to the chunk's shard, as ShardSet::Place goes: this shard,
  // or one it was split into.
  for (uint32_t id = ShardLayout::kRoot;;) {
    if (id == meta_.shard_id) return true;
    const uint32_t next = layout_.Step(id, vector);
    if (next == id) return false;
    id = next;
  }
}

Status ShardReplica::Apply(const Mutation& m) {
  if (m.collection_id != meta_.collection_id) {
    return InvalidArgument("mutation " + std::to_string(m.sequence) + " is not of this shard's collection",
                           "invalid_mutation");
  }
  if (m.sequence <= meta_.sequence) return Status::Ok();
  const size_t dim = meta_.dim;
  if (m.kind == MutationKind::kDeleteDocument) {
    docs_.erase(m.doc_id);
  } else if (m.kind == MutationKind::kUpsertDocuments) {
    if (m.dim != dim || m.vectors.size() != m.chunk_count() * dim) {
      return InvalidArgument("upsert vectors do not match the shard (dim " + std::to_string(dim) + ")",
                             "invalid_mutation");
    }
    size_t row = 0;
    for (const MutationDocument& d : m.documents) {
      docs_.erase(d.id);
      HeldDocument held;
      held.info = {d.id, d.title, d.metadata, d.refs};
      for (size_t j = 0; j < d.chunks.size(); ++j, ++row) {
        const float* v = &m.vectors[row * dim];
        if (!BelongsHere(v)) continue;
        HeldChunk c{static_cast<uint32_t>(j), std::string(d.chunk(j)), std::vector<float>(v, v + dim)};
        // Stored as the shard's graph stores it.
        if (meta_.metric == Metric::kCosine) NormalizeInPlace(c.vector.data(), dim);
        held.chunks.push_back(std::move(c));
      }
      if (!held.chunks.empty()) docs_[d.id] = std::move(held);
    }
  } else if (m.kind == MutationKind::kSplitShard) {
    CTX_RETURN_IF_ERROR(layout_.Split(m.shard, m.vectors).status());
    meta_.layout = layout_.Encode();
  } else if (m.kind == MutationKind::kShardUnsplittable) {
    // Changes how a node indexes the shard, not what it holds.
  } else {
    return InvalidArgument("a shard applies upserts, deletes and splits, not " + std::string(MutationKindName(m.kind)),
                           "invalid_mutation");
  }
  meta_.sequence = m.sequence;
  return Status::Ok();
}

std::vector<ShardReplica::Hit> ShardReplica::Search(const float* query, size_t k) const {
  std::vector<Hit> hits;
  float score = 0;
  for (const auto& [id, doc] : docs_) {
    for (const auto& c : doc.chunks) {
      ScoreCentroids(meta_.metric, query, c.vector.data(), 1, meta_.dim, &score);
      hits.push_back({id, c.ordinal, score});
    }
  }
  const size_t n = std::min(k, hits.size());
  std::partial_sort(hits.begin(), hits.begin() + static_cast<ptrdiff_t>(n), hits.end(), [](const Hit& a, const Hit& b) {
    return a.score != b.score ? a.score > b.score : std::tie(a.doc_id, a.ordinal) < std::tie(b.doc_id, b.ordinal);
  });
  hits.resize(n);
  return hits;
}

size_t ShardReplica::chunk_count() const {
  size_t n = 0;
  for (const auto& [id, doc] : docs_) n += doc.chunks.size();
  return n;
}

ShardSnapshot ShardReplica::Snapshot() const {
  ShardSnapshot s = meta_;
  for (const auto& [id, doc] : docs_) {
    const uint32_t index = static_cast<uint32_t>(s.documents.size());
    s.documents.push_back(doc.info);
    for (const auto& c : doc.chunks) s.chunks.push_back({index, c.ordinal, c.text, c.vector});
  }
  return s;
}

}  // namespace contextd
