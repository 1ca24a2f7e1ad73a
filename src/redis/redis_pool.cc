#include "redis/redis_pool.h"

#include <hiredis/hiredis.h>

#include <charconv>

namespace contextd {

StatusOr<RedisEndpoint> ParseRedisUrl(std::string_view url) {
  const std::string original(url);
  if (url.starts_with("redis://")) url.remove_prefix(8);
  if (url.ends_with("/")) url.remove_suffix(1);
  RedisEndpoint e;
  const size_t colon = url.rfind(':');
  std::string_view host = colon == std::string_view::npos ? url : url.substr(0, colon);
  if (host.empty() || host.find_first_of("/@ ") != std::string_view::npos) {
    return InvalidArgument("a Redis address is redis://HOST:PORT, got '" + original + "'", "invalid_value");
  }
  e.host = std::string(host);
  if (colon != std::string_view::npos) {
    const std::string_view port = url.substr(colon + 1);
    int p = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535) {
      return InvalidArgument("a Redis port is 1 to 65535, got '" + original + "'", "invalid_value");
    }
    e.port = p;
  }
  return e;
}

RedisPool::RedisPool(RedisEndpoint endpoint, size_t max_idle) : endpoint_(std::move(endpoint)), max_idle_(max_idle) {}

RedisPool::~RedisPool() {
  MutexLock lock(&mu_);
  for (redisContext* c : idle_) redisFree(c);
}

RedisPool::Lease::~Lease() {
  if (ctx_ != nullptr) pool_->Give(ctx_);
}

void RedisPool::Lease::Broken() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

RedisPool::Lease RedisPool::Take() {
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return Lease(this, c);
    }
  }
  const timeval tv{static_cast<time_t>(endpoint_.timeout_ms / 1000),
                   static_cast<suseconds_t>(endpoint_.timeout_ms % 1000 * 1000)};
  redisContext* c = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv);
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) redisFree(c);
    return Lease(this, nullptr);
  }
  redisSetTimeout(c, tv);
  return Lease(this, c);
}

Status RedisPool::Ping() {
  Lease conn = Take();
  if (conn.get() == nullptr)
    return Unavailable("cannot connect to redis " + endpoint_.host + ":" + std::to_string(endpoint_.port));
  auto* reply = static_cast<redisReply*>(redisCommand(conn.get(), "PING"));
  if (reply == nullptr) {
    conn.Broken();
    return Unavailable("redis " + endpoint_.host + ":" + std::to_string(endpoint_.port) + " did not answer PING");
  }
  const bool pong = reply->type == REDIS_REPLY_STATUS;
  freeReplyObject(reply);
  if (!pong) return Unavailable("redis answered PING with an error");
  return Status::Ok();
}

void RedisPool::Give(redisContext* ctx) {
  MutexLock lock(&mu_);
  if (idle_.size() < max_idle_) {
    idle_.push_back(ctx);
    return;
  }
  lock.Unlock();
  redisFree(ctx);
}

}  // namespace contextd
