#include "auth/shared_rate_limiter.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace contextd {
namespace {

// KEYS: one hash per scope. ARGV: the op, an amount (tokens), then each scope's request
// and token limits per minute (0: no such limit, its fields are not touched). Returns
// {admitted, seconds to wait, refused scope (1-based, 0 none), then per scope its request
// and token levels}. The same arithmetic as RateLimiter, on Redis's clock.
constexpr char kScript[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local op = ARGV[1]
local amount = tonumber(ARGV[2])
local n = #KEYS
local level, limit = {}, {}
local function refill(l, at, lim)
  if not l then return lim end
  l = tonumber(l)
  at = tonumber(at)
  if now > at then l = math.min(lim, l + lim * (now - at) / 60000000) end
  return l
end
for i = 1, n do
  local rpm, tpm = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  limit[2 * i - 1], limit[2 * i] = rpm, tpm
  local v = redis.call('HMGET', KEYS[i], 'rl', 'ra', 'tl', 'ta')
  if rpm > 0 then level[2 * i - 1] = refill(v[1], v[2], rpm) end
  if tpm > 0 then level[2 * i] = refill(v[3], v[4], tpm) end
end
local admitted, wait, refused = 1, 0, 0
local function check(k, need, positive)
  local l = level[k]
  if l >= need and (not positive or l > 0) then return end
  local extra = 0
  if positive and need == 0 then extra = 1 end
  local w = (need - l + extra) * 60 / limit[k]
  if w > wait then
    refused = math.floor((k + 1) / 2)
    wait = w
  end
  admitted = 0
end
if op == 'admit' then
  for k = 1, 2 * n do
    if limit[k] > 0 then
      if k % 2 == 1 then check(k, 1, true) else check(k, 0, true) end
    end
  end
  if admitted == 1 then
    for k = 1, 2 * n, 2 do
      if limit[k] > 0 then level[k] = level[k] - 1 end
    end
  end
elseif op == 'reserve' then
  for k = 2, 2 * n, 2 do
    if limit[k] > 0 then check(k, amount, false) end
  end
  for k = 1, 2 * n do
    if limit[k] > 0 then
      if k % 2 == 0 and admitted == 1 then level[k] = level[k] - amount end
      if k % 2 == 1 and admitted == 0 then level[k] = math.min(limit[k], level[k] + 1) end
    end
  end
elseif op == 'refund' then
  for k = 1, 2 * n, 2 do
    if limit[k] > 0 then level[k] = math.min(limit[k], level[k] + 1) end
  end
elseif op == 'settle' then
  for k = 2, 2 * n, 2 do
    if limit[k] > 0 then level[k] = math.min(limit[k], level[k] - amount) end
  end
end
local out = {admitted, string.format('%.17g', wait), refused}
local stamp = string.format('%d', now)
for i = 1, n do
  local fields = {}
  local r, tk = level[2 * i - 1], level[2 * i]
  if r then
    fields[#fields + 1] = 'rl'; fields[#fields + 1] = string.format('%.17g', r)
    fields[#fields + 1] = 'ra'; fields[#fields + 1] = stamp
  end
  if tk then
    fields[#fields + 1] = 'tl'; fields[#fields + 1] = string.format('%.17g', tk)
    fields[#fields + 1] = 'ta'; fields[#fields + 1] = stamp
  end
  redis.call('HSET', KEYS[i], unpack(fields))
  redis.call('PEXPIRE', KEYS[i], 600000)
  out[2 + 2 * i] = string.format('%.17g', r or 0)
  out[3 + 2 * i] = string.format('%.17g', tk or 0)
end
return out
)lua";

std::string Sha1Hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

bool HasRate(const RateScope& s) { return s.rpm > 0 || s.tpm > 0; }

std::vector<RateScope> RateOnly(const std::vector<RateScope>& scopes) {
  std::vector<RateScope> out;
  for (const RateScope& s : scopes) {
    if (HasRate(s)) out.push_back({s.name, s.rpm, s.tpm, 0, s.tenant});
  }
  return out;
}

// The scopes' in-flight bounds alone (for the per-node count), or none when no scope has one.
std::vector<RateScope> InflightOnly(const std::vector<RateScope>& scopes) {
  std::vector<RateScope> out;
  for (const RateScope& s : scopes) {
    if (s.max_inflight > 0) out.push_back({s.name, 0, 0, s.max_inflight, s.tenant});
  }
  return out;
}

double ParseNumber(const redisReply* r) {
  if (r->type == REDIS_REPLY_INTEGER) return static_cast<double>(r->integer);
  if (r->type == REDIS_REPLY_STRING) return std::strtod(r->str, nullptr);
  return 0;
}

// Reads the script's answer into d; false when the reply is not one.
bool ReadReply(const redisReply* r, const std::vector<RateScope>& rate, RateDecision* d) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 + 2 * rate.size()) return false;
  d->admitted = r->element[0]->integer == 1;
  d->retry_after_s = ParseNumber(r->element[1]);
  const int64_t refused = r->element[2]->integer;
  if (refused > 0 && static_cast<size_t>(refused) <= rate.size()) d->refused_by = rate[refused - 1].name;
  std::vector<double> requests(rate.size()), tokens(rate.size());
  for (size_t i = 0; i < rate.size(); ++i) {
    requests[i] = ParseNumber(r->element[3 + 2 * i]);
    tokens[i] = ParseNumber(r->element[4 + 2 * i]);
  }
  ReportTightest(rate, requests, tokens, d);
  return true;
}

}  // namespace

SharedRateLimiter::SharedRateLimiter(SharedRateLimitOptions options, const Clock* clock, std::function<size_t()> nodes,
                                     MetricsRegistry* metrics)
    : options_(std::move(options)),
      clock_(clock),
      nodes_(std::move(nodes)),
      sha_(Sha1Hex(kScript)),
      pool_(options_.redis),
      inflight_(clock),
      fallback_(clock) {
  if (metrics != nullptr) {
    degraded_gauge_ = metrics->GetGauge(
        "contextd_rate_limits_degraded",
        "1 while shared rate limits are unreachable and this node enforces its share of each limit alone.");
    errors_ = metrics->GetCounter("contextd_rate_limit_redis_errors_total",
                                  "Rate-limit round trips Redis did not answer (decided locally instead).");
  }
  thread_ = std::thread([this] { Loop(); });
}

SharedRateLimiter::~SharedRateLimiter() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  queued_.notify_all();
  thread_.join();
}

bool SharedRateLimiter::TryRedis() {
  return !degraded_.load(std::memory_order_relaxed) || clock_->NowNanos() >= retry_at_ns_.load();
}

void SharedRateLimiter::MarkDown() {
  retry_at_ns_ = clock_->NowNanos() + options_.retry_ms * 1'000'000;
  degraded_ = true;
  if (degraded_gauge_ != nullptr) degraded_gauge_->Set(1);
  if (errors_ != nullptr) errors_->Increment();
}

RateDecision SharedRateLimiter::DecideLocally(const Pending& p) {
  // This node's share: each limit divided by the nodes sharing it.
  const int64_t nodes = static_cast<int64_t>(std::max<size_t>(1, nodes_ ? nodes_() : 1));
  const auto share = [nodes](int64_t limit) { return limit > 0 ? std::max<int64_t>(1, limit / nodes) : 0; };
  std::vector<RateScope> scopes = p.scopes;
  for (RateScope& s : scopes) {
    s.rpm = share(s.rpm);
    s.tpm = share(s.tpm);
  }
  RateDecision d;
  switch (p.op) {
    case Op::kAdmit:
      d = fallback_.Admit(scopes);
      break;
    case Op::kReserve:
      d = fallback_.Reserve(scopes, p.amount);
      break;
    case Op::kRefund:
      fallback_.Refund(scopes);
      break;
    case Op::kSettle:
      fallback_.Settle(scopes, p.amount);
      break;
  }
  d.degraded = true;
  return d;
}

void SharedRateLimiter::DecideBatch(const std::vector<Pending*>& batch, std::vector<RateDecision>* out) {
  out->assign(batch.size(), RateDecision());
  std::vector<bool> decided(batch.size(), false);
  size_t left = batch.size();
  if (TryRedis()) {
    static constexpr const char* kOps[] = {"admit", "reserve", "refund", "settle"};
    RedisPool::Lease conn = pool_.Take();
    bool broken = conn.get() == nullptr;
    // A second pass follows a NOSCRIPT (a restarted or flushed Redis): the script is loaded
    // and the undecided ones are sent again.
    for (int pass = 0; pass < 2 && !broken && left > 0; ++pass) {
      std::vector<size_t> sent;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (decided[i]) continue;
        const Pending& p = *batch[i];
        std::vector<std::string> argv = {"EVALSHA", sha_, std::to_string(p.scopes.size())};
        for (const RateScope& s : p.scopes) argv.push_back(options_.prefix + "{" + s.tenant + "}:" + s.name);
        argv.push_back(kOps[static_cast<int>(p.op)]);
        argv.push_back(std::to_string(p.amount));
        for (const RateScope& s : p.scopes) {
          argv.push_back(std::to_string(s.rpm));
          argv.push_back(std::to_string(s.tpm));
        }
        std::vector<const char*> ptrs;
        std::vector<size_t> lens;
        for (const std::string& a : argv) {
          ptrs.push_back(a.data());
          lens.push_back(a.size());
        }
        redisAppendCommandArgv(conn.get(), static_cast<int>(ptrs.size()), ptrs.data(), lens.data());
        sent.push_back(i);
      }
      bool noscript = false;
      for (size_t i : sent) {
        void* raw = nullptr;
        if (broken || redisGetReply(conn.get(), &raw) != REDIS_OK || raw == nullptr) {
          broken = true;
          continue;
        }
        const auto* r = static_cast<const redisReply*>(raw);
        if (r->type == REDIS_REPLY_ERROR && std::strncmp(r->str, "NOSCRIPT", 8) == 0) {
          noscript = true;
        } else if (ReadReply(r, batch[i]->scopes, &(*out)[i])) {
          decided[i] = true;
          --left;
        }
        freeReplyObject(raw);
      }
      if (!noscript || broken) break;
      auto* loaded = static_cast<redisReply*>(redisCommand(conn.get(), "SCRIPT LOAD %s", kScript));
      if (loaded == nullptr) broken = true;
      if (loaded != nullptr) freeReplyObject(loaded);
    }
    if (broken) conn.Broken();
    if (left > 0) {
      MarkDown();
    } else if (degraded_.exchange(false) && degraded_gauge_ != nullptr) {
      degraded_gauge_->Set(0);
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!decided[i]) (*out)[i] = DecideLocally(*batch[i]);
    // Refused: the places it took in flight are free again.
    if (batch[i]->op == Op::kAdmit && !(*out)[i].admitted && !batch[i]->inflight.empty()) {
      inflight_.Refund(batch[i]->inflight);
    }
  }
}

