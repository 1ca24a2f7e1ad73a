// Who may do what, and how much of it: the API key's authorization (roles, grants, users),
// the rate limits on requests and tokens (RateLimiter, all scopes or none, tokens as each
// request declares them) and admission to the worker pools (priority lanes, shedding).
#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "auth/auth.h"
#include "common/memory.h"
#include "common/names.h"
#include "server/api.h"

namespace contextd {

namespace {

// "Bearer KEY" (Authorization) or the bare key (api-key, as Azure OpenAI clients send it).
std::string PresentedKey(const HttpRequest& req) {
  std::string auth = req.Header("authorization");
  if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0)) {
    return auth.substr(7);
  }
  return req.Header("api-key");
}

std::string Seconds(double s) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.3gs", std::max(0.0, s));
  return buf;
}

}  // namespace

Status Api::Authorize(const Route& route, const Params& params, const HttpRequest& req, RequestContext* ctx,
                      std::vector<RateScope>* scopes) const {
  if (route.access == Access::kOpen || (route.name == "/metrics" && !options_.metrics_need_key)) return Status::Ok();
  const std::string key = PresentedKey(req);
  if (key.empty()) {
    return InvalidArgument("an API key is required: send Authorization: Bearer KEY or api-key: KEY", "missing_api_key");
  }
  if (!options_.admin_key.empty() && ConstantTimeEquals(key, options_.admin_key)) {
    ctx->principal = "admin";  // the bootstrap admin: every tenant; data routes act as default
    return Status::Ok();
  }
  CTX_ASSIGN_OR_RETURN(std::shared_ptr<const KeyRecord> key_record,
                       backends_.governance->auth().Authenticate(key, clock_->WallMillis()));
  const KeyRecord& k = *key_record;
  ctx->tenant = k.tenant;
  ctx->principal = k.id;
  if (k.priority == "batch") ctx->priority = Priority::kBatch;
  if (k.priority == "interactive") ctx->priority = Priority::kInteractive;
  const auto denied = [&](const std::string& what) {
    return InvalidArgument(
        "API key " + k.id + " (" + std::string(RoleName(k.role)) + " of tenant " + k.tenant + ") may not " + what,
        "permission_denied");
  };
  switch (route.access) {
    case Access::kAdmin:
      return denied("manage tenants (the admin key may)");
    case Access::kTenantAdmin:
      if (k.role != Role::kAdmin || params.empty() || params[0] != k.tenant) {
        return denied("manage the keys of tenant '" + (params.empty() ? "" : params[0]) + "'");
      }
      break;
    case Access::kWrite:
      if (k.role == Role::kReader) return denied("write");
      break;
    default:
      break;
  }
  if (route.collection_param && !params.empty() && !k.AllowsCollection(params[0], route.access == Access::kWrite)) {
    return denied(std::string(route.access == Access::kWrite ? "write" : "read") + " collection '" + params[0] + "'");
  }
  // The user: the key's own, or the one an X-User-Id header names where the key may.
  ctx->user = k.user_id;
  if (const std::string header = req.Header("x-user-id"); !header.empty() && header != k.user_id) {
    if (!k.user_header) return denied("act for user '" + header + "' (its user_header is off)");
    if (header.size() > 128 || !IsName(header, 128, ".@"))
      return InvalidArgument("X-User-Id must be 1 to 128 of A-Z a-z 0-9 _ - . @", "invalid_header");
    ctx->user = header;
  }
  if (const Limits t = backends_.governance->auth().TenantLimits(k.tenant);
      t.rpm > 0 || t.tpm > 0 || t.max_inflight > 0) {
    scopes->push_back({"tenant:" + k.tenant, t.rpm, t.tpm, t.max_inflight, k.tenant});
  }
  if (const Limits u = ctx->user.empty() ? Limits() : backends_.governance->auth().UserLimits(k.tenant);
      u.rpm > 0 || u.tpm > 0 || u.max_inflight > 0) {
    scopes->push_back({"user:" + k.tenant + "/" + ctx->user, u.rpm, u.tpm, u.max_inflight, k.tenant});
  }
  if (k.limits.rpm > 0 || k.limits.tpm > 0 || k.limits.max_inflight > 0) {
    scopes->push_back({"key:" + k.id, k.limits.rpm, k.limits.tpm, k.limits.max_inflight, k.tenant});
  }
  if (options_.usage != nullptr && route.operation.size() > 0) {
    if (const Budget b = backends_.governance->auth().TenantBudget(k.tenant); b.limit_usd > 0) {
      CTX_RETURN_IF_ERROR(CheckBudget("tenant " + k.tenant, k.tenant, "", b));
    }
    if (k.budget.limit_usd > 0) CTX_RETURN_IF_ERROR(CheckBudget("key " + k.id, k.tenant, k.id, k.budget));
  }
  return Status::Ok();
}

