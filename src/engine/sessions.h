// Conversation sessions for /v1/context: ordered turns per session id, durable in their
// own RocksDB (data/sessions, synced writes) and expiring ttl_s after their last turn.
//
// Writes come from the update log (Engine::Apply): a turn carries its time and the log's
// sequence, and a session remembers the last sequence it applied, so a turn applied twice
// (a replay after a crash) is kept once, and every replica ages sessions alike.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/request_context.h"
#include "common/status.h"

namespace contextd {

struct SessionTurn {
  std::string role;  // user | assistant | system
  std::string content;
  int64_t at_ms = 0;
  // cl100k tokens of content, counted once when the turn is written (so a context budget
  // never recounts a long turn); -1: unknown (no tokenizer, or a turn stored before counts).
  int64_t tokens = -1;
};

// A session's turns, shared with the store: reading a conversation copies no text.
using SessionTurnList = std::vector<std::shared_ptr<const SessionTurn>>;

class SessionStore {
 public:
  static constexpr int64_t kDefaultTtlS = 24 * 3600;
  // `counter` (may be null: turns then carry no count) counts each turn as it is appended;
  // shared, since the store may outlive whoever loaded the tokenizer.
  static StatusOr<std::unique_ptr<SessionStore>> Open(const std::string& dir, const Clock* clock,
                                                      std::shared_ptr<const TokenCounter> counter = nullptr);
  ~SessionStore();

  // Checks a turn before it is proposed: the id, a known role, some content.
  static Status ValidateTurn(const std::string& id, const SessionTurn& turn);
  // Appends a turn at turn.at_ms (0: now); ttl_s (> 0) replaces the session's expiry
  // window. A session expired at that time starts again. `sequence` (the update log's; 0
  // outside it): a turn at or below the session's last applied sequence is a repeat and
  // changes nothing. Returns the number of turns.
  StatusOr<size_t> Append(const std::string& id, const SessionTurn& turn, int64_t ttl_s = 0, uint64_t sequence = 0);
  // NotFound when the session does not exist or has expired.
  StatusOr<SessionTurnList> Turns(const std::string& id);
  Status Delete(const std::string& id);

  static Status ValidateId(const std::string& id);
  // The highest update-log sequence a live session applied (0 for none).
  uint64_t max_sequence() const;
  // A consistent copy of the sessions' database in `dir` (see Store::Checkpoint).
  Status Checkpoint(const std::string& dir) const;

 private:
  struct Rep;
  explicit SessionStore(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace contextd
