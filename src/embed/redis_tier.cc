#include "embed/redis_tier.h"

#include <hiredis/hiredis.h>

#include <cstring>

namespace contextd {

struct RedisTier::Conn {
  redisContext* ctx = nullptr;
  ~Conn() {
    if (ctx != nullptr) redisFree(ctx);
  }
};

RedisTier::RedisTier(RedisTierOptions options) : options_(std::move(options)) {}
RedisTier::~RedisTier() = default;

std::unique_ptr<RedisTier::Conn> RedisTier::Take() {
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  timeval tv{static_cast<time_t>(options_.timeout_ms / 1000),
             static_cast<suseconds_t>(options_.timeout_ms % 1000 * 1000)};
  auto c = std::make_unique<Conn>();
  c->ctx = redisConnectWithTimeout(options_.host.c_str(), options_.port, tv);
  if (c->ctx == nullptr || c->ctx->err != 0) return nullptr;
  redisSetTimeout(c->ctx, tv);
  return c;
}

void RedisTier::Give(std::unique_ptr<Conn> c) {
  MutexLock lock(&mu_);
  if (idle_.size() < 16) idle_.push_back(std::move(c));
}

void RedisTier::MultiGet(const std::vector<EmbedKey>& keys, int dim, float* out, std::vector<bool>* hit) {
  hit->assign(keys.size(), false);
  if (keys.empty()) return;
  auto conn = Take();
  if (conn == nullptr) {
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
      static_cast<redisReply*>(redisCommandArgv(conn->ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (reply == nullptr) {
    errors_.fetch_add(1);
    return;  // the connection is broken: drop it
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
  Give(std::move(conn));
}

void RedisTier::MultiPut(const std::vector<EmbedKey>& keys, int dim, const float* vecs) {
  if (keys.empty()) return;
  auto conn = Take();
  if (conn == nullptr) {
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
    redisAppendCommandArgv(conn->ctx, 5, argv, lens);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(conn->ctx, &reply) != REDIS_OK) {
      errors_.fetch_add(1);
      return;  // broken connection: dropped
    }
    freeReplyObject(reply);
  }
  Give(std::move(conn));
}

}  // namespace contextd
