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
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "cache/verifier.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/metrics.h"
#include "common/status.h"

namespace contextd {

class EmbedderRegistry;

// A namespace's settings: its embedder, the lookup threshold and the entries' default
// time to live (0: none). ToJson/FromStored are the stored form (and a configure
// mutation's payload).
struct CacheSettings {
  std::string embedder = "glove";
  float threshold = 0.9f;  // in (0, 1]: the cosine a candidate needs before it is verified
  int64_t ttl_s = 0;
  VerifyPolicy verify;  // how a semantic candidate is checked before it is served
  Json ToJson() const;
  static StatusOr<CacheSettings> FromStored(const Json& stored);
};

// PUT /v1/cache/{ns}: the settings a request changes; an absent one keeps the namespace's
// (or the default, for a new namespace).
struct CacheSettingsUpdate {
  std::optional<std::string> embedder = std::nullopt;
  std::optional<float> threshold = std::nullopt;  // in (0, 1]
  std::optional<int64_t> ttl_s = std::nullopt;    // 0..kMaxTtlSeconds
  std::optional<Json> verify = std::nullopt;      // members change the namespace's policy
};

// POST /v1/cache/{ns}/feedback: whether serving entry `id` for `prompt` was right, given
// as a verdict or as the fresh response (compared with the entry's: cache/feedback.h).
// The entry may have been served, or only listed as a candidate of a miss.
struct CacheFeedbackRequest {
  std::string id;
  std::string prompt;
  std::optional<bool> correct = std::nullopt;
  std::optional<Json> response = std::nullopt;
};

// One observation ready to apply, here or on a replica (a feedback mutation's payload):
// computed where the feedback arrived, since it embeds the prompt.
struct CacheFeedbackWrite {
  std::string id;
  float similarity = 0;
  float confidence = 0;  // the verifier's, for the prompt against the entry
  bool correct = false;
};

// What a namespace has learnt from feedback.
struct CacheFeedbackState {
  size_t observations = 0, wrong = 0;
  std::optional<float> learned_min_confidence;  // cache/feedback.h; above 1: no hits
  size_t support = 0;
  double error_bound = 0;
  float min_confidence = 0;          // the confidence a hit needs now
  std::optional<float> entry_floor;  // FeedbackState(ns, id): the entry's own, while it exists
};

// POST /v1/cache/{ns}/feedback's answer.
struct CacheFeedbackResult {
  CacheFeedbackWrite observed;
  CacheFeedbackState state;
};

// GET /v1/cache/{ns}.
struct CacheNamespaceInfo {
  CacheSettings settings;
  CacheFeedbackState feedback;
  size_t entries = 0;
  size_t scopes = 0;
  int dim = 0;
};

// POST /v1/cache/{ns}/store: a prompt, its response (any JSON) and its scope (an object of
// exact-match fields, e.g. the model).
struct CacheStoreRequest {
  std::string prompt;  // not empty
  Json response;
  Json scope = Json::MakeObject();
  std::optional<int64_t> ttl_s = std::nullopt;  // 1..kMaxTtlSeconds; absent: the namespace's
};

// POST /v1/cache/{ns}/lookup.
struct CacheLookupRequest {
  std::string prompt;  // not empty
  Json scope = Json::MakeObject();
  std::optional<float> threshold = std::nullopt;  // in (0, 1]; absent: the namespace's
};

// One stored prompt a semantic lookup considered.
struct CacheCandidate {
  std::string id;
  float similarity = 0;
  Verification verification;
};

struct CacheLookup {
  bool hit = false;
  std::string id;
  Json response;
  float similarity = 0;
  bool exact = false;  // the normalised prompt matched without embedding
  // Semantic lookups with verification on: the verdict on the entry served, or on the most
  // confident candidate refused (so a miss says why).
  std::optional<Verification> verification;
  std::vector<CacheCandidate> candidates;  // every candidate over the threshold, nearest first
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

  // The settings `update` makes of the namespace's (checked: the embedder exists).
  StatusOr<CacheSettings> PrepareConfigure(const std::string& ns, const CacheSettingsUpdate& update) const;
  Status ApplyConfigure(const std::string& ns, const CacheSettings& settings);
  StatusOr<CacheEntryWrite> PrepareStore(const std::string& ns, const CacheStoreRequest& request) const;
  Status ApplyStore(const std::string& ns, CacheEntryWrite entry);
  // The ids of the entries whose scope has every given field with the given value.
  StatusOr<std::vector<std::string>> MatchScope(const std::string& ns,
                                                const std::map<std::string, std::string>& fields) const;
  // Feedback (cache/feedback.h): Prepare embeds the prompt and scores it against the
  // entry (NotFound when the entry is gone); Apply records the observation, raises the
  // entry's floor when it was wrong and learns the namespace's threshold again.
  StatusOr<CacheFeedbackWrite> PrepareFeedback(const std::string& ns, const CacheFeedbackRequest& request) const;
  Status ApplyFeedback(const std::string& ns, const CacheFeedbackWrite& feedback);
  // The namespace's feedback state, with `id`'s floor when given and present.
  StatusOr<CacheFeedbackState> FeedbackState(const std::string& ns, const std::string& id = "") const;

  // NotFound unless the namespace holds `id`.
  Status CheckEntry(const std::string& ns, const std::string& id) const;
  // Deletes those of `ids` present; returns how many.
  StatusOr<size_t> ApplyDelete(const std::string& ns, const std::vector<std::string>& ids);

  // Creates or updates a namespace (the embedder of a namespace with entries cannot
  // change). Returns the settings.
  StatusOr<CacheSettings> Configure(const std::string& ns, const CacheSettingsUpdate& update);
  // Settings and counts.
  StatusOr<CacheNamespaceInfo> Describe(const std::string& ns) const;
  // Returns the new entry's id.
  StatusOr<std::string> Store(const std::string& ns, const CacheStoreRequest& request);
  // Not const: it deletes the expired entries it meets.
  StatusOr<CacheLookup> Lookup(const std::string& ns, const CacheLookupRequest& request);
  // Deletes the entries whose scope has every given field with the given value (values
  // compared as JSON); returns how many.
  StatusOr<size_t> DeleteByScope(const std::string& ns, const std::map<std::string, std::string>& fields);
  Status DeleteEntry(const std::string& ns, const std::string& id);
  // A consistent copy of the cache's database in `dir` (see Store::Checkpoint).
  Status Checkpoint(const std::string& dir) const;

  // Valid namespace names: 1..64 of [A-Za-z0-9_-].
  static Status ValidateNamespace(const std::string& ns);

 private:
  struct Rep;
  struct Namespace;
  explicit LlmCache(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace contextd
