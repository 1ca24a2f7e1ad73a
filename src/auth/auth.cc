#include "auth/auth.h"

#include "common/names.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <ctime>
#include <mutex>

namespace contextd {
namespace {

constexpr char kKeyPrefix[] = "ctxd_";
constexpr size_t kIdHex = 16, kSecretHex = 64;

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 15]);
  }
  return out;
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  // RAND_bytes draws from the OS's generator; it fails only when that is unavailable.
  if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) std::abort();
  return Hex(buf.data(), bytes);
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// "docs*", "*-kb", "kb", "*": one '*' at the start or the end, or none.
bool Matches(const std::string& pattern, const std::string& name) {
  if (pattern == "*") return true;
  if (!pattern.empty() && pattern.back() == '*') return name.rfind(pattern.substr(0, pattern.size() - 1), 0) == 0;
  if (!pattern.empty() && pattern.front() == '*') {
    const std::string suffix = pattern.substr(1);
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return pattern == name;
}

Status Unauthenticated(const std::string& msg, const std::string& reason) { return InvalidArgument(msg, reason); }

}  // namespace

StatusOr<int64_t> ParseRfc3339(const std::string& s, const std::string& what) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr || (std::string_view(end) != "Z" && std::string_view(end) != "")) {
    return InvalidArgument(what + " must be RFC 3339 in UTC (2027-01-31T00:00:00Z) or ms since the epoch",
                           "invalid_value");
  }
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kReader:
      return "reader";
    case Role::kWriter:
      return "writer";
    case Role::kAdmin:
      return "admin";
  }
  return "reader";
}

Json Limits::ToJson() const {
  Json j = Json::MakeObject();
  j["rpm"] = rpm;
  j["tpm"] = tpm;
  j["max_inflight"] = max_inflight;
  return j;
}

StatusOr<Limits> ParseLimits(const Json& j, const Limits& base) {
  if (!j.is_object()) return InvalidArgument("'limits' must be an object of rpm, tpm, max_inflight", "invalid_value");
  Limits l = base;
  for (const auto& [k, v] : j.as_object()) {
    int64_t* field = k == "rpm" ? &l.rpm : k == "tpm" ? &l.tpm : k == "max_inflight" ? &l.max_inflight : nullptr;
    if (field == nullptr)
      return InvalidArgument("unknown limit '" + k + "'; expected rpm, tpm, max_inflight", "unknown_field");
    CTX_RETURN_IF_ERROR(ReadWholeNumber(v, "'limits." + k + "'", 0, int64_t{1} << 40, field));
  }
  return l;
}

Json TenantRecord::ToJson() const {
  Json j = Json::MakeObject();
  j["id"] = id;
  j["limits"] = limits.ToJson();
  j["user_limits"] = user_limits.ToJson();
  if (budget.limit_usd > 0) j["budget"] = budget.ToJson();
  return j;
}

StatusOr<TenantRecord> TenantRecord::FromJson(const Json& j) {
  TenantRecord t;
  const Json* id = j.Find("id");
  if (id == nullptr || !id->is_string()) return InvalidArgument("a tenant needs an 'id'", "missing_field");
  t.id = id->as_string();
  CTX_RETURN_IF_ERROR(ValidateTenantId(t.id));
  if (const Json* l = j.Find("limits")) {
    CTX_ASSIGN_OR_RETURN(t.limits, ParseLimits(*l));
  }
  if (const Json* l = j.Find("user_limits")) {
    CTX_ASSIGN_OR_RETURN(t.user_limits, ParseLimits(*l));
  }
  if (const Json* b = j.Find("budget")) {
    CTX_ASSIGN_OR_RETURN(t.budget, ParseBudget(*b));
  }
  return t;
}

Json KeyRecord::ToJson(bool with_hash) const {
  Json j = Json::MakeObject();
  j["id"] = id;
  j["tenant"] = tenant;
  j["role"] = RoleName(role);
  if (!user_id.empty()) j["user_id"] = user_id;
  j["user_header"] = user_header;
  Json c = Json::MakeObject();
  for (const auto& [pattern, access] : collections) c[pattern] = access;
  j["collections"] = std::move(c);
  j["limits"] = limits.ToJson();
  if (budget.limit_usd > 0) j["budget"] = budget.ToJson();
  j["priority"] = priority;
  j["expires_at_ms"] = expires_at_ms;
  if (with_hash) j["secret_sha256"] = secret_sha256;
  return j;
}

