#include "embed/rocks_tier.h"

#include <rocksdb/utilities/db_ttl.h>

#include <cstring>

namespace contextd {

struct RocksTier::Rep {
  std::unique_ptr<rocksdb::DBWithTTL> db;
  int64_t ttl_ms;
  const Clock* clock;
};

RocksTier::RocksTier(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
RocksTier::~RocksTier() = default;

StatusOr<std::unique_ptr<RocksTier>> RocksTier::Open(const std::string& dir, int64_t ttl_s, const Clock* clock) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compression = rocksdb::kLZ4Compression;  // vectors barely compress; keep it cheap
  rocksdb::DBWithTTL* db = nullptr;
  rocksdb::Status s = rocksdb::DBWithTTL::Open(options, dir, &db, static_cast<int32_t>(ttl_s));
  if (!s.ok()) return Internal("embedding cache: cannot open " + dir + ": " + s.ToString(), "storage_error");
  auto rep = std::make_unique<Rep>();
  rep->db.reset(db);
  rep->ttl_ms = ttl_s * 1000;
  rep->clock = clock;
  return std::unique_ptr<RocksTier>(new RocksTier(std::move(rep)));
}

// Value: expiry (wall ms, 8 bytes little-endian) then the float32 vector.
void RocksTier::MultiGet(const std::vector<EmbedKey>& keys, int dim, float* out, std::vector<bool>* hit) {
  hit->assign(keys.size(), false);
  std::vector<std::string> names;
  names.reserve(keys.size());
  for (const auto& k : keys) names.push_back(k.Bytes());
  std::vector<rocksdb::Slice> slices(names.begin(), names.end());
  std::vector<std::string> values;
  auto statuses = rep_->db->MultiGet(rocksdb::ReadOptions(), slices, &values);
  const size_t bytes = sizeof(float) * static_cast<size_t>(dim);
  const int64_t now = rep_->clock->WallMillis();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!statuses[i].ok() || values[i].size() != 8 + bytes) continue;
    int64_t expires = 0;
    std::memcpy(&expires, values[i].data(), 8);
    if (expires <= now) continue;
    std::memcpy(out + i * static_cast<size_t>(dim), values[i].data() + 8, bytes);
    (*hit)[i] = true;
  }
}

void RocksTier::MultiPut(const std::vector<EmbedKey>& keys, int dim, const float* vecs) {
  const size_t bytes = sizeof(float) * static_cast<size_t>(dim);
  const int64_t expires = rep_->clock->WallMillis() + rep_->ttl_ms;
  rocksdb::WriteBatch batch;
  std::string value(8 + bytes, '\0');
  for (size_t i = 0; i < keys.size(); ++i) {
    std::memcpy(value.data(), &expires, 8);
    std::memcpy(value.data() + 8, vecs + i * static_cast<size_t>(dim), bytes);
    batch.Put(keys[i].Bytes(), value);
  }
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  (void)rep_->db->Write(wo, &batch);  // best-effort: a lost entry is recomputed
}

}  // namespace contextd
