// Costs and usage: a price table, and a durable ledger of what every request used and cost.
//
// PriceTable turns a request's operation, embedding model and tokens into dollars:
// per 1k embedding tokens by model ("default" for the rest), plus a price per request by
// operation ("query.hybrid", "context", "cache_lookup", ...).
//
// UsageLedger keeps hourly totals (requests, tokens, dollars) per tenant, key, user,
// collection, model and operation, in memory, and appends what changed to a file every
// second (and when closed); opening it sums the file back. A kill -9 loses at most the
// last second of usage, never a whole period. It also keeps each tenant's and key's spend
// in the current UTC day and month, for budgets.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/mutex.h"
#include "common/status.h"
#include "usage/shared_spend.h"

namespace contextd {

class PriceTable {
 public:
  // {"embedding_per_1k_tokens": {"default": 0.0001, "provider:openai": 0.00002},
  //  "requests": {"query.hybrid": 0.00002, "context": 0.00005, "cache_lookup": 0.000001},
  //  "storage_per_gb_month": 0.25}
  static StatusOr<PriceTable> FromJson(const Json& j);
  double Cost(std::string_view operation, std::string_view model, int64_t tokens) const;
  // Dollars per GB (1e9 bytes) stored for a month of 30 days; 0 when not priced.
  double storage_per_gb_month() const { return storage_per_gb_month_; }

 private:
  double storage_per_gb_month_ = 0;
  std::map<std::string, double, std::less<>> per_1k_tokens_;
  std::map<std::string, double, std::less<>> per_request_;
};

struct UsageRecord {
  std::string tenant, key, user, collection, model, operation;
  int64_t tokens = 0;
  double cost_usd = 0;
  int64_t at_ms = 0;     // wall clock
  int64_t requests = 1;  // 0 for a charge that no request made (storage)
};

struct UsageQuery {
  std::string tenant;  // empty: every tenant
  std::string key;     // empty: every key
  int64_t from_ms = 0, to_ms = 0;
  int64_t granularity_ms = 3600'000;  // an hour or a day
  // Any of tenant, key, user, collection, model, operation.
  std::vector<std::string> group_by;
};

struct UsageRow {
  int64_t start_ms = 0;
  std::map<std::string, std::string> group;
  int64_t requests = 0, tokens = 0;
  double cost_usd = 0;
};

class UsageLedger {
 public:
  // Opens (creating) the ledger file at `path` and sums it; a torn last line (a crash mid
  // append) is skipped.
  // shared (not owned; null: none): spend is also summed across nodes through it, and
  // Spent() answers the cluster's total (budgets then hold across nodes).
  static StatusOr<std::unique_ptr<UsageLedger>> Open(const std::string& path, const Clock* clock,
                                                     SharedSpend* shared = nullptr);
  ~UsageLedger();  // flushes

  void Record(const UsageRecord& r);
  // Appends what changed since the last flush.
  Status Flush();
  std::vector<UsageRow> Query(const UsageQuery& q) const;
  // What a tenant (key empty) or a key has spent in the UTC day or month holding now_ms.
  double Spent(const std::string& tenant, const std::string& key, bool month, int64_t now_ms) const;

  static const std::vector<std::string>& Dimensions();  // the group_by names

 private:
  // (hour start ms, tenant, key, user, collection, model, operation)
  using Key = std::tuple<int64_t, std::string, std::string, std::string, std::string, std::string, std::string>;
  struct Totals {
    int64_t requests = 0, tokens = 0;
    double cost_usd = 0;
  };
  struct Entry {
    Key key;
    Totals total;
    Totals unflushed;  // added since the last flush
    bool dirty = false;
  };
  UsageLedger(std::string path, const Clock* clock, SharedSpend* shared);
  // Adds to the hour's totals (found by the fields joined into one string: one hash and
  // one allocation per request, not seven); `flush`: and to what the next flush appends.
  void AddLocked(std::string joined, const Key& k, const Totals& t, bool flush) REQUIRES(mu_);
  void Loop();

  const std::string path_;
  const Clock* clock_;
  SharedSpend* const shared_;
  mutable Mutex mu_;
  std::unordered_map<std::string, Entry> hours_ GUARDED_BY(mu_);
  std::vector<Entry*> dirty_ GUARDED_BY(mu_);  // entries with something unflushed (nodes are stable)
  // "t|acme|d|<day start>" / "k|<id>|m|<month start>" -> dollars
  std::unordered_map<std::string, double> spend_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::condition_variable wake_;
  std::thread flusher_;
};

// The UTC day and month starts holding t_ms.
int64_t DayStartMs(int64_t t_ms);
int64_t MonthStartMs(int64_t t_ms);

}  // namespace contextd
