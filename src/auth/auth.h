// Tenants, API keys and roles.
//
// A key is shown once, when it is made: "ctxd_" + its id (16 hex) + "_" + a 256-bit secret
// (64 hex). Only the secret's SHA-256 is kept; a presented key is found by its id and its
// secret compared in constant time. The bootstrap admin key (CONTEXTD_ADMIN_KEY) is kept
// by the server, not here: it may manage every tenant.
//
// The registry is the in-memory view; it changes only by applying the update log's
// tenant and key mutations (Engine), so every node of a cluster holds the same tenants and
// keys and a revocation reaches them all as soon as they apply it.
//
// Thread safety: AuthRegistry is safe for concurrent use; records are values.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "common/mutex.h"
#include "common/status.h"

namespace contextd {

// "2027-01-31T00:00:00Z" (UTC) -> ms since the epoch; InvalidArgument naming `what`.
StatusOr<int64_t> ParseRfc3339(const std::string& s, const std::string& what = "'expires_at'");

enum class Role { kReader, kWriter, kAdmin };
std::string_view RoleName(Role r);

// Per-minute limits; 0 means none.
struct Limits {
  int64_t rpm = 0;  // requests per minute
  int64_t tpm = 0;  // tokens per minute (embedded plus returned by /v1/context)
  int64_t max_inflight = 0;
  Json ToJson() const;
};
// {"rpm","tpm","max_inflight"}: whole numbers >= 0; unknown fields are refused.
StatusOr<Limits> ParseLimits(const Json& j, const Limits& base = {});

// A spending budget for a period (a UTC day or month), in dollars of the price table.
// Hard: once spent, requests get 402 budget_exceeded until the period turns; soft: they go
// on. Either way, crossing soft_pct raises one warning per period.
struct Budget {
  double limit_usd = 0;  // 0: none
  bool monthly = true;   // "period": "month" or "day"
  int64_t soft_pct = 80;
  bool hard = true;  // "enforce": "hard" or "soft"
  Json ToJson() const;
};
// {"limit_usd","period","soft_pct","enforce"}; unknown fields are refused.
StatusOr<Budget> ParseBudget(const Json& j, const Budget& base = {});

struct TenantRecord {
  std::string id;
  Limits limits;
  // What each of the tenant's users may use (a user: a key's user_id, or the X-User-Id a
  // key may set); none when all zero.
  Limits user_limits;
  Budget budget;
  Json ToJson() const;
  static StatusOr<TenantRecord> FromJson(const Json& j);
};

struct KeyRecord {
  std::string id;  // 16 hex
  std::string tenant;
  Role role = Role::kReader;
  std::string user_id;
  // May name the user it acts for in an X-User-Id header (a gateway serving many users
  // with one key); otherwise a header naming another user than user_id is refused.
  bool user_header = false;
  // Collection name patterns ("docs*", "*-kb", "kb", "*") to "r" or "rw"; empty: every
  // collection of the tenant, as the role allows.
  std::map<std::string, std::string> collections;
  Limits limits;
  Budget budget;
  std::string priority = "interactive";  // or "batch"
  int64_t expires_at_ms = 0;             // 0: never
  std::string secret_sha256;             // hex
  Json ToJson(bool with_hash) const;
  static StatusOr<KeyRecord> FromJson(const Json& j);
  // Whether this key may read (write: and write) collection `name` under its grants.
  bool AllowsCollection(const std::string& name, bool write) const;
};

// Validates a tenant id: 1..64 of [A-Za-z0-9_-].
Status ValidateTenantId(const std::string& id);
// The body of POST /v1/admin/tenants/{t}/keys: role, user_id, collections, limits,
// priority, expires_at (RFC 3339 UTC or ms since the epoch). Fills everything but id,
// tenant and the secret.
StatusOr<KeyRecord> ParseKeyRequest(const Json& body);

// A new key: its record's id and secret hash are set; returns the key to show once.
std::string MakeKey(KeyRecord* record);
// A new secret for the same key id (the old secret stops working once applied).
std::string RotateKey(KeyRecord* record);
std::string Sha256Hex(std::string_view data);
// Equal strings, in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

class AuthRegistry {
 public:
  void PutTenant(TenantRecord t);
  // Removes the tenant and its keys.
  void DeleteTenant(const std::string& id);
  void PutKey(KeyRecord k);
  void DeleteKey(const std::string& id);

  std::optional<TenantRecord> Tenant(const std::string& id) const;
  // The tenant's limits (none for an unknown tenant), without copying its record.
  Limits TenantLimits(const std::string& id) const;
  // The tenant's budget (none when unknown).
  Budget TenantBudget(const std::string& id) const;
  // What each user of the tenant may use (TenantRecord::user_limits), likewise.
  Limits UserLimits(const std::string& id) const;
  std::vector<TenantRecord> Tenants() const;
  std::optional<KeyRecord> Key(const std::string& id) const;
  std::vector<KeyRecord> Keys(const std::string& tenant) const;

  // The key a request presented ("ctxd_ID_SECRET"): Unauthenticated-style errors as
  // InvalidArgument with reason "invalid_api_key" / "expired_api_key". A key verified once
  // is remembered (until any key changes), so the hash is not recomputed per request.
  StatusOr<std::shared_ptr<const KeyRecord>> Authenticate(std::string_view presented, int64_t now_ms) const;

 private:
  static constexpr size_t kMaxVerified = 10000;
  // Lock order: mu_ before verified_mu_.
  mutable SharedMutex mu_ ACQUIRED_BEFORE(verified_mu_);
  void CountBudgetsLocked() REQUIRES(mu_);
  std::map<std::string, TenantRecord> tenants_ GUARDED_BY(mu_);
  // Tenants with a budget: while there are none, TenantBudget takes no lock.
  std::atomic<int> tenant_budgets_{0};
  std::map<std::string, std::shared_ptr<const KeyRecord>> keys_ GUARDED_BY(mu_);
  // Presented keys already checked against their hash; cleared whenever a key changes.
  mutable Mutex verified_mu_;
  mutable std::unordered_map<std::string, std::shared_ptr<const KeyRecord>> verified_ GUARDED_BY(verified_mu_);
};

}  // namespace contextd
