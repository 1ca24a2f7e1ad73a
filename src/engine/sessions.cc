#include "engine/sessions.h"
#include "store/store.h"

#include "common/mutex.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "common/json.h"
#include "common/names.h"

namespace contextd {
namespace {

// Keys: "m" id -> {"ttl_s","last_ms","seq"}; "t" id \0 be32(n) -> {"role","content","at_ms","tokens"}.
std::string MetaKey(const std::string& id) { return "m" + id; }
std::string TurnPrefix(const std::string& id) { return "t" + id + std::string(1, '\0'); }
std::string TurnKey(const std::string& id, uint32_t n) {
  std::string k = TurnPrefix(id);
  for (int s = 24; s >= 0; s -= 8) k.push_back(static_cast<char>((n >> s) & 0xFF));
  return k;
}

struct Session {
  int64_t ttl_s = SessionStore::kDefaultTtlS;
  int64_t last_ms = 0;
  uint64_t seq = 0;  // the last update-log sequence applied
  SessionTurnList turns;
};

}  // namespace

struct SessionStore::Rep {
  std::unique_ptr<rocksdb::DB> db;
  const Clock* clock = nullptr;
  std::shared_ptr<const TokenCounter> counter;
  mutable Mutex mu;
  std::map<std::string, Session> sessions GUARDED_BY(mu);

  bool Expired(const Session& s) const { return ExpiredAt(s, clock->WallMillis()); }
  static bool ExpiredAt(const Session& s, int64_t now_ms) { return s.last_ms + s.ttl_s * 1000 <= now_ms; }
  Status Write(rocksdb::WriteBatch* b) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto s = db->Write(wo, b);
    if (s.ok()) return Status::Ok();
    if (s.IsNoSpace()) return Unavailable("session write failed: the disk is full", "disk_full");
    return Internal("session write failed: " + s.ToString(), "storage_error");
  }
  // Removes a session from disk and memory.
  Status EraseLocked(const std::string& id) REQUIRES(mu) {
    rocksdb::WriteBatch b;
    b.Delete(MetaKey(id));
    b.DeleteRange(TurnPrefix(id), TurnPrefix(id) + std::string(4, '\xff') + "\xff");
    CTX_RETURN_IF_ERROR(Write(&b));
    sessions.erase(id);
    return Status::Ok();
  }
};

