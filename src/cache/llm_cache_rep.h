// LlmCache's insides, shared by its source files (llm_cache.cc: settings, entries and
// lookups; llm_cache_feedback.cc: feedback). Not for use outside src/cache.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/feedback.h"
#include "cache/llm_cache.h"
#include "common/mutex.h"
#include "embed/cache_key.h"
#include "embed/embedder_registry.h"
#include "index/hnsw_index.h"
#include "index/slot_bitset.h"

namespace contextd {
namespace llm_cache_internal {

// Keys in the cache's RocksDB.
inline std::string ConfigKey(const std::string& ns) { return "n" + ns; }
inline std::string EntryPrefix(const std::string& ns) { return "e" + ns + std::string(1, '\0'); }

// A namespace's feedback observations, one key each in arrival order (the sequence
// big-endian after the name), and an entry's own floor.
inline std::string FeedbackPrefix(const std::string& ns) { return "f" + ns + std::string(1, '\0'); }
inline std::string FeedbackKey(const std::string& ns, uint64_t seq) {
  std::string key = FeedbackPrefix(ns);
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>((seq >> shift) & 0xff));
  return key;
}
inline std::string FloorPrefix(const std::string& ns) { return "t" + ns + std::string(1, '\0'); }

inline Status NotFoundNs(const std::string& ns) {
  // A tenant's namespaces are kept as "tenant/name"; the caller knows only the name.
  const std::string name = ns.substr(ns.rfind('/') + 1);
  return NotFound("cache namespace '" + name + "' does not exist; create it with PUT /v1/cache/" + name,
                  "namespace_not_found");
}

}  // namespace llm_cache_internal

struct LlmCache::Namespace {
  struct Entry {
    std::string id;
    std::string prompt;
    std::string scope_key;
    Json response;
    int64_t expires_ms = 0;  // 0: never
    bool live = false;
    // The confidence it needs to be served: above every confidence at which feedback
    // found it wrong (0: none).
    float floor = 0;
  };

  std::string name;  // set once, before the namespace is shared

  // Taken after the cache's map lock (Rep::mu) when both are held.
  mutable SharedMutex mu;
  std::string embedder_name GUARDED_BY(mu);
  std::shared_ptr<const Embedder> embedder GUARDED_BY(mu);
  float threshold GUARDED_BY(mu) = 0.9f;
  int64_t ttl_s GUARDED_BY(mu) = 0;
  VerifyPolicy verify GUARDED_BY(mu);
  std::vector<Entry> entries GUARDED_BY(mu);  // by slot
  std::vector<uint32_t> free_slots GUARDED_BY(mu);
  std::unordered_map<std::string, uint32_t> by_id GUARDED_BY(mu);
  std::unordered_map<EmbedKey, uint32_t, EmbedKeyHash> by_prompt GUARDED_BY(mu);  // normalised prompt + scope
  std::unordered_map<std::string, SlotBitset> scopes GUARDED_BY(mu);
  // The pointer changes under mu; the graph itself takes concurrent inserts and searches.
  std::unique_ptr<HnswIndex> graph GUARDED_BY(mu);
  size_t live GUARDED_BY(mu) = 0;
  size_t reserved GUARDED_BY(mu) = 0;  // slots being inserted (see ReserveLocked)
  // Feedback (cache/feedback.h): the most recent observations and what they teach.
  std::deque<FeedbackObservation> feedback GUARDED_BY(mu);
  uint64_t feedback_next GUARDED_BY(mu) = 0;  // the sequence of the next observation
  LearnedThreshold learned GUARDED_BY(mu);

  // Learns the threshold again from the observations (after feedback, a restart, or a
  // new max_error_rate).
  void RelearnLocked() REQUIRES(mu) {
    if (verify.max_error_rate <= 0) {
      learned = LearnedThreshold();
      return;
    }
    learned = LearnThreshold(std::vector<FeedbackObservation>(feedback.begin(), feedback.end()), verify.max_error_rate);
  }
  // The confidence a semantic hit needs: the learned threshold when the policy bounds
  // the error rate and feedback has taught one, else the policy's.
  float MinConfidence() const REQUIRES_SHARED(mu) {
    if (verify.max_error_rate > 0 && learned.min_confidence) return *learned.min_confidence;
    return verify.min_confidence;
  }

