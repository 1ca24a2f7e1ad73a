#include "auth/shared_rate_limiter.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdlib>

namespace contextd {
namespace {

// KEYS: per scope its request bucket then its token bucket. ARGV: the op, an amount
// (tokens), then each key's limit per minute (0: the scope has no such limit, the key is
// not touched). Returns {admitted, seconds to wait, refused scope (1-based, 0 none), each
// key's level}. The same arithmetic as RateLimiter, on Redis's clock.
constexpr char kScript[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local op = ARGV[1]
local amount = tonumber(ARGV[2])
local level, limit = {}, {}
for k = 1, #KEYS do
  local lim = tonumber(ARGV[2 + k])
  limit[k] = lim
  if lim > 0 then
    local v = redis.call('HMGET', KEYS[k], 'l', 'a')
    local l = lim
    if v[1] then
      l = tonumber(v[1])
      local at = tonumber(v[2])
      if now > at then l = math.min(lim, l + lim * (now - at) / 60000000) end
    end
    level[k] = l
  end
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
  for k = 1, #KEYS do
    if limit[k] > 0 then
      if k % 2 == 1 then check(k, 1, true) else check(k, 0, true) end
    end
  end
  if admitted == 1 then
    for k = 1, #KEYS, 2 do
      if limit[k] > 0 then level[k] = level[k] - 1 end
    end
  end
elseif op == 'reserve' then
  for k = 2, #KEYS, 2 do
    if limit[k] > 0 then check(k, amount, false) end
  end
  for k = 1, #KEYS do
    if limit[k] > 0 then
      if k % 2 == 0 and admitted == 1 then level[k] = level[k] - amount end
      if k % 2 == 1 and admitted == 0 then level[k] = math.min(limit[k], level[k] + 1) end
    end
  end
elseif op == 'refund' then
  for k = 1, #KEYS, 2 do
    if limit[k] > 0 then level[k] = math.min(limit[k], level[k] + 1) end
  end
elseif op == 'settle' then
  for k = 2, #KEYS, 2 do
    if limit[k] > 0 then level[k] = math.min(limit[k], level[k] - amount) end
  end
end
local out = {admitted, string.format('%.17g', wait), refused}
for k = 1, #KEYS do
  if limit[k] > 0 then
    redis.call('HSET', KEYS[k], 'l', string.format('%.17g', level[k]), 'a', string.format('%d', now))
    redis.call('PEXPIRE', KEYS[k], 600000)
    out[3 + k] = string.format('%.17g', level[k])
  else
    out[3 + k] = '0'
  end
end
return out
)lua";

bool HasRate(const RateScope& s) { return s.rpm > 0 || s.tpm > 0; }

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

}  // namespace

SharedRateLimiter::SharedRateLimiter(SharedRateLimitOptions options, const Clock* clock, std::function<size_t()> nodes,
                                     MetricsRegistry* metrics)
    : options_(std::move(options)),
      clock_(clock),
      nodes_(std::move(nodes)),
      pool_(options_.redis),
      inflight_(clock),
      fallback_(clock) {
  if (metrics != nullptr) {
    degraded_gauge_ = metrics->GetGauge(
        "contextd_rate_limits_degraded",
        "1 while shared rate limits are unreachable and this node enforces its share of each limit alone.");
    errors_ = metrics->GetCounter("contextd_rate_limit_redis_errors_total",
                                  "Rate-limit decisions Redis did not answer (decided locally instead).");
  }
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

std::vector<RateScope> SharedRateLimiter::LocalShare(const std::vector<RateScope>& scopes) const {
  const int64_t nodes = static_cast<int64_t>(std::max<size_t>(1, nodes_ ? nodes_() : 1));
  std::vector<RateScope> out;
  out.reserve(scopes.size());
  const auto share = [nodes](int64_t limit) { return limit > 0 ? std::max<int64_t>(1, limit / nodes) : 0; };
  for (const RateScope& s : scopes) {
    if (HasRate(s)) out.push_back({s.name, share(s.rpm), share(s.tpm), 0, s.tenant});
  }
  return out;
}

bool SharedRateLimiter::RunScript(Op op, const std::vector<RateScope>& scopes, int64_t amount, RateDecision* d) {
  if (!TryRedis()) return false;
  static constexpr const char* kOps[] = {"admit", "reserve", "refund", "settle"};
  std::vector<const RateScope*> rate;
  for (const RateScope& s : scopes) {
    if (HasRate(s)) rate.push_back(&s);
  }
  // EVAL script numkeys KEYS... ARGV...
  std::vector<std::string> argv = {"EVAL", kScript, std::to_string(2 * rate.size())};
  for (const RateScope* s : rate) {
    const std::string base = options_.prefix + "{" + s->tenant + "}:" + s->name;
    argv.push_back(base + ":r");
    argv.push_back(base + ":t");
  }
  argv.push_back(kOps[static_cast<int>(op)]);
  argv.push_back(std::to_string(amount));
  for (const RateScope* s : rate) {
    argv.push_back(std::to_string(s->rpm));
    argv.push_back(std::to_string(s->tpm));
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  RedisPool::Lease conn = pool_.Take();
  if (conn.get() == nullptr) {
    MarkDown();
    return false;
  }
  auto* reply =
      static_cast<redisReply*>(redisCommandArgv(conn.get(), static_cast<int>(ptrs.size()), ptrs.data(), lens.data()));
  if (reply == nullptr) {
    conn.Broken();
    MarkDown();
    return false;
  }
  const bool well_formed = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 + 2 * rate.size();
  if (well_formed) {
    d->admitted = reply->element[0]->integer == 1;
    d->retry_after_s = ParseNumber(reply->element[1]);
    const int64_t refused = reply->element[2]->integer;
    if (refused > 0 && static_cast<size_t>(refused) <= rate.size()) d->refused_by = rate[refused - 1]->name;
    std::vector<RateScope> reported;
    std::vector<double> requests, tokens;
    for (size_t i = 0; i < rate.size(); ++i) {
      reported.push_back(*rate[i]);
      requests.push_back(ParseNumber(reply->element[3 + 2 * i]));
      tokens.push_back(ParseNumber(reply->element[4 + 2 * i]));
    }
    ReportTightest(reported, requests, tokens, d);
  }
  freeReplyObject(reply);
  if (!well_formed) {
    MarkDown();
    return false;
  }
  if (degraded_.exchange(false) && degraded_gauge_ != nullptr) degraded_gauge_->Set(0);
  return true;
}

RateDecision SharedRateLimiter::Admit(const std::vector<RateScope>& scopes) {
  RateDecision d;
  const std::vector<RateScope> inflight = InflightOnly(scopes);
  if (!inflight.empty()) {
    d = inflight_.Admit(inflight);
    if (!d.admitted) return d;
  }
  if (std::none_of(scopes.begin(), scopes.end(), HasRate)) return d;
  RateDecision r;
  if (!RunScript(Op::kAdmit, scopes, 0, &r)) {
    r = fallback_.Admit(LocalShare(scopes));
    r.degraded = true;
  }
  if (!r.admitted && !inflight.empty()) inflight_.Refund(inflight);  // not admitted: not in flight
  return r;
}

RateDecision SharedRateLimiter::Reserve(const std::vector<RateScope>& scopes, int64_t tokens) {
  RateDecision d;
  for (const RateScope& s : scopes) {
    if (s.tpm > 0 && tokens > s.tpm) {
      d.admitted = false;
      d.too_large = true;
      d.refused_by = s.name;
      d.limit_tokens = s.tpm;
      return d;
    }
  }
  if (!RunScript(Op::kReserve, scopes, std::max<int64_t>(tokens, 0), &d)) {
    d = fallback_.Reserve(LocalShare(scopes), tokens);
    d.degraded = true;
  }
  return d;
}

void SharedRateLimiter::Refund(const std::vector<RateScope>& scopes) {
  if (const std::vector<RateScope> inflight = InflightOnly(scopes); !inflight.empty()) inflight_.Refund(inflight);
  if (std::none_of(scopes.begin(), scopes.end(), [](const RateScope& s) { return s.rpm > 0; })) return;
  RateDecision ignored;
  if (!RunScript(Op::kRefund, scopes, 0, &ignored)) fallback_.Refund(LocalShare(scopes));
}

void SharedRateLimiter::Settle(const std::vector<RateScope>& scopes, int64_t tokens) {
  if (const std::vector<RateScope> inflight = InflightOnly(scopes); !inflight.empty()) inflight_.Settle(inflight, 0);
  if (tokens == 0 || std::none_of(scopes.begin(), scopes.end(), [](const RateScope& s) { return s.tpm > 0; })) return;
  RateDecision ignored;
  if (!RunScript(Op::kSettle, scopes, tokens, &ignored)) fallback_.Settle(LocalShare(scopes), tokens);
}

}  // namespace contextd
