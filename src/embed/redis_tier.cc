#include "embed/redis_tier.h"

#include <hiredis/hiredis.h>

#include <cstring>

namespace contextd {

RedisTier::RedisTier(RedisTierOptions options)
    : options_(std::move(options)), pool_(RedisEndpoint{options_.host, options_.port, options_.timeout_ms}) {}
RedisTier::~RedisTier() = default;

void RedisTier::MultiGet(const std::vector<EmbedKey>& keys, int dim, float* out, std::vector<bool>* hit) {
  hit->assign(keys.size(), false);
  if (keys.empty()) return;
  RedisPool::Lease conn = pool_.Take();
  if (conn.get() == nullptr) {
    errors_.fetch_add(1);
    return;
  }
  std::vector<std::string> names;
  std::vector<const char*> argv = {"MGET"};
  std::vector<size_t> lens = {4};
  names.reserve(keys.size());
  for (const auto& k : keys) names.push_back(options_.prefix + k.Bytes());
  for (const auto& n : names) {
    argv.push_back(n.data());
    lens.push_back(n.size());
  }
  auto* reply =
      static_cast<redisReply*>(redisCommandArgv(conn.get(), static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (reply == nullptr) {
    errors_.fetch_add(1);
    conn.Broken();
    return;
  }
  const size_t bytes = sizeof(float) * static_cast<size_t>(dim);
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == keys.size()) {
    for (size_t i = 0; i < keys.size(); ++i) {
      const redisReply* r = reply->element[i];
      if (r->type == REDIS_REPLY_STRING && r->len == bytes) {
        std::memcpy(out + i * static_cast<size_t>(dim), r->str, bytes);
        (*hit)[i] = true;
      }
    }
  } else {
    errors_.fetch_add(1);
  }
  freeReplyObject(reply);
}

void RedisTier::MultiPut(const std::vector<EmbedKey>& keys, int dim, const float* vecs) {
  if (keys.empty()) return;
  RedisPool::Lease conn = pool_.Take();
  if (conn.get() == nullptr) {
    errors_.fetch_add(1);
    return;
  }
  const size_t bytes = sizeof(float) * static_cast<size_t>(dim);
  const std::string ttl = std::to_string(options_.ttl_s);
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string name = options_.prefix + keys[i].Bytes();
    const char* argv[] = {"SET", name.data(), reinterpret_cast<const char*>(vecs + i * static_cast<size_t>(dim)), "EX",
                          ttl.data()};
    const size_t lens[] = {3, name.size(), bytes, 2, ttl.size()};
    redisAppendCommandArgv(conn.get(), 5, argv, lens);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(conn.get(), &reply) != REDIS_OK) {
      errors_.fetch_add(1);
      conn.Broken();
      return;
    }
    freeReplyObject(reply);
  }
}

}  // namespace contextd
