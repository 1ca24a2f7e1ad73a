// The names users give things (collections, tenants, cache namespaces, sessions): 1 to
// max_len of A-Z a-z 0-9 _ - (and the characters in `extra`), so they are safe in paths,
// keys and metric labels.
//
// Thread safety: free functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace contextd {

inline bool IsName(std::string_view s, size_t max_len, std::string_view extra = "") {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    const bool plain =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!plain && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// A session or cache namespace as stored: "tenant/name" (Engine::TenantScoped), or a bare
// name where a cache is used without tenants (tools, tests); the tenant part is a name of
// up to 64.
inline bool IsTenantScopedName(std::string_view stored, size_t max_len, std::string_view extra = "") {
  const size_t slash = stored.find('/');
  if (slash == std::string_view::npos) return IsName(stored, max_len, extra);
  return IsName(stored.substr(0, slash), 64) && IsName(stored.substr(slash + 1), max_len, extra);
}

}  // namespace contextd