Json Budget::ToJson() const {
  Json j = Json::MakeObject();
  j["limit_usd"] = limit_usd;
  j["period"] = monthly ? "month" : "day";
  j["soft_pct"] = soft_pct;
  j["enforce"] = hard ? "hard" : "soft";
  return j;
}

StatusOr<Budget> ParseBudget(const Json& j, const Budget& base) {
  if (!j.is_object()) {
    return InvalidArgument("'budget' must be an object of limit_usd, period, soft_pct, enforce", "invalid_value");
  }
  Budget b = base;
  for (const auto& [k, v] : j.as_object()) {
    if (k == "limit_usd") {
      if (!v.is_number() || v.as_double() < 0 || v.as_double() > 1e12)
        return InvalidArgument("'budget.limit_usd' must be a number of dollars from 0 to 1e12", "invalid_value");
      b.limit_usd = v.as_double();
    } else if (k == "period") {
      if (!v.is_string() || (v.as_string() != "day" && v.as_string() != "month"))
        return InvalidArgument("'budget.period' must be \"day\" or \"month\"", "invalid_value");
      b.monthly = v.as_string() == "month";
    } else if (k == "soft_pct") {
      CTX_RETURN_IF_ERROR(ReadWholeNumber(v, "'budget.soft_pct'", 1, 100, &b.soft_pct));
    } else if (k == "enforce") {
      if (!v.is_string() || (v.as_string() != "hard" && v.as_string() != "soft"))
        return InvalidArgument("'budget.enforce' must be \"hard\" or \"soft\"", "invalid_value");
      b.hard = v.as_string() == "hard";
    } else {
      return InvalidArgument("unknown budget field '" + k + "'; expected limit_usd, period, soft_pct, enforce",
                             "unknown_field");
    }
  }
  return b;
}

StatusOr<KeyRecord> KeyRecord::FromJson(const Json& j) {
  Json body = Json::MakeObject();
  for (const char* f : {"role", "user_id", "collections", "limits", "budget", "priority", "user_header"}) {
    if (const Json* v = j.Find(f)) body[f] = *v;
  }
  CTX_ASSIGN_OR_RETURN(KeyRecord k, ParseKeyRequest(body));
  const Json *id = j.Find("id"), *tenant = j.Find("tenant"), *hash = j.Find("secret_sha256"),
             *expires = j.Find("expires_at_ms");
  if (id == nullptr || !id->is_string() || tenant == nullptr || !tenant->is_string() || hash == nullptr ||
      !hash->is_string()) {
    return InvalidArgument("a key record needs id, tenant and secret_sha256", "invalid_mutation");
  }
  k.id = id->as_string();
  k.tenant = tenant->as_string();
  k.secret_sha256 = hash->as_string();
  if (expires != nullptr && expires->is_number()) k.expires_at_ms = expires->as_int();
  return k;
}

bool KeyRecord::AllowsCollection(const std::string& name, bool write) const {
  if (collections.empty()) return true;
  for (const auto& [pattern, access] : collections) {
    if (Matches(pattern, name) && (!write || access == "rw")) return true;
  }
  return false;
}

Status ValidateTenantId(const std::string& id) {
  if (!IsName(id, 64)) return InvalidArgument("tenant ids are 1 to 64 of A-Z a-z 0-9 _ -", "invalid_name");
  return Status::Ok();
}

