// Storage priced per GB-month: charged as time passes, per tenant and collection, into the
// usage ledger and the budgets' spend, with no request counted.
#include "server/storage_meter.h"

#include <gtest/gtest.h>

#include "manual_clock.h"
#include "test_util.h"

namespace contextd {
namespace {

TEST(StorageMeterTest, ChargesWhatIsStoredForTheTimeItIsStored) {
  TempDir dir;
  ManualClock clock;
  auto ledger = std::move(UsageLedger::Open(dir.path() + "/usage.jsonl", &clock)).value();
  uint64_t acme_bytes = 2'000'000'000;  // 2 GB
  StorageMeter meter(
      {std::chrono::milliseconds(60000), /*start_thread=*/false}, &clock,
      [&] {
        return std::vector<Engine::StoredBytes>{{"acme", "docs", acme_bytes}, {"beta", "kb", 0}};
      },
      ledger.get(), /*per_gb_month=*/0.5);
  // Fifteen days at 2 GB, charged every hour: half a month of 2 GB at $0.5 = $0.5.
  double charged = 0;
  for (int hour = 0; hour < 15 * 24; ++hour) {
    clock.AdvanceMs(3600'000);
    charged += meter.ChargeNow();
  }
  EXPECT_NEAR(charged, 0.5, 1e-9);
  // Then half the data for five days (a sixth of a month of 1 GB): $0.5 / 6 more.
  acme_bytes /= 2;
  clock.AdvanceMs(5LL * 24 * 3600'000);
  EXPECT_NEAR(meter.ChargeNow(), 0.5 / 6, 1e-9);
  EXPECT_EQ(meter.ChargeNow(), 0) << "no time passed, nothing owed";

  UsageQuery q;
  q.from_ms = 0;
  q.to_ms = clock.WallMillis() + 1;
  q.granularity_ms = 24LL * 3600'000 * 365;
  q.group_by = {"tenant", "collection", "operation"};
  auto rows = ledger->Query(q);
  ASSERT_EQ(rows.size(), 1u) << "beta stores nothing and is not charged";
  EXPECT_EQ(rows[0].group["tenant"], "acme");
  EXPECT_EQ(rows[0].group["collection"], "docs");
  EXPECT_EQ(rows[0].group["operation"], "storage");
  EXPECT_EQ(rows[0].requests, 0) << "storage is no request";
  EXPECT_NEAR(rows[0].cost_usd, 0.5 + 0.5 / 6, 1e-9);
  // Budgets see it: the tenant's spend this month includes storage.
  EXPECT_GT(ledger->Spent("acme", "", /*month=*/true, clock.WallMillis()), 0.0);
}

TEST(StorageMeterTest, UnpricedStorageChargesNothing) {
  TempDir dir;
  ManualClock clock;
  auto ledger = std::move(UsageLedger::Open(dir.path() + "/usage.jsonl", &clock)).value();
  StorageMeter meter(
      {std::chrono::milliseconds(60000), false}, &clock,
      [] {
        return std::vector<Engine::StoredBytes>{{"acme", "docs", 1'000'000'000}};
      },
      ledger.get(), 0);
  clock.AdvanceMs(3600'000);
  EXPECT_EQ(meter.ChargeNow(), 0);
}

}  // namespace
}  // namespace contextd