Status Api::CheckBudget(const std::string& scope, const std::string& tenant, const std::string& key,
                        const Budget& budget) const {
  const int64_t now = clock_->WallMillis();
  const double spent = options_.usage->Spent(tenant, key, budget.monthly, now);
  const char* period = budget.monthly ? "month" : "day";
  if (spent >= budget.limit_usd * static_cast<double>(budget.soft_pct) / 100.0) {
    // One warning per scope and period: an event in the log and a metric.
    const std::string mark = scope + "|" + std::to_string(budget.monthly ? MonthStartMs(now) : DayStartMs(now));
    MutexLock lock(&budget_mu_);
    if (budget_warned_.insert(mark).second) {
      budget_soft_->Increment();
      spdlog::warn("budget: {} has spent ${:.4f} of its ${:g} {} budget ({}% threshold)", scope, spent,
                   budget.limit_usd, period, budget.soft_pct);
    }
  }
  if (!budget.hard || spent < budget.limit_usd) return Status::Ok();
  budget_refused_->Increment();
  char msg[256];
  snprintf(msg, sizeof(msg), "%s has spent $%.4f of its $%g %s budget; it resets at the start of the next %s (UTC)",
           scope.c_str(), spent, budget.limit_usd, period, period);
  return ResourceExhausted(msg, "budget_exceeded");
}

double Api::ChargeUsage(const Route& route, const Params& params, const RequestContext& ctx) const {
  UsageRecord r;
  r.tenant = ctx.tenant;
  r.key = ctx.principal;
  r.user = ctx.user;
  r.operation = ctx.usage_operation.empty() ? route.operation : ctx.usage_operation;
  r.model = ctx.usage_model;
  r.collection = !ctx.usage_collection.empty()               ? ctx.usage_collection
                 : route.collection_param && !params.empty() ? params[0]
                                                             : "";
  r.tokens = std::max(ctx.tokens_used.load(), ctx.usage.embedding_tokens.load());
  r.cost_usd = options_.prices.Cost(r.operation, r.model, r.tokens);
  r.at_ms = clock_->WallMillis();
  options_.usage->Record(r);
  return r.cost_usd;
}

namespace {

// The x-ratelimit-* headers of a decision, replacing those of an earlier one.
void SetRateHeaders(const RateDecision& d, RequestContext* ctx) {
  auto& h = ctx->reply_headers;
  std::erase_if(h, [](const auto& x) {
    return x.first.starts_with("x-ratelimit-") || x.first == "x-contextd-limits-degraded" || x.first == "Retry-After";
  });
  if (d.limit_requests > 0) {
    h.emplace_back("x-ratelimit-limit-requests", std::to_string(d.limit_requests));
    h.emplace_back("x-ratelimit-remaining-requests", std::to_string(d.remaining_requests));
    h.emplace_back("x-ratelimit-reset-requests", Seconds(d.reset_requests_s));
  }
  if (d.limit_tokens > 0) {
    h.emplace_back("x-ratelimit-limit-tokens", std::to_string(d.limit_tokens));
    h.emplace_back("x-ratelimit-remaining-tokens", std::to_string(d.remaining_tokens));
    h.emplace_back("x-ratelimit-reset-tokens", Seconds(d.reset_tokens_s));
  }
  if (d.degraded) h.emplace_back("x-contextd-limits-degraded", "1");
  if (!d.admitted && !d.too_large) {
    const int64_t retry = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(d.retry_after_s)));
    h.emplace_back("Retry-After", std::to_string(retry));
  }
}

}  // namespace

Status Api::ReserveTokens(const std::vector<RateScope>& scopes, int64_t tokens, RequestContext* ctx) {
  const RateDecision d = limiter_->Reserve(scopes, tokens);
  SetRateHeaders(d, ctx);
  if (d.admitted) return Status::Ok();
  if (d.too_large) {
    return InvalidArgument("this request needs " + std::to_string(tokens) + " tokens, more than the " +
                               std::to_string(d.limit_tokens) + " a minute that " + d.refused_by +
                               " allows: split it into smaller requests",
                           "request_exceeds_limit");
  }
  return ResourceExhausted("token rate limit of " + d.refused_by + " reached: " + std::to_string(tokens) +
                               " tokens wanted; retry in " + Seconds(d.retry_after_s),
                           "rate_limit_exceeded");
}

