#include "engine/shard_layout.h"

#include <cmath>
#include <vector>

#include "engine/wire_format.h"

namespace contextd {
namespace {

// Format: 'L', version, split count, then per split: shard, ways, ways * dim floats.
constexpr char kMagic = 'L';
constexpr uint8_t kVersion = 1;

Status Corrupt(const std::string& what) { return InvalidArgument("shard layout: " + what, "invalid_mutation"); }

}  // namespace

uint32_t NearestCentroidExact(Metric metric, const float* vector, const float* centroids, size_t n, size_t dim) {
  if (n <= 1) return 0;
  std::vector<float> unit;
  if (metric == Metric::kCosine) {
    unit.assign(vector, vector + dim);
    NormalizeInPlace(unit.data(), dim);
    vector = unit.data();
  }
  uint32_t best = 0;
  double best_score = 0;
  for (size_t c = 0; c < n; ++c) {
    const float* row = centroids + c * dim;
    double score = 0;
    if (metric == Metric::kL2) {
      for (size_t i = 0; i < dim; ++i) {
        // The difference of two floats is not always exact in float; in double it is.
        const double d = static_cast<double>(vector[i]) - static_cast<double>(row[i]);
        score -= d * d;
      }
    } else {
      for (size_t i = 0; i < dim; ++i) score += static_cast<double>(vector[i]) * static_cast<double>(row[i]);
    }
    if (c == 0 || score > best_score) {
      best = static_cast<uint32_t>(c);
      best_score = score;
    }
  }
  return best;
}

ShardLayout::ShardLayout(Metric metric, uint32_t dim) : metric_(metric), dim_(dim) {
  nodes_.emplace_back();
  nodes_[0].centroid.assign(dim_, 0.0f);
}

StatusOr<bool> ShardLayout::Split(uint32_t shard, const std::vector<float>& centroids,
                                  std::vector<uint32_t>* child_ids) {
  if (shard >= nodes_.size()) return Corrupt("no shard " + std::to_string(shard) + " to split");
  if (dim_ == 0 || centroids.size() % dim_ != 0) return Corrupt("centroids are not whole vectors");
  const size_t ways = centroids.size() / dim_;
  if (ways < 2 || ways > kMaxSplitWays) return Corrupt("a split makes 2 to 256 shards, not " + std::to_string(ways));
  for (float x : centroids) {
    if (!std::isfinite(x)) return Corrupt("a centroid is not finite");
  }
  if (!is_leaf(shard)) return false;
  if (child_ids != nullptr) child_ids->clear();
  const uint32_t first = static_cast<uint32_t>(nodes_.size());
  for (size_t i = 0; i < ways; ++i) {
    Node child;
    child.parent = shard;
    child.centroid.assign(centroids.begin() + static_cast<ptrdiff_t>(i * dim_),
                          centroids.begin() + static_cast<ptrdiff_t>((i + 1) * dim_));
    nodes_.push_back(std::move(child));
    nodes_[shard].children.push_back(first + static_cast<uint32_t>(i));
    if (child_ids != nullptr) child_ids->push_back(first + static_cast<uint32_t>(i));
  }
  nodes_[shard].child_centroids = centroids;
  splits_.push_back({shard, centroids});
  return true;
}

uint32_t ShardLayout::Step(uint32_t shard, const float* vector) const {
  const Node& node = nodes_[shard];
  if (node.children.empty()) return shard;
  return node.children[NearestCentroidExact(metric_, vector, node.child_centroids.data(), node.children.size(), dim_)];
}

uint32_t ShardLayout::Leaf(const float* vector) const {
  uint32_t shard = kRoot;
  for (uint32_t next = Step(shard, vector); next != shard; next = Step(shard, vector)) shard = next;
  return shard;
}

std::vector<uint32_t> ShardLayout::leaves() const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    if (is_leaf(i)) out.push_back(i);
  }
  return out;
}

std::string ShardLayout::Encode() const {
  std::string out;
  out.push_back(kMagic);
  out.push_back(static_cast<char>(kVersion));
  wire::PutVarint(&out, splits_.size());
  for (const SplitRecord& s : splits_) {
    wire::PutVarint(&out, s.shard);
    wire::PutVarint(&out, s.centroids.size() / dim_);
    wire::PutFloats(&out, s.centroids.data(), s.centroids.size());
  }
  return out;
}

StatusOr<ShardLayout> ShardLayout::Decode(std::string_view bytes, Metric metric, uint32_t dim) {
  if (bytes.size() < 2 || bytes[0] != kMagic) return Corrupt("not a layout");
  if (static_cast<uint8_t>(bytes[1]) != kVersion) {
    return Corrupt("unknown version " + std::to_string(static_cast<uint8_t>(bytes[1])));
  }
  ShardLayout layout(metric, dim);
  wire::Reader r(bytes.substr(2));
  uint64_t splits = 0;
  if (!r.Count(&splits)) return Corrupt("truncated");
  for (uint64_t i = 0; i < splits; ++i) {
    uint64_t shard = 0, ways = 0;
    std::vector<float> centroids;
    if (!r.Varint(&shard) || shard > UINT32_MAX || !r.Varint(&ways) || ways > kMaxSplitWays ||
        !r.Floats(&centroids, ways * dim)) {
      return Corrupt("truncated split");
    }
    CTX_ASSIGN_OR_RETURN(bool split, layout.Split(static_cast<uint32_t>(shard), centroids));
    if (!split) return Corrupt("shard " + std::to_string(shard) + " split twice");
  }
  if (!r.done()) return Corrupt("trailing bytes");
  return layout;
}

}  // namespace contextd