RateDecision SharedRateLimiter::Decide(Pending p) {
  std::vector<RateDecision> out;
  DecideBatch({&p}, &out);
  return out[0];
}

void SharedRateLimiter::Enqueue(Pending p) {
  {
    MutexLock lock(&mu_);
    queue_.push_back(std::move(p));
  }
  queued_.notify_one();
}

void SharedRateLimiter::Loop() {
  for (;;) {
    std::vector<Pending> batch;
    {
      MutexLock lock(&mu_);
      while (!stop_ && queue_.empty()) lock.Wait(queued_);
      if (queue_.empty()) return;  // stopping, nothing left
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      deciding_ = batch.size();
    }
    std::vector<Pending*> ptrs;
    for (Pending& p : batch) ptrs.push_back(&p);
    std::vector<RateDecision> out;
    DecideBatch(ptrs, &out);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].done) batch[i].done(out[i]);
    }
    MutexLock lock(&mu_);
    deciding_ = 0;
    if (queue_.empty()) idle_.notify_all();
  }
}

void SharedRateLimiter::Drain() {
  MutexLock lock(&mu_);
  while (!queue_.empty() || deciding_ > 0) lock.Wait(idle_);
}

std::optional<RateDecision> SharedRateLimiter::StartAdmit(const std::vector<RateScope>& scopes, Pending* p) {
  RateDecision d;
  std::vector<RateScope> inflight = InflightOnly(scopes);
  if (!inflight.empty()) {
    d = inflight_.Admit(inflight);
    if (!d.admitted) return d;
  }
  if (std::none_of(scopes.begin(), scopes.end(), HasRate)) return d;
  *p = Pending{Op::kAdmit, RateOnly(scopes), 0, std::move(inflight), nullptr};
  return std::nullopt;
}