StatusOr<KeyRecord> ParseKeyRequest(const Json& body) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  KeyRecord k;
  for (const auto& [f, v] : body.as_object()) {
    if (f == "role") {
      const std::string r = v.is_string() ? v.as_string() : "";
      if (r == "reader")
        k.role = Role::kReader;
      else if (r == "writer")
        k.role = Role::kWriter;
      else if (r == "admin")
        k.role = Role::kAdmin;
      else
        return InvalidArgument("'role' must be reader, writer or admin", "invalid_value");
    } else if (f == "user_id") {
      if (!v.is_string() || v.as_string().size() > 128)
        return InvalidArgument("'user_id' must be a string of at most 128 bytes", "invalid_value");
      k.user_id = v.as_string();
    } else if (f == "collections") {
      if (!v.is_object())
        return InvalidArgument("'collections' must map name patterns to \"r\" or \"rw\"", "invalid_value");
      for (const auto& [pattern, access] : v.as_object()) {
        const size_t stars = std::count(pattern.begin(), pattern.end(), '*');
        const bool placed =
            stars == 0 || pattern == "*" || (stars == 1 && (pattern.front() == '*' || pattern.back() == '*'));
        if (pattern.empty() || pattern.size() > 64 || !placed)
          return InvalidArgument("collection pattern '" + pattern + "' may hold one '*', at its start or end",
                                 "invalid_value");
        if (!access.is_string() || (access.as_string() != "r" && access.as_string() != "rw"))
          return InvalidArgument("collection pattern '" + pattern + "' must map to \"r\" or \"rw\"", "invalid_value");
        k.collections[pattern] = access.as_string();
      }
    } else if (f == "limits") {
      CTX_ASSIGN_OR_RETURN(k.limits, ParseLimits(v));
    } else if (f == "budget") {
      CTX_ASSIGN_OR_RETURN(k.budget, ParseBudget(v));
    } else if (f == "user_header") {
      if (!v.is_bool()) return InvalidArgument("'user_header' must be true or false", "invalid_type");
      k.user_header = v.as_bool();
    } else if (f == "priority") {
      if (!v.is_string() || (v.as_string() != "interactive" && v.as_string() != "batch"))
        return InvalidArgument("'priority' must be interactive or batch", "invalid_value");
      k.priority = v.as_string();
    } else if (f == "expires_at") {
      if (v.is_string()) {
        CTX_ASSIGN_OR_RETURN(k.expires_at_ms, ParseRfc3339(v.as_string()));
      } else {
        CTX_RETURN_IF_ERROR(
            ReadWholeNumber(v, "'expires_at' (ms since the epoch)", 1, int64_t{1} << 50, &k.expires_at_ms));
      }
    } else {
      return InvalidArgument(
          "unknown field '" + f +
              "'; expected role, user_id, user_header, collections, limits, budget, priority, expires_at",
          "unknown_field");
    }
  }
  return k;
}

