#include "usage/usage_ledger.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

namespace contextd {

namespace {

constexpr int64_t kHourMs = 3600'000;
constexpr int64_t kDayMs = 24 * kHourMs;

std::string SpendKey(char scope, const std::string& id, char period, int64_t start_ms) {
  return std::string(1, scope) + "|" + id + "|" + period + "|" + std::to_string(start_ms);
}

// The fields of a ledger key as one string (unit separators between them).
std::string Join(int64_t hour, const std::string& tenant, const std::string& key, const std::string& user,
                 const std::string& collection, const std::string& model, const std::string& operation) {
  std::string out;
  out.reserve(24 + tenant.size() + key.size() + user.size() + collection.size() + model.size() + operation.size());
  out += std::to_string(hour);
  for (const std::string* f : {&tenant, &key, &user, &collection, &model, &operation}) {
    out += '\x1f';
    out += *f;
  }
  return out;
}

}  // namespace

int64_t DayStartMs(int64_t t_ms) { return t_ms - ((t_ms % kDayMs) + kDayMs) % kDayMs; }

int64_t MonthStartMs(int64_t t_ms) {
  const time_t s = static_cast<time_t>(t_ms / 1000);
  tm utc{};
  gmtime_r(&s, &utc);
  utc.tm_mday = 1;
  utc.tm_hour = utc.tm_min = utc.tm_sec = 0;
  return static_cast<int64_t>(timegm(&utc)) * 1000;
}

StatusOr<PriceTable> PriceTable::FromJson(const Json& j) {
  PriceTable p;
  if (!j.is_object()) return InvalidArgument("prices must be an object", "invalid_type");
  for (const auto& [k, v] : j.as_object()) {
    if (k == "storage_per_gb_month") {
      if (!v.is_number() || v.as_double() < 0) {
        return InvalidArgument("prices.storage_per_gb_month must be a number of dollars, at least 0", "invalid_value");
      }
      p.storage_per_gb_month_ = v.as_double();
      continue;
    }
    std::map<std::string, double, std::less<>>* into = k == "embedding_per_1k_tokens" ? &p.per_1k_tokens_
                                                       : k == "requests"              ? &p.per_request_
                                                                                      : nullptr;
    if (into == nullptr || !v.is_object()) {
      return InvalidArgument(
          "prices: unknown or mistyped key '" + k + "' (embedding_per_1k_tokens, requests, storage_per_gb_month)",
          "unknown_field");
    }
    for (const auto& [name, price] : v.as_object()) {
      if (!price.is_number() || price.as_double() < 0) {
        return InvalidArgument("prices." + k + "." + name + " must be a number of dollars, at least 0",
                               "invalid_value");
      }
      (*into)[name] = price.as_double();
    }
  }
  return p;
}

double PriceTable::Cost(std::string_view operation, std::string_view model, int64_t tokens) const {
  double cost = 0;
  if (auto it = per_request_.find(operation); it != per_request_.end()) cost += it->second;
  if (tokens > 0 && !per_1k_tokens_.empty()) {
    auto it = per_1k_tokens_.find(model);
    if (it == per_1k_tokens_.end()) it = per_1k_tokens_.find("default");
    if (it != per_1k_tokens_.end()) cost += it->second * static_cast<double>(tokens) / 1000.0;
  }
  return cost;
}

const std::vector<std::string>& UsageLedger::Dimensions() {
  static const std::vector<std::string> kNames = {"tenant", "key", "user", "collection", "model", "operation"};
  return kNames;
}

UsageLedger::UsageLedger(std::string path, const Clock* clock, SharedSpend* shared)
    : path_(std::move(path)), clock_(clock), shared_(shared) {}

StatusOr<std::unique_ptr<UsageLedger>> UsageLedger::Open(const std::string& path, const Clock* clock,
                                                         SharedSpend* shared) {
  std::unique_ptr<UsageLedger> ledger(new UsageLedger(path, clock, shared));
  {
    std::ifstream in(path);
    std::string line;
    MutexLock lock(&ledger->mu_);
    while (std::getline(in, line)) {
      auto j = ParseJson(line);
      if (!j.ok() || !j->is_array() || j->as_array().size() != 10) continue;  // a torn last line
      const Json::Array& a = j->as_array();
      Key k{a[0].as_int(),    a[1].as_string(), a[2].as_string(), a[3].as_string(),
            a[4].as_string(), a[5].as_string(), a[6].as_string()};
      std::string joined = Join(std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), std::get<4>(k),
                                std::get<5>(k), std::get<6>(k));
      ledger->AddLocked(std::move(joined), k, Totals{a[7].as_int(), a[8].as_int(), a[9].as_double()}, false);
    }
  }
  std::ofstream probe(path, std::ios::app);
  if (!probe) return Internal("cannot write the usage ledger " + path, "storage_error");
  ledger->flusher_ = std::thread([l = ledger.get()] { l->Loop(); });
  return ledger;
}

UsageLedger::~UsageLedger() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  (void)Flush();
}

