// StorageMeter: charges tenants for what their collections store, at the price table's
// storage_per_gb_month, into the usage ledger. Every `period` it reads each collection's
// stored bytes and records bytes x price x elapsed / (1 GB x 30 days) as operation
// "storage" for the tenant and collection (no request counted), so storage is paid for as
// time passes, shows in /v1/usage, and counts against budgets like any other spend. A
// collection created or grown between two looks is charged from the next look on (at the
// default minute, a minute of storage).
//
// Thread safety: ChargeNow() may be called from any thread; the meter's own thread calls
// it every period.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/clock.h"
#include "common/periodic_task.h"
#include "engine/engine.h"
#include "usage/usage_ledger.h"

namespace contextd {

class StorageMeter {
 public:
  struct Options {
    std::chrono::milliseconds period{60000};
    bool start_thread = true;  // false: only ChargeNow() (tests)
  };
  using Source = std::function<std::vector<Engine::StoredBytes>()>;

  // ledger is not owned and must outlive the meter.
  StorageMeter(Options options, const Clock* clock, Source source, UsageLedger* ledger, double per_gb_month);
  ~StorageMeter() = default;  // stops the thread
  StorageMeter(const StorageMeter&) = delete;
  StorageMeter& operator=(const StorageMeter&) = delete;

  // Charges every collection for the time since the last charge (the first: since the
  // meter started) at its size now. Returns the dollars charged.
  double ChargeNow();

  static constexpr double kBytesPerGb = 1e9;
  static constexpr int64_t kMonthMs = 30LL * 24 * 3600 * 1000;

 private:
  const Options options_;
  const Clock* const clock_;
  const Source source_;
  UsageLedger* const ledger_;
  const double per_gb_month_;
  std::mutex charge_mu_;                // one charge at a time
  int64_t last_ns_;                     // under charge_mu_
  std::unique_ptr<PeriodicTask> task_;  // last: stopped before the state above goes
};

}  // namespace contextd
