// In-process fakes of the engine's interfaces (engine/services.h, embed/embedder_catalog.h)
// for testing the HTTP layer without RocksDB, indexes or embedders: each keeps its state in
// maps, records what the API handed it (the last request context's tenant, deadline and
// trace), and can be told to fail, so tests see how the API maps errors.
//
// Thread safety: each fake locks its own state; the API calls them from its pools.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "embed/embedder_catalog.h"
#include "embed/hash_embedder.h"
#include "engine/services.h"
#include "server/api.h"
#include "text/analyzer.h"

namespace contextd {

// What a fake saw of the last request context handed to it.
struct SeenContext {
  std::string tenant, principal, trace_id, idempotency_key;
  int64_t deadline_ns = 0;
  void Note(const RequestContext& ctx) {
    tenant = ctx.tenant;
    principal = ctx.principal;
    trace_id = ctx.trace.trace_id;
    idempotency_key = ctx.idempotency_key;
    deadline_ns = ctx.deadline_ns;
  }
};

// A collection that keeps documents in a map and answers a query with the documents whose
// text contains the query text, in id order, each scored 1.
class FakeCollection : public CollectionHandle {
 public:
  FakeCollection(std::string name, CollectionConfig config)
      : name_(std::move(name)), config_(std::move(config)), analyzer_(std::move(MakeAnalyzer("standard")).value()) {}

  const std::string& name() const override { return name_; }
  const CollectionConfig& config() const override { return config_; }
  bool has_embedder() const override { return config_.embedder != "none"; }
  bool embedder_waits() const override { return false; }
  const Analyzer& analyzer() const override { return *analyzer_; }

  Status Upsert(const RequestContext& ctx, std::vector<DocumentInput> docs, UpsertResult* result) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen.Note(ctx);
    if (!fail_with.ok()) return fail_with;
    for (auto& d : docs) {
      StoredDocument s{d.id, d.title, d.text, d.metadata, d.refs, 1};
      docs_[d.id] = std::move(s);
      ++result->upserted;
      ++result->chunks;
      ctx.usage.documents_written += 1;
    }
    return Status::Ok();
  }
  StatusOr<StoredDocument> GetDocument(const std::string& id) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = docs_.find(id);
    if (it == docs_.end()) return NotFound("document '" + id + "' not found", "not_found");
    return it->second;
  }
  StatusOr<std::vector<StoredDocument>> GetDocuments(const std::vector<std::string>& ids,
                                                     std::vector<std::string>* missing) const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<StoredDocument> out;
    for (const auto& id : ids) {
      auto it = docs_.find(id);
      if (it == docs_.end()) {
        missing->push_back(id);
      } else {
        out.push_back(it->second);
      }
    }
    return out;
  }
  // The map is in id order, as the store is.
  StatusOr<DocumentPage> ListDocuments(const RequestContext& ctx, const DocumentListRequest& request) const override {
    std::lock_guard<std::mutex> lock(mu_);
    seen.Note(ctx);
    DocumentPage page;
    for (auto it = docs_.upper_bound(request.after); it != docs_.end(); ++it) {
      if (page.documents.size() == request.limit) {
        page.next = page.documents.back().id;
        break;
      }
      ++page.scanned;
      if (request.filter.empty() || request.filter.Matches(it->second.metadata)) page.documents.push_back(it->second);
    }
    return page;
  }
  Status DeleteDocument(const RequestContext& ctx, const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen.Note(ctx);
    if (docs_.erase(id) == 0) return NotFound("document '" + id + "' not found", "not_found");
    return Status::Ok();
  }
  StatusOr<QueryResult> Query(const RequestContext& ctx, const QueryRequest& request) const override {
    if (on_query) on_query(request);  // outside the lock: it may block (admission tests)
    std::lock_guard<std::mutex> lock(mu_);
    seen.Note(ctx);
    last_query = request;
    if (!fail_with.ok()) return fail_with;
    QueryResult r;
    r.mode = request.mode;
    for (const auto& [id, d] : docs_) {
      if (d.text.find(request.text) == std::string::npos || r.hits.size() >= request.k) continue;
      r.hits.push_back(QueryHit{id, 0, d.text, 1.0f, d.metadata, ""});
    }
    ctx.usage.chunks_scored += static_cast<int64_t>(docs_.size());
    return r;
  }
  CollectionInfo Describe() const override {
    std::lock_guard<std::mutex> lock(mu_);
    CollectionInfo info;
    info.name = name_;
    info.config = config_;
    info.embedder_available = true;
    info.documents = docs_.size();
    info.chunks = docs_.size();
    info.shards = 1;
    info.index_type = "flat";
    return info;
  }
  ShardsReport DescribeShards() const override { return {}; }

  // Test controls and observations (under mu_ while the API runs).
  mutable SeenContext seen;
  // Called first by every Query(), outside the fake's lock. Set before requests run.
  std::function<void(const QueryRequest&)> on_query;
  mutable QueryRequest last_query;
  Status fail_with = Status::Ok();  // returned by Upsert and Query when set

 private:
  const std::string name_;
  const CollectionConfig config_;
  std::unique_ptr<Analyzer> analyzer_;
  mutable std::mutex mu_;
  std::map<std::string, StoredDocument> docs_;
};

