// Conversation sessions for /v1/context: ordered turns per session id, durable in their
// own RocksDB (data/sessions, synced writes) and expiring ttl_s after their last turn.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace contextd {

struct SessionTurn {
  std::string role;  // user | assistant | system
  std::string content;
  int64_t at_ms = 0;
};

class SessionStore {
 public:
  static constexpr int64_t kDefaultTtlS = 24 * 3600;
  static StatusOr<std::unique_ptr<SessionStore>> Open(const std::string& dir, const Clock* clock);
  ~SessionStore();

  // Appends a turn; ttl_s (> 0) replaces the session's expiry window. Returns the count.
  StatusOr<size_t> Append(const std::string& id, const SessionTurn& turn, int64_t ttl_s = 0);
  // NotFound when the session does not exist or has expired.
  StatusOr<std::vector<SessionTurn>> Turns(const std::string& id);
  Status Delete(const std::string& id);

  static Status ValidateId(const std::string& id);

 private:
  struct Rep;
  explicit SessionStore(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace contextd