SessionStore::SessionStore(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
SessionStore::~SessionStore() = default;

Status SessionStore::ValidateId(const std::string& stored) {
  if (!IsTenantScopedName(stored, 128, ".")) {
    return InvalidArgument("session ids are 1 to 128 of A-Z a-z 0-9 _ - .", "invalid_name");
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<SessionStore>> SessionStore::Open(const std::string& dir, const Clock* clock,
                                                           std::shared_ptr<const TokenCounter> counter) {
  auto rep = std::make_unique<Rep>();
  rep->clock = clock;
  rep->counter = std::move(counter);
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok()) return Internal("cannot open sessions in " + dir + ": " + s.ToString(), "storage_error");
  rep->db.reset(db);
  MutexLock lock(&rep->mu);  // no one else has rep yet; the analysis wants it anyway
  std::unique_ptr<rocksdb::Iterator> it(rep->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("m"); it->Valid() && it->key().starts_with("m"); it->Next()) {
    auto meta = ParseJson(it->value().ToString());
    if (!meta.ok()) continue;
    Session& session = rep->sessions[it->key().ToString().substr(1)];
    session.ttl_s = meta->Find("ttl_s")->as_int();
    session.last_ms = meta->Find("last_ms")->as_int();
    if (const Json* seq = meta->Find("seq"); seq != nullptr && seq->is_number())
      session.seq = static_cast<uint64_t>(seq->as_int());
  }
  for (it->Seek("t"); it->Valid() && it->key().starts_with("t"); it->Next()) {
    const std::string key = it->key().ToString();
    const size_t nul = key.find('\0');
    auto found = rep->sessions.find(key.substr(1, nul - 1));
    auto turn = ParseJson(it->value().ToString());
    if (found == rep->sessions.end() || !turn.ok()) continue;
    const Json* tokens = turn->Find("tokens");
    found->second.turns.push_back(std::make_shared<const SessionTurn>(
        SessionTurn{turn->Find("role")->as_string(), turn->Find("content")->as_string(), turn->Find("at_ms")->as_int(),
                    tokens != nullptr && tokens->is_number() ? tokens->as_int() : -1}));
  }
  // Sessions that expired while the server was down go now.
  std::vector<std::string> expired;
  for (const auto& [id, session] : rep->sessions) {
    if (rep->Expired(session)) expired.push_back(id);
  }
  for (const auto& id : expired) CTX_RETURN_IF_ERROR(rep->EraseLocked(id));
  return std::unique_ptr<SessionStore>(new SessionStore(std::move(rep)));
}

Status SessionStore::ValidateTurn(const std::string& id, const SessionTurn& turn) {
  CTX_RETURN_IF_ERROR(ValidateId(id));
  if (turn.role != "user" && turn.role != "assistant" && turn.role != "system")
    return InvalidArgument("'role' must be user, assistant or system", "invalid_value");
  if (turn.content.empty()) return InvalidArgument("'content' must be a non-empty string", "missing_field");
  return Status::Ok();
}

uint64_t SessionStore::max_sequence() const {
  MutexLock lock(&rep_->mu);
  uint64_t best = 0;
  for (const auto& [id, s] : rep_->sessions) best = std::max(best, s.seq);
  return best;
}

StatusOr<size_t> SessionStore::Append(const std::string& id, const SessionTurn& turn, int64_t ttl_s,
                                      uint64_t sequence) {
  CTX_RETURN_IF_ERROR(ValidateTurn(id, turn));
  SessionTurn t = turn;
  if (t.at_ms == 0) t.at_ms = rep_->clock->WallMillis();
  // Counted outside the lock: a long turn must not hold up every other session.
  if (t.tokens < 0 && rep_->counter != nullptr) t.tokens = static_cast<int64_t>(rep_->counter->Count(t.content));
  Json value = Json::MakeObject();
  value["role"] = t.role;
  value["content"] = t.content;
  value["at_ms"] = t.at_ms;
  if (t.tokens >= 0) value["tokens"] = t.tokens;
  MutexLock lock(&rep_->mu);
  auto it = rep_->sessions.find(id);
  if (it != rep_->sessions.end() && sequence != 0 && sequence <= it->second.seq) {
    return it->second.turns.size();  // a repeat from the log
  }
  // Expiry is judged at the turn's own time, so every replica decides alike.
  if (it != rep_->sessions.end() && Rep::ExpiredAt(it->second, t.at_ms)) {
    CTX_RETURN_IF_ERROR(rep_->EraseLocked(id));
    it = rep_->sessions.end();
  }
  // The session's new head, written first; memory changes only once the write is stored
  // (and the turns already held are never copied).
  const Session fresh;
  const Session& now = it != rep_->sessions.end() ? it->second : fresh;
  Json meta = Json::MakeObject();
  meta["ttl_s"] = ttl_s > 0 ? ttl_s : now.ttl_s;
  meta["last_ms"] = t.at_ms;
  meta["seq"] = static_cast<int64_t>(std::max(now.seq, sequence));
  rocksdb::WriteBatch b;
  b.Put(MetaKey(id), meta.Dump());
  b.Put(TurnKey(id, static_cast<uint32_t>(now.turns.size())), value.Dump());
  CTX_RETURN_IF_ERROR(rep_->Write(&b));
  Session& session = rep_->sessions[id];
  if (ttl_s > 0) session.ttl_s = ttl_s;
  session.last_ms = t.at_ms;
  session.seq = std::max(session.seq, sequence);
  session.turns.push_back(std::make_shared<const SessionTurn>(std::move(t)));
  return session.turns.size();
}

StatusOr<SessionTurnList> SessionStore::Turns(const std::string& id) {
  CTX_RETURN_IF_ERROR(ValidateId(id));
  MutexLock lock(&rep_->mu);
  auto it = rep_->sessions.find(id);
  if (it != rep_->sessions.end() && rep_->Expired(it->second)) {
    CTX_RETURN_IF_ERROR(rep_->EraseLocked(id));
    it = rep_->sessions.end();
  }
  if (it == rep_->sessions.end())
    return NotFound("session '" + id + "' does not exist or has expired", "session_not_found");
  return it->second.turns;
}

Status SessionStore::Delete(const std::string& id) {
  CTX_RETURN_IF_ERROR(ValidateId(id));
  MutexLock lock(&rep_->mu);
  if (!rep_->sessions.count(id)) return NotFound("session '" + id + "' does not exist", "session_not_found");
  return rep_->EraseLocked(id);
}

Status SessionStore::Checkpoint(const std::string& dir) const { return rocks::CheckpointTo(rep_->db.get(), dir); }

}  // namespace contextd