class FakeCatalog : public CollectionCatalog {
 public:
  StatusOr<std::shared_ptr<CollectionHandle>> Create(const std::string& tenant, const std::string& name,
                                                     const CollectionConfig& config,
                                                     const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen.Note(ctx);
    auto& slot = collections_[{tenant, name}];
    if (slot != nullptr) return AlreadyExists("collection '" + name + "' already exists", "collection_exists");
    slot = std::make_shared<FakeCollection>(name, config);
    return std::shared_ptr<CollectionHandle>(slot);
  }
  StatusOr<std::shared_ptr<CollectionHandle>> Find(const std::string& tenant, const std::string& name) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = collections_.find({tenant, name});
    if (it == collections_.end()) return NotFound("collection '" + name + "' not found", "collection_not_found");
    return std::shared_ptr<CollectionHandle>(it->second);
  }
  Status Drop(const std::string& tenant, const std::string& name, const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen.Note(ctx);
    if (collections_.erase({tenant, name}) == 0)
      return NotFound("collection '" + name + "' not found", "collection_not_found");
    return Status::Ok();
  }
  std::vector<std::shared_ptr<CollectionHandle>> List(const std::string& tenant) const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::shared_ptr<CollectionHandle>> out;
    for (const auto& [key, c] : collections_)
      if (key.first == tenant) out.push_back(c);
    return out;
  }
  // The fake behind a handle the API was given (null when there is none).
  std::shared_ptr<FakeCollection> Get(const std::string& tenant, const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = collections_.find({tenant, name});
    return it == collections_.end() ? nullptr : it->second;
  }

  mutable SeenContext seen;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<FakeCollection>> collections_;
};

class FakeSessions : public SessionService {
 public:
  StatusOr<SessionTurnList> SessionTurns(const std::string& session, const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = turns_.find({ctx.tenant, session});
    if (it == turns_.end()) return NotFound("session '" + session + "' not found", "session_not_found");
    return it->second;
  }
  StatusOr<size_t> AppendTurn(const std::string& session, const SessionTurn& turn, int64_t ttl_s,
                              const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_ttl_s = ttl_s;
    auto& turns = turns_[{ctx.tenant, session}];
    turns.push_back(std::make_shared<const SessionTurn>(turn));
    return turns.size();
  }
  Status DeleteSession(const std::string& session, const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (turns_.erase({ctx.tenant, session}) == 0)
      return NotFound("session '" + session + "' not found", "session_not_found");
    return Status::Ok();
  }
  int64_t last_ttl_s = 0;

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, SessionTurnList> turns_;
};