std::string Sha256Hex(std::string_view data) {
  // Fetched once: OpenSSL 3's implicit fetch (EVP_sha256() per call) takes a global lock
  // on every request that presents a key.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, sha256, nullptr);
  return Hex(md, len);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string MakeKey(KeyRecord* record) {
  record->id = RandomHex(kIdHex / 2);
  return RotateKey(record);
}

std::string RotateKey(KeyRecord* record) {
  const std::string secret = RandomHex(kSecretHex / 2);
  record->secret_sha256 = Sha256Hex(secret);
  return std::string(kKeyPrefix) + record->id + "_" + secret;
}

Limits AuthRegistry::TenantLimits(const std::string& id) const {
  ReaderLock lock(&mu_);
  auto it = tenants_.find(id);
  return it == tenants_.end() ? Limits() : it->second.limits;
}

Budget AuthRegistry::TenantBudget(const std::string& id) const {
  if (tenant_budgets_.load(std::memory_order_relaxed) == 0) return Budget();
  ReaderLock lock(&mu_);
  auto it = tenants_.find(id);
  return it == tenants_.end() ? Budget() : it->second.budget;
}

Limits AuthRegistry::UserLimits(const std::string& id) const {
  ReaderLock lock(&mu_);
  auto it = tenants_.find(id);
  return it == tenants_.end() ? Limits() : it->second.user_limits;
}

void AuthRegistry::PutTenant(TenantRecord t) {
  WriterLock lock(&mu_);
  tenants_[t.id] = std::move(t);
  CountBudgetsLocked();
}

void AuthRegistry::CountBudgetsLocked() {
  int n = 0;
  for (const auto& [id, t] : tenants_) n += t.budget.limit_usd > 0 ? 1 : 0;
  tenant_budgets_ = n;
}

void AuthRegistry::DeleteTenant(const std::string& id) {
  WriterLock lock(&mu_);
  tenants_.erase(id);
  CountBudgetsLocked();
  for (auto it = keys_.begin(); it != keys_.end();) it = it->second->tenant == id ? keys_.erase(it) : std::next(it);
  MutexLock v(&verified_mu_);
  verified_.clear();
}

void AuthRegistry::PutKey(KeyRecord k) {
  WriterLock lock(&mu_);
  std::string id = k.id;
  keys_[id] = std::make_shared<const KeyRecord>(std::move(k));
  MutexLock v(&verified_mu_);
  verified_.clear();  // a rotated key's old secret must stop working at once
}

void AuthRegistry::DeleteKey(const std::string& id) {
  WriterLock lock(&mu_);
  keys_.erase(id);
  MutexLock v(&verified_mu_);
  verified_.clear();
}

std::optional<TenantRecord> AuthRegistry::Tenant(const std::string& id) const {
  ReaderLock lock(&mu_);
  auto it = tenants_.find(id);
  if (it == tenants_.end()) return std::nullopt;
  return it->second;
}

std::vector<TenantRecord> AuthRegistry::Tenants() const {
  ReaderLock lock(&mu_);
  std::vector<TenantRecord> out;
  for (const auto& [id, t] : tenants_) out.push_back(t);
  return out;
}

std::optional<KeyRecord> AuthRegistry::Key(const std::string& id) const {
  ReaderLock lock(&mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) return std::nullopt;
  return *it->second;
}

std::vector<KeyRecord> AuthRegistry::Keys(const std::string& tenant) const {
  ReaderLock lock(&mu_);
  std::vector<KeyRecord> out;
  for (const auto& [id, k] : keys_) {
    if (k->tenant == tenant) out.push_back(*k);
  }
  return out;
}

StatusOr<std::shared_ptr<const KeyRecord>> AuthRegistry::Authenticate(std::string_view presented,
                                                                      int64_t now_ms) const {
  std::shared_ptr<const KeyRecord> known;
  {
    MutexLock v(&verified_mu_);
    auto it = verified_.find(std::string(presented));
    if (it != verified_.end()) known = it->second;
  }
  if (known != nullptr) {
    if (known->expires_at_ms != 0 && known->expires_at_ms <= now_ms) {
      return Unauthenticated("the API key " + known->id + " has expired", "expired_api_key");
    }
    return known;
  }
  const size_t prefix = sizeof(kKeyPrefix) - 1;
  if (presented.size() != prefix + kIdHex + 1 + kSecretHex || presented.substr(0, prefix) != kKeyPrefix ||
      presented[prefix + kIdHex] != '_') {
    return Unauthenticated("the API key is not a contextd key (ctxd_...)", "invalid_api_key");
  }
  const std::string id(presented.substr(prefix, kIdHex));
  const std::string_view secret = presented.substr(prefix + kIdHex + 1);
  if (!IsHex(id) || !IsHex(secret)) return Unauthenticated("the API key is malformed", "invalid_api_key");
  std::shared_ptr<const KeyRecord> k;
  {
    ReaderLock lock(&mu_);
    auto it = keys_.find(id);
    if (it != keys_.end()) k = it->second;
  }
  // Hash either way, so an unknown id costs what a wrong secret does.
  const std::string hash = Sha256Hex(secret);
  if (k == nullptr || !ConstantTimeEquals(hash, k->secret_sha256)) {
    return Unauthenticated("the API key is unknown or was revoked", "invalid_api_key");
  }
  if (k->expires_at_ms != 0 && k->expires_at_ms <= now_ms) {
    return Unauthenticated("the API key " + id + " has expired", "expired_api_key");
  }
  {
    ReaderLock lock(&mu_);
    MutexLock v(&verified_mu_);
    // Only if the key is still the one checked (a rotation may have cleared the cache since).
    auto it = keys_.find(id);
    if (it != keys_.end() && it->second == k) {
      if (verified_.size() >= kMaxVerified) verified_.clear();
      verified_.emplace(std::string(presented), k);
    }
  }
  return k;
}

}  // namespace contextd
