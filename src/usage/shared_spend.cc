#include "usage/shared_spend.h"

#include <hiredis/hiredis.h>

#include <cstdlib>
#include <vector>

namespace contextd {

namespace {

constexpr int64_t kExpireS = 40LL * 24 * 3600;  // past the longest period (a month)

}  // namespace

SharedSpend::SharedSpend(RedisEndpoint redis, std::string prefix, std::chrono::milliseconds interval)
    : pool_(std::move(redis)), prefix_(std::move(prefix)), interval_(interval) {
  thread_ = std::thread([this] { Loop(); });
}

SharedSpend::~SharedSpend() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  RoundTrip();  // what was added last
}

void SharedSpend::Add(const std::string& tenant, const std::string& scope, double usd) {
  MutexLock lock(&mu_);
  Slot& s = slots_[scope];
  s.tenant = tenant;
  s.pending += usd;
}

double SharedSpend::Get(const std::string& tenant, const std::string& scope) {
  MutexLock lock(&mu_);
  Slot& s = slots_[scope];
  s.tenant = tenant;
  s.watched = true;
  // Until Redis answers, what this node added is the least the cluster spent.
  return s.total + s.pending;
}

bool SharedSpend::reachable() const {
  MutexLock lock(&mu_);
  return reachable_;
}

void SharedSpend::Sync() { RoundTrip(); }

void SharedSpend::Loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (!stop_) lock.WaitFor(wake_, interval_);
      if (stop_) return;
    }
    RoundTrip();
  }
}

void SharedSpend::RoundTrip() {
  MutexLock trip(&trip_mu_);
  // What to send: every pending increment, and a refresh of what was read lately.
  struct Out {
    std::string scope, tenant;
    double add = 0;
  };
  std::vector<Out> out;
  {
    MutexLock lock(&mu_);
    for (auto& [scope, s] : slots_) {
      if (s.pending == 0 && !s.watched) continue;
      out.push_back({scope, s.tenant, s.pending});
      s.pending = 0;
      s.watched = false;
    }
  }
  if (out.empty()) return;
  RedisPool::Lease conn = pool_.Take();
  bool ok = conn.get() != nullptr;
  std::vector<std::string> names;
  if (ok) {
    for (const Out& o : out) {
      names.push_back(prefix_ + "{" + o.tenant + "}:" + o.scope);
      const std::string& name = names.back();
      if (o.add != 0) {
        char amount[64];
        snprintf(amount, sizeof(amount), "%.17g", o.add);
        const char* argv[] = {"INCRBYFLOAT", name.c_str(), amount};
        redisAppendCommandArgv(conn.get(), 3, argv, nullptr);
        const std::string ttl = std::to_string(kExpireS);
        const char* expire[] = {"EXPIRE", name.c_str(), ttl.c_str()};
        redisAppendCommandArgv(conn.get(), 3, expire, nullptr);
      } else {
        const char* argv[] = {"GET", name.c_str()};
        redisAppendCommandArgv(conn.get(), 2, argv, nullptr);
      }
    }
  }
  std::vector<double> totals(out.size(), -1);  // -1: not heard
  for (size_t i = 0; ok && i < out.size(); ++i) {
    for (int reply = 0; reply < (out[i].add != 0 ? 2 : 1); ++reply) {
      void* raw = nullptr;
      if (redisGetReply(conn.get(), &raw) != REDIS_OK || raw == nullptr) {
        ok = false;
        break;
      }
      const auto* r = static_cast<const redisReply*>(raw);
      if (reply == 0) {
        if (r->type == REDIS_REPLY_STRING) totals[i] = std::strtod(r->str, nullptr);
        if (r->type == REDIS_REPLY_NIL) totals[i] = 0;
      }
      freeReplyObject(raw);
    }
  }
  if (!ok && conn.get() != nullptr) conn.Broken();
  MutexLock lock(&mu_);
  reachable_ = ok;
  for (size_t i = 0; i < out.size(); ++i) {
    Slot& s = slots_[out[i].scope];
    if (totals[i] >= 0) {
      s.total = totals[i];
      s.heard = true;
    } else {
      s.pending += out[i].add;  // not sent (or not known to be): sent again next round
      if (out[i].add == 0) s.watched = true;
    }
  }
}

}  // namespace contextd