// Exact-prompt matches only (no embedding): enough to see the API's codecs and scoping.
class FakeLlmCache : public LlmCacheService {
 public:
  StatusOr<CacheSettings> CacheConfigure(const std::string& ns, const CacheSettingsUpdate& update,
                                         const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    CacheSettings& s = namespaces_[{ctx.tenant, ns}].settings;
    if (update.embedder) s.embedder = *update.embedder;
    if (update.threshold) s.threshold = *update.threshold;
    if (update.ttl_s) s.ttl_s = *update.ttl_s;
    return s;
  }
  StatusOr<CacheNamespaceInfo> CacheDescribe(const std::string& ns, const RequestContext& ctx) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = namespaces_.find({ctx.tenant, ns});
    if (it == namespaces_.end()) return NotFound("cache namespace '" + ns + "' not found", "namespace_not_found");
    CacheNamespaceInfo info;
    info.settings = it->second.settings;
    info.entries = it->second.entries.size();
    return info;
  }
  StatusOr<std::string> CacheStore(const std::string& ns, const CacheStoreRequest& request,
                                   const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = namespaces_.find({ctx.tenant, ns});
    if (it == namespaces_.end()) return NotFound("cache namespace '" + ns + "' not found", "namespace_not_found");
    const std::string id = "e" + std::to_string(++next_id_);
    it->second.entries[id] = request;
    return id;
  }
  StatusOr<contextd::CacheLookup> CacheLookup(const std::string& ns, const CacheLookupRequest& request,
                                              const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = namespaces_.find({ctx.tenant, ns});
    if (it == namespaces_.end()) return NotFound("cache namespace '" + ns + "' not found", "namespace_not_found");
    contextd::CacheLookup out;
    for (const auto& [id, e] : it->second.entries) {
      if (e.prompt != request.prompt || e.scope.Dump() != request.scope.Dump()) continue;
      out = {true, id, e.response, 1.0f, true, {}, {}};
    }
    return out;
  }
  // A verdict only (no embedding): the observation is counted, the entry's floor raised
  // to 1 when it was wrong.
  StatusOr<CacheFeedbackResult> CacheFeedback(const std::string& ns, const CacheFeedbackRequest& request,
                                              const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = namespaces_.find({ctx.tenant, ns});
    if (it == namespaces_.end()) return NotFound("cache namespace '" + ns + "' not found", "namespace_not_found");
    if (it->second.entries.count(request.id) == 0) return NotFound("no entry '" + request.id + "'", "entry_not_found");
    CacheFeedbackResult r;
    r.observed = {request.id, 1.0f, 1.0f, request.correct.value_or(true)};
    r.state.observations = ++it->second.feedback;
    r.state.entry_floor = r.observed.correct ? 0.0f : 1.0f;
    return r;
  }
  StatusOr<size_t> CacheDelete(const std::string& ns, const std::map<std::string, std::string>& scope_fields,
                               const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_delete_scope = scope_fields;
    auto it = namespaces_.find({ctx.tenant, ns});
    if (it == namespaces_.end()) return NotFound("cache namespace '" + ns + "' not found", "namespace_not_found");
    const size_t n = it->second.entries.size();
    it->second.entries.clear();
    return n;
  }
  Status CacheDeleteEntry(const std::string& ns, const std::string& id, const RequestContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = namespaces_.find({ctx.tenant, ns});
    if (it == namespaces_.end() || it->second.entries.erase(id) == 0)
      return NotFound("entry '" + id + "' not found", "entry_not_found");
    return Status::Ok();
  }
  std::map<std::string, std::string> last_delete_scope;

 private:
  struct Namespace {
    CacheSettings settings;
    std::map<std::string, CacheStoreRequest> entries;
    size_t feedback = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Namespace> namespaces_;
  int next_id_ = 0;
};

// "hash" (256-d, in process) and nothing else.
class FakeEmbedders : public EmbedderCatalog {
 public:
  StatusOr<std::shared_ptr<const Embedder>> Resolve(const std::string& name) const override {
    if (name == "hash") return hash_;
    return InvalidArgument("unknown embedder '" + name + "'", "unknown_embedder");
  }
  std::shared_ptr<const Embedder> ByModel(const std::string& model) const override {
    return model == hash_->model() ? hash_ : nullptr;
  }
  std::vector<std::pair<std::string, std::shared_ptr<const Embedder>>> List() const override {
    return {{"hash", hash_}};
  }
  const std::string& default_name() const override { return default_; }

 private:
  std::shared_ptr<const Embedder> hash_ = std::make_shared<HashEmbedder>(256);
  std::string default_ = "hash";
};

// Applies governance changes straight to its registry (no log).
class FakeGovernance : public GovernanceService {
 public:
  const AuthRegistry& auth() const override { return auth_; }
  Status PutTenant(const TenantRecord& tenant, const RequestContext&) override {
    auth_.PutTenant(tenant);
    return Status::Ok();
  }
  Status DeleteTenant(const std::string& id, const RequestContext&) override {
    auth_.DeleteTenant(id);
    return Status::Ok();
  }
  Status PutKey(const KeyRecord& key, const RequestContext&) override {
    auth_.PutKey(key);
    return Status::Ok();
  }
  Status DeleteKey(const std::string& id, const RequestContext&) override {
    auth_.DeleteKey(id);
    return Status::Ok();
  }

 private:
  AuthRegistry auth_;
};

class FakeReplica : public ReplicaState {
 public:
  uint64_t applied_sequence() const override { return applied.load(); }
  bool WaitForApplied(uint64_t seq, std::chrono::milliseconds) const override { return applied.load() >= seq; }
  std::string_view storage_state() const override { return storage; }
  StatusOr<Digests> Digest() const override { return digests; }
  StatusOr<CheckpointInfo> Checkpoint() const override { return Unavailable("the fake replica has no databases"); }
  std::atomic<uint64_t> applied{0};
  Digests digests;
  std::string storage = "ok";
};

// Every fake, wired as the API's backends.
struct FakeBackends {
  FakeCatalog collections;
  FakeSessions sessions;
  FakeLlmCache llm_cache;
  FakeEmbedders embedders;
  FakeGovernance governance;
  FakeReplica replica;
  ApiBackends Wire() {
    return ApiBackends{&collections, &sessions, &llm_cache, &embedders, &governance, &replica, nullptr};
  }
};

}  // namespace contextd