  CacheSettings Settings() const REQUIRES_SHARED(mu) { return CacheSettings{embedder_name, threshold, ttl_s, verify}; }

  // Inserting is three steps so the slow one, the graph insert, runs without the lock
  // (HnswIndex takes concurrent inserts): reserve a slot under the lock, add its vector to
  // the graph, publish the entry under the lock. Until published the slot is in no scope's
  // bitset, so no lookup can return it.
  uint32_t ReserveLocked() REQUIRES(mu) {
    ++reserved;
    if (!free_slots.empty()) {
      const uint32_t slot = free_slots.back();
      free_slots.pop_back();
      return slot;
    }
    entries.emplace_back();
    return static_cast<uint32_t>(entries.size() - 1);
  }
  void PublishLocked(uint32_t slot, Entry e) REQUIRES(mu) {
    --reserved;
    SlotBitset& bits = scopes[e.scope_key];
    if (bits.universe() < entries.size()) bits.Resize(std::max<size_t>(entries.size() * 2, 64));
    bits.Set(slot);
    by_id[e.id] = slot;
    by_prompt[MakeEmbedKey(e.scope_key, e.prompt)] = slot;
    e.live = true;
    entries[slot] = std::move(e);
    ++live;
  }
  // All three under the caller's exclusive lock (loading at start-up).
  void InsertLocked(Entry e, const float* vector) REQUIRES(mu) {
    const uint32_t slot = ReserveLocked();
    graph->Add(slot, vector);
    PublishLocked(slot, std::move(e));
  }

  void EraseLocked(uint32_t slot) REQUIRES(mu) {
    Entry& e = entries[slot];
    if (!e.live) return;
    graph->MarkDeleted(slot);
    scopes[e.scope_key].Clear(slot);
    by_id.erase(e.id);
    auto it = by_prompt.find(MakeEmbedKey(e.scope_key, e.prompt));
    if (it != by_prompt.end() && it->second == slot) by_prompt.erase(it);
    e = Entry();
    free_slots.push_back(slot);
    --live;
    // Tombstones past a tenth of the graph are unlinked so lookups stay fast and exact.
    if (graph->deleted_count() * 10 > graph->node_count()) graph->RepairDeleted();
  }
};

struct LlmCache::Rep {
  std::unique_ptr<rocksdb::DB> db;
  const EmbedderRegistry* embedders = nullptr;
  const Clock* clock = nullptr;
  MetricsRegistry* metrics = nullptr;
  bool sync_writes = true;
  // Guards the map, not the namespaces (each has its own lock, taken after this one).
  mutable SharedMutex mu;
  std::map<std::string, std::unique_ptr<Namespace>> namespaces GUARDED_BY(mu);

  Namespace* Find(const std::string& ns) const {
    ReaderLock lock(&mu);
    auto it = namespaces.find(ns);
    return it == namespaces.end() ? nullptr : it->second.get();
  }
  int64_t NowMs() const { return clock->WallMillis(); }  // expiry must survive restarts: wall time
  void Count(const std::string& ns, const char* result) const {
    if (metrics == nullptr) return;
    const size_t slash = ns.find('/');
    const char* help = "LLM response cache lookups and stores by result.";
    Counter* c =
        slash == std::string::npos
            ? metrics->GetCounter("contextd_llm_cache_requests_total", help, {{"namespace", ns}, {"result", result}})
            : metrics->GetCounter(
                  "contextd_llm_cache_requests_total", help,
                  {{"tenant", ns.substr(0, slash)}, {"namespace", ns.substr(slash + 1)}, {"result", result}});
    c->Increment();
  }
  Status Write(rocksdb::WriteBatch* batch) const {
    rocksdb::WriteOptions wo;
    wo.sync = sync_writes;  // acknowledged means on disk
    rocksdb::Status s = db->Write(wo, batch);
    if (s.ok()) return Status::Ok();
    if (s.IsNoSpace()) return Unavailable("llm cache write failed: the disk is full", "disk_full");
    return Internal("llm cache write failed: " + s.ToString(), "storage_error");
  }
};

}  // namespace contextd
