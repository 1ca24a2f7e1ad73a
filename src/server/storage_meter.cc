#include "server/storage_meter.h"

namespace contextd {

StorageMeter::StorageMeter(Options options, const Clock* clock, Source source, UsageLedger* ledger, double per_gb_month)
    : options_(options),
      clock_(clock),
      source_(std::move(source)),
      ledger_(ledger),
      per_gb_month_(per_gb_month),
      last_ns_(clock->NowNanos()) {
  if (options_.start_thread) task_ = std::make_unique<PeriodicTask>(options_.period, [this] { ChargeNow(); });
}

double StorageMeter::ChargeNow() {
  std::lock_guard<std::mutex> lock(charge_mu_);
  const int64_t now = clock_->NowNanos();
  const double elapsed_ms = static_cast<double>(now - last_ns_) / 1e6;
  last_ns_ = now;
  if (elapsed_ms <= 0 || per_gb_month_ <= 0) return 0;
  const int64_t at_ms = clock_->WallMillis();
  double total = 0;
  for (const Engine::StoredBytes& s : source_()) {
    const double cost =
        static_cast<double>(s.bytes) / kBytesPerGb * per_gb_month_ * elapsed_ms / static_cast<double>(kMonthMs);
    if (cost <= 0) continue;
    UsageRecord r;
    r.tenant = s.tenant;
    r.collection = s.collection;
    r.operation = "storage";
    r.requests = 0;
    r.cost_usd = cost;
    r.at_ms = at_ms;
    ledger_->Record(r);
    total += cost;
  }
  return total;
}

}  // namespace contextd
