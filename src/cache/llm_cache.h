// LlmCache: the LLM response cache (GPTCache / LangCache style) behind /v1/cache/{ns}.
//
// A namespace has an embedder and a default similarity threshold. store() keeps a prompt,
// its response (any JSON) and a scope (an object of exact-match fields, e.g. the model);
// lookup() finds the stored prompt most similar to the new one among entries with the
// same scope and answers a hit when the cosine reaches the threshold. An identical prompt
// (after NFC + whitespace normalisation) in the same scope is found without embedding.
//
// Index: one HNSW graph per namespace over every entry; each distinct scope owns a bitset
// of its entries, and lookups search the graph restricted to it (HnswIndex::SearchFiltered
// scans small scopes exactly and walks large ones).
//
// Durability: entries and namespace settings live in their own RocksDB (data/llm_cache),
// written with sync before store() returns, so an acknowledged entry survives kill -9; the
// index is rebuilt from it at start-up. Its own database, not the main store's, for the
// reason RocksTier gives: the main store's sequence number validates saved HNSW graphs.
//
// Expiry: entries carry an expiry (ttl_s, else the namespace's default, else none);
// lookups never return an expired entry and delete it when they meet it.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/metrics.h"
#include "common/status.h"

namespace contextd {

class EmbedderRegistry;

struct CacheLookup {
  bool hit = false;
  std::string id;
  Json response;
  float similarity = 0;
  bool exact = false;  // the normalised prompt matched without embedding
};

// One entry ready to store: what PrepareStore computed (the id, the expiry, the prompt's
// vector) and ApplyStore writes, here or on a replica, without embedding.
struct CacheEntryWrite {
  std::string id;
  std::string prompt;
  std::string scope_key;  // canonical JSON of the scope
  Json response;
  int64_t expires_ms = 0;  // wall clock; 0: never
  std::vector<float> vector;
};

class LlmCache {
 public:
  // dir: the cache's RocksDB directory. Namespaces are loaded and indexed before it returns.
  // sync_writes = false skips the fsync per write (benchmarks filling millions of entries
  // only: the server always syncs, since a store is acknowledged as durable).
  static StatusOr<std::unique_ptr<LlmCache>> Open(const std::string& dir, const EmbedderRegistry* embedders,
                                                  const Clock* clock, MetricsRegistry* metrics,
                                                  bool sync_writes = true);
  ~LlmCache();

  // Writes come in two halves, so the update log can carry them (Engine::Apply): Prepare*
  // validates and computes (embeds), Apply* changes the cache and never embeds. Applying
  // is idempotent: an entry id stored twice is stored once, deletes of missing ids count
  // nothing. The one-step forms below are Prepare + Apply.

  // The settings a PUT /v1/cache/{ns} body asks for (checked against the namespace).
  StatusOr<Json> PrepareConfigure(const std::string& ns, const Json& body) const;
  Status ApplyConfigure(const std::string& ns, const Json& settings);
  StatusOr<CacheEntryWrite> PrepareStore(const std::string& ns, const Json& body) const;
  Status ApplyStore(const std::string& ns, CacheEntryWrite entry);
  // The ids of the entries whose scope has every given field with the given value.
  StatusOr<std::vector<std::string>> MatchScope(const std::string& ns,
                                                const std::map<std::string, std::string>& fields) const;
  // NotFound unless the namespace holds `id`.
  Status CheckEntry(const std::string& ns, const std::string& id) const;
  // Deletes those of `ids` present; returns how many.
  StatusOr<size_t> ApplyDelete(const std::string& ns, const std::vector<std::string>& ids);

  // PUT /v1/cache/{ns}: {"embedder":..,"threshold":0..1,"ttl_s":..}; creates or updates
  // (the embedder of a namespace with entries cannot change). Returns the settings.
  StatusOr<Json> Configure(const std::string& ns, const Json& body);
  // GET /v1/cache/{ns}: settings and counts.
  StatusOr<Json> Describe(const std::string& ns) const;
  // {"prompt","response","scope"?,"ttl_s"?} -> the new entry's id.
  StatusOr<std::string> Store(const std::string& ns, const Json& body);
  // {"prompt","scope"?,"threshold"?}. Not const: it deletes the expired entries it meets.
  StatusOr<CacheLookup> Lookup(const std::string& ns, const Json& body);
  // Deletes the entries whose scope has every given field with the given value (values
  // compared as JSON); returns how many.
  StatusOr<size_t> DeleteByScope(const std::string& ns, const std::map<std::string, std::string>& fields);
  Status DeleteEntry(const std::string& ns, const std::string& id);

  // Valid namespace names: 1..64 of [A-Za-z0-9_-].
  static Status ValidateNamespace(const std::string& ns);

 private:
  struct Rep;
  struct Namespace;
  explicit LlmCache(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace contextd