Status Api::AdmitRate(const std::vector<RateScope>& scopes, RequestContext* ctx) {
  if (scopes.empty()) return Status::Ok();
  return RateStatus(limiter_->Admit(scopes), ctx);
}

Status Api::RateStatus(const RateDecision& d, RequestContext* ctx) {
  SetRateHeaders(d, ctx);
  if (d.admitted) return Status::Ok();
  if (d.inflight) {
    return ResourceExhausted(d.refused_by + " has its most requests in flight (max_inflight); retry when one ends",
                             "too_many_requests_in_flight");
  }
  return ResourceExhausted("rate limit of " + d.refused_by + " reached; retry in " + Seconds(d.retry_after_s),
                           "rate_limit_exceeded");
}

Status Api::Admission(Pool which, const ThreadPool& pool, const RequestContext& ctx) const {
  const int lane = static_cast<int>(ctx.priority);
  const size_t ahead = pool.queue_depth_through(lane);
  // Interactive may fill the queue, default 80% of it, batch half: batch goes first.
  static constexpr double kShare[ThreadPool::kLanes] = {1.0, 0.8, 0.5};
  const char* name = which == Pool::kWrite ? "write" : which == Pool::kEmbed ? "embedding" : "search";
  if (static_cast<double>(ahead) >= kShare[lane] * static_cast<double>(options_.max_queue)) {
    return Unavailable("overloaded: " + std::to_string(ahead) + " requests are waiting for this node's " + name +
                           " workers; retry shortly or on another node",
                       "overloaded");
  }
  if (ahead == 0) return Status::Ok();
  const int64_t wait_ns = static_cast<int64_t>(ahead) * service_ns_[static_cast<int>(which)].load() /
                          static_cast<int64_t>(std::max<size_t>(pool.size(), 1));
  const auto too_long = [&](const std::string& past) {
    return Unavailable("overloaded: the " + std::to_string(ahead) + " requests ahead of this one would take about " +
                           std::to_string(wait_ns / 1000000) + " ms, past " + past,
                       "overloaded");
  };
  if (ctx.has_deadline() && clock_->NowNanos() + wait_ns > ctx.deadline_ns) return too_long("its deadline");
  // A read that would be shed for waiting past max_queue_delay when a worker takes it is
  // shed now, on the I/O thread: it costs no queue slot and no hand-off to a worker, and
  // under overload most sheds are these (at ten times capacity, queue-delay sheds at take
  // time cost 16% of goodput; bench/overload_bench.sh).
  if (which != Pool::kWrite && options_.max_queue_delay.count() > 0 &&
      wait_ns > options_.max_queue_delay.count() * 1'000'000) {
    return too_long("max_queue_delay; retry shortly or on another node");
  }
  return Status::Ok();
}

Status Api::AdmitWrite(int64_t* pause_ms) const {
  *pause_ms = 0;
  const size_t high = options_.memory_high_bytes;
  if (high == 0) return Status::Ok();
  const int64_t now = clock_->NowNanos();
  if (now - rss_read_ns_.load(std::memory_order_relaxed) >= 10'000'000) {
    rss_read_ns_.store(now, std::memory_order_relaxed);
    rss_bytes_.store(options_.resident_bytes ? options_.resident_bytes() : ResidentBytes(), std::memory_order_relaxed);
  }
  const double used = static_cast<double>(rss_bytes_.load(std::memory_order_relaxed)) / static_cast<double>(high);
  // Refused from the high mark until memory is back under 90% of it: a margin, so writes
  // do not flap on and off at the line.
  if (used >= 1.0) refusing_writes_.store(true, std::memory_order_relaxed);
  if (used < 0.9) refusing_writes_.store(false, std::memory_order_relaxed);
  if (refusing_writes_.load(std::memory_order_relaxed)) {
    memory_refused_->Increment();
    return Unavailable("memory_pressure: this node holds " + std::to_string(static_cast<int>(used * 100)) +
                           "% of its memory limit; writes that add data wait until it is under 90% (reads and "
                           "deletes go on)",
                       "memory_pressure");
  }
  // From 80%: a pause that grows to 50 ms at the high mark, so writers slow before refusal.
  if (used > 0.8) *pause_ms = static_cast<int64_t>((used - 0.8) / 0.2 * 50.0);
  return Status::Ok();
}

}  // namespace contextd