void UsageLedger::AddLocked(std::string joined, const Key& k, const Totals& t, bool flush) {
  auto [it, fresh] = hours_.try_emplace(std::move(joined));
  Entry& e = it->second;
  if (fresh) e.key = k;
  e.total.requests += t.requests;
  e.total.tokens += t.tokens;
  e.total.cost_usd += t.cost_usd;
  if (flush) {
    e.unflushed.requests += t.requests;
    e.unflushed.tokens += t.tokens;
    e.unflushed.cost_usd += t.cost_usd;
    if (!e.dirty) dirty_.push_back(&e);
    e.dirty = true;
  }
  if (t.cost_usd == 0) return;
  const int64_t at = std::get<0>(k);
  const std::string& tenant = std::get<1>(k);
  const std::string& key = std::get<2>(k);
  for (std::string scope : {SpendKey('t', tenant, 'd', DayStartMs(at)), SpendKey('t', tenant, 'm', MonthStartMs(at)),
                            SpendKey('k', key, 'd', DayStartMs(at)), SpendKey('k', key, 'm', MonthStartMs(at))}) {
    // What this node spends now goes to the cluster's totals too (not what it reloads).
    if (shared_ != nullptr && flush) shared_->Add(tenant, scope, t.cost_usd);
    spend_[std::move(scope)] += t.cost_usd;
  }
}

void UsageLedger::Record(const UsageRecord& r) {
  const int64_t hour = r.at_ms - r.at_ms % kHourMs;
  std::string joined = Join(hour, r.tenant, r.key, r.user, r.collection, r.model, r.operation);
  MutexLock lock(&mu_);
  auto it = hours_.find(joined);
  if (it != hours_.end() && r.cost_usd == 0) {
    // The common case: the hour's row exists and nothing is spent.
    Entry& e = it->second;
    e.total.requests += r.requests;
    e.total.tokens += r.tokens;
    e.unflushed.requests += r.requests;
    e.unflushed.tokens += r.tokens;
    if (!e.dirty) dirty_.push_back(&e);
    e.dirty = true;
    return;
  }
  AddLocked(std::move(joined), Key{hour, r.tenant, r.key, r.user, r.collection, r.model, r.operation},
            Totals{r.requests, r.tokens, r.cost_usd}, true);
}

Status UsageLedger::Flush() {
  std::vector<std::pair<Key, Totals>> dirty;
  {
    MutexLock lock(&mu_);
    for (Entry* e : dirty_) {
      dirty.emplace_back(e->key, e->unflushed);
      e->unflushed = Totals();
      e->dirty = false;
    }
    dirty_.clear();
  }
  if (dirty.empty()) return Status::Ok();
  std::string out;
  for (const auto& [k, t] : dirty) {
    Json row = Json::MakeArray();
    row.push_back(std::get<0>(k));
    row.push_back(std::get<1>(k));
    row.push_back(std::get<2>(k));
    row.push_back(std::get<3>(k));
    row.push_back(std::get<4>(k));
    row.push_back(std::get<5>(k));
    row.push_back(std::get<6>(k));
    row.push_back(t.requests);
    row.push_back(t.tokens);
    row.push_back(t.cost_usd);
    out += row.Dump();
    out += '\n';
  }
  FILE* f = std::fopen(path_.c_str(), "a");
  if (f == nullptr) return Internal("cannot append to the usage ledger " + path_, "storage_error");
  const bool ok = std::fwrite(out.data(), 1, out.size(), f) == out.size();
  std::fclose(f);
  if (!ok) return Internal("the usage ledger " + path_ + " could not be written (disk full?)", "storage_error");
  return Status::Ok();
}

void UsageLedger::Loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (!stop_) lock.WaitFor(wake_, std::chrono::seconds(1));
      if (stop_) return;
    }
    (void)Flush();
  }
}

std::vector<UsageRow> UsageLedger::Query(const UsageQuery& q) const {
  std::map<std::pair<int64_t, std::map<std::string, std::string>>, Totals> rows;
  const int64_t step = std::max<int64_t>(q.granularity_ms, kHourMs);
  MutexLock lock(&mu_);
  for (const auto& [joined, e] : hours_) {
    const Key& k = e.key;
    const Totals& t = e.total;
    const int64_t hour = std::get<0>(k);
    if (hour + kHourMs <= q.from_ms || hour >= q.to_ms) continue;
    if (!q.tenant.empty() && std::get<1>(k) != q.tenant) continue;
    if (!q.key.empty() && std::get<2>(k) != q.key) continue;
    const std::string* values[] = {&std::get<1>(k), &std::get<2>(k), &std::get<3>(k),
                                   &std::get<4>(k), &std::get<5>(k), &std::get<6>(k)};
    std::map<std::string, std::string> group;
    for (const std::string& by : q.group_by) {
      for (size_t i = 0; i < Dimensions().size(); ++i) {
        if (Dimensions()[i] == by) group[by] = *values[i];
      }
    }
    const int64_t start = step == kDayMs ? DayStartMs(hour) : hour - hour % step;
    Totals& r = rows[{start, std::move(group)}];
    r.requests += t.requests;
    r.tokens += t.tokens;
    r.cost_usd += t.cost_usd;
  }
  std::vector<UsageRow> out;
  for (auto& [k, t] : rows) out.push_back(UsageRow{k.first, k.second, t.requests, t.tokens, t.cost_usd});
  return out;
}

double UsageLedger::Spent(const std::string& tenant, const std::string& key, bool month, int64_t now_ms) const {
  const std::string k =
      key.empty() ? SpendKey('t', tenant, month ? 'm' : 'd', month ? MonthStartMs(now_ms) : DayStartMs(now_ms))
                  : SpendKey('k', key, month ? 'm' : 'd', month ? MonthStartMs(now_ms) : DayStartMs(now_ms));
  double local = 0;
  {
    MutexLock lock(&mu_);
    auto it = spend_.find(k);
    if (it != spend_.end()) local = it->second;
  }
  // The cluster's total includes this node's; before Redis has answered, or without it,
  // this node's own spend is the floor.
  return shared_ != nullptr ? std::max(local, shared_->Get(tenant, k)) : local;
}

}  // namespace contextd
