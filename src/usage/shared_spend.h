// SharedSpend: what tenants and keys have spent, summed across every node pointed at one
// Redis, so a budget holds for the cluster and not per node.
//
// Each node adds its own costs (Add: queued, never waited for) and reads the totals (Get:
// the last value Redis returned, never a round trip). A thread sends what is queued as one
// pipeline of INCRBYFLOAT, whose replies are the new totals, and refreshes the totals that
// were read lately but not written (GET), every interval. A budget therefore sees another
// node's spending within about an interval: the documented margin is what the cluster can
// spend in that time. Keys carry the tenant as a hash tag ("{acme}") and expire 40 days
// after their period's last write.
//
// Redis unreachable: Get returns the last totals seen and Add keeps what it could not send
// (retried on the next round); the ledger then falls back to its own spend, which is never
// lower than this node's share.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/mutex.h"
#include "redis/redis_pool.h"

namespace contextd {

class SharedSpend {
 public:
  SharedSpend(RedisEndpoint redis, std::string prefix = "contextd:spend:",
              std::chrono::milliseconds interval = std::chrono::milliseconds(200));
  ~SharedSpend();  // sends what is queued, then stops

  // `scope` is one of the ledger's spend keys ("t|acme|d|<day start>"); `tenant` hashes it.
  void Add(const std::string& tenant, const std::string& scope, double usd);
  // The cluster's total for the scope as last heard (0 before anything was heard); marks it
  // to be refreshed.
  double Get(const std::string& tenant, const std::string& scope);
  // Sends what is queued and refreshes what is watched, now (tests).
  void Sync();
  bool reachable() const;

 private:
  struct Slot {
    std::string tenant;
    double pending = 0;  // added here, not yet sent
    double total = 0;    // the cluster's, as Redis last said
    bool heard = false;
    bool watched = false;  // read since the last refresh
  };
  void Loop();
  void RoundTrip();

  RedisPool pool_;
  const std::string prefix_;
  const std::chrono::milliseconds interval_;
  mutable Mutex mu_;
  Mutex trip_mu_;  // one round trip at a time (the loop's and Sync's)
  std::unordered_map<std::string, Slot> slots_ GUARDED_BY(mu_);
  bool reachable_ GUARDED_BY(mu_) = true;
  bool stop_ GUARDED_BY(mu_) = false;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace contextd