RateDecision SharedRateLimiter::Admit(const std::vector<RateScope>& scopes) {
  Pending p;
  if (std::optional<RateDecision> d = StartAdmit(scopes, &p)) return *d;
  return Decide(std::move(p));
}

void SharedRateLimiter::AdmitAsync(const std::vector<RateScope>& scopes,
                                   std::function<void(const RateDecision&)> done) {
  Pending p;
  if (std::optional<RateDecision> d = StartAdmit(scopes, &p)) return done(*d);
  p.done = std::move(done);
  Enqueue(std::move(p));
}

RateDecision SharedRateLimiter::Reserve(const std::vector<RateScope>& scopes, int64_t tokens) {
  if (RateDecision d; RefuseTooLarge(scopes, tokens, &d)) return d;
  if (std::none_of(scopes.begin(), scopes.end(), HasRate)) return RateDecision();
  return Decide({Op::kReserve, RateOnly(scopes), std::max<int64_t>(tokens, 0), {}, nullptr});
}

void SharedRateLimiter::Refund(const std::vector<RateScope>& scopes) {
  if (const std::vector<RateScope> inflight = InflightOnly(scopes); !inflight.empty()) inflight_.Refund(inflight);
  if (std::none_of(scopes.begin(), scopes.end(), [](const RateScope& s) { return s.rpm > 0; })) return;
  Enqueue({Op::kRefund, RateOnly(scopes), 0, {}, nullptr});
}

void SharedRateLimiter::Settle(const std::vector<RateScope>& scopes, int64_t tokens) {
  if (const std::vector<RateScope> inflight = InflightOnly(scopes); !inflight.empty()) inflight_.Settle(inflight, 0);
  if (tokens == 0 || std::none_of(scopes.begin(), scopes.end(), [](const RateScope& s) { return s.tpm > 0; })) return;
  Enqueue({Op::kSettle, RateOnly(scopes), tokens, {}, nullptr});
}

}  // namespace contextd
