#include "engine/engine.h"

#include <atomic>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/memory.h"

namespace contextd {
namespace {

// Which graphs of `c` link their chunks: as `router` says; on a cluster node before its
// router is set (starting, or catching up), none yet (Collection::DeferLinking).
void RouteIndexing(Collection& c, ShardRouter* router, bool cluster) {
  if (router == nullptr && cluster) {
    c.DeferLinking();
  } else {
    c.set_router(router);
  }
}

}  // namespace

Engine::~Engine() {
  if (metrics_ != nullptr) metrics_->RemoveCollector(collector_id_);
  // Splitters propose to the log: stopped first. Then a replicated log, which applies on
  // its own thread, before the collections go.
  for (const auto& c : AllCollections()) c->StopSplits();
  log_.reset();
}

StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options, MetricsRegistry* metrics) {
  CTX_ASSIGN_OR_RETURN(EngineParts parts, OpenEngineParts(options, metrics));
  return Open(options, std::move(parts), metrics);
}

StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options, EngineParts parts,
                                               MetricsRegistry* metrics) {
  if (parts.store == nullptr || parts.embedders == nullptr || parts.sessions == nullptr || parts.llm_cache == nullptr) {
    return InvalidArgument("Engine::Open needs a store, an embedder registry, a session store and an LLM cache");
  }
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  e->store_ = std::move(parts.store);
  e->embedders_ = std::move(parts.embedders);
  e->llm_cache_ = std::move(parts.llm_cache);
  e->sessions_ = std::move(parts.sessions);
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir + "/graphs", ec);
  CTX_RETURN_IF_ERROR(e->store_->ScanAuth([&](char kind, std::string_view id, std::string_view value) {
    auto j = ParseJson(value);
    if (!j.ok()) return;
    if (kind == 't') {
      if (auto t = TenantRecord::FromJson(*j); t.ok()) e->auth_.PutTenant(std::move(t).value());
    } else if (kind == 'k') {
      if (auto k = KeyRecord::FromJson(*j); k.ok()) e->auth_.PutKey(std::move(k).value());
    }
  }));
  CTX_ASSIGN_OR_RETURN(uint64_t applied, e->store_->AppliedSequence());
  // Session turns record their sequence with the session (their own database) first.
  applied = std::max(applied, e->sessions_->max_sequence());
  e->applied_ = std::make_unique<AppliedSequence>(applied);
  if (options.make_log) {
    // The replicated log is what makes a write durable; applying it here needs no fsync
    // (a lost tail is applied again from the log's copy).
    e->store_->set_sync_writes(false);
    CTX_ASSIGN_OR_RETURN(e->log_, options.make_log(e.get()));
  } else {
    e->log_ = std::make_unique<LocalUpdateLog>(e.get(), applied, options.on_commit);
  }
  // Read before anything is written: saved graphs are valid only at this exact state.
  const uint64_t sequence = e->store_->LatestSequence();
  CTX_ASSIGN_OR_RETURN(auto records, e->store_->ListCollections());
  for (auto& r : records) {
    CTX_ASSIGN_OR_RETURN(Json stored, ParseJson(r.config));
    CTX_ASSIGN_OR_RETURN(CollectionConfig config, CollectionConfig::FromStored(stored));
    std::shared_ptr<const Embedder> embedder;
    if (config.embedder != "none") {
      embedder = e->embedders_->ByModel(config.model);
      if (embedder == nullptr) {
        spdlog::warn("collection {}: embedding model {} is not loaded; text queries and writes will fail", r.name,
                     config.model);
      }
    }
    auto c = std::make_shared<Collection>(r.tenant, r.name, r.id, config, embedder, e->store_.get(), e->log_.get(),
                                          options.clock, e->VectorDir());
    RouteIndexing(*c, nullptr, options.make_log != nullptr);  // no router yet
    CTX_RETURN_IF_ERROR(c->Load(e->GraphPath(r.id), sequence, applied));
    spdlog::info("collection {}: loaded {} documents, {} chunks; graph {}", r.name, c->document_count(),
                 c->chunk_count(), c->graph_source());
    // Graphs saved with chunks stored but not linked (partial indexing) are linked now on a
    // single node; in a cluster the shard router says which (Engine::RefreshShardIndexing).
    if (!options.make_log) c->RefreshIndexing();
    MutexLock lock(&e->mu_);
    e->collections_[{r.tenant, r.name}] = std::move(c);
  }
  CTX_RETURN_IF_ERROR(e->log_->Start());
  // Splits the layout has that were not built before the last stop, and shards a bulk
  // load (or an older version, which kept no layout) left past their limit.
  for (const auto& c : e->AllCollections()) c->CheckShards();
  e->metrics_ = metrics;
  if (metrics != nullptr) {
    Engine* self = e.get();
    e->collector_id_ = metrics->AddCollector([self](std::string* out) { self->RenderMetrics(out); });
  }
  return e;
}

StatusOr<std::shared_ptr<Collection>> Engine::CreateCollection(const std::string& tenant, const std::string& name,
                                                               const CollectionConfig& config,
                                                               const RequestContext& ctx) {
  CTX_RETURN_IF_ERROR(ValidateCollectionName(name));
  if (GetCollection(tenant, name).ok()) {
    return AlreadyExists("collection '" + name + "' already exists", "collection_exists");
  }
  Mutation m = NewMutation(MutationKind::kCreateCollection, tenant);
  m.collection = name;
  m.config = config.ToJson().Dump();
  CTX_RETURN_IF_ERROR(Commit(ctx, std::move(m)).status());
  return GetCollection(tenant, name);
}

StatusOr<std::shared_ptr<CollectionHandle>> Engine::Create(const std::string& tenant, const std::string& name,
                                                           const CollectionConfig& config, const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, CreateCollection(tenant, name, config, ctx));
  return std::shared_ptr<CollectionHandle>(std::move(c));
}

StatusOr<std::shared_ptr<CollectionHandle>> Engine::Find(const std::string& tenant, const std::string& name) const {
  CTX_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, GetCollection(tenant, name));
  return std::shared_ptr<CollectionHandle>(std::move(c));
}

std::vector<std::shared_ptr<CollectionHandle>> Engine::List(const std::string& tenant) const {
  std::vector<std::shared_ptr<CollectionHandle>> out;
  for (auto& c : ListCollections(tenant)) out.push_back(std::move(c));
  return out;
}

StatusOr<std::shared_ptr<Collection>> Engine::GetCollection(const std::string& tenant, const std::string& name) const {
  MutexLock lock(&mu_);
  auto it = collections_.find({tenant, name});
  if (it == collections_.end()) return NotFound("collection '" + name + "' not found", "collection_not_found");
  return it->second;
}

Status Engine::DropCollection(const std::string& tenant, const std::string& name, const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(auto c, GetCollection(tenant, name));
  Mutation m = NewMutation(MutationKind::kDropCollection, tenant);
  m.collection = name;
  m.collection_id = c->id();
  return Commit(ctx, std::move(m)).status();
}

StatusOr<ApplyResult> Engine::Commit(const RequestContext& ctx, Mutation m) {
  ApplyResult applied;
  CTX_RETURN_IF_ERROR(log_->Commit(ctx, &m, &applied));
  return applied;
}

Status Engine::Apply(Mutation m, ApplyResult* result) {
  ReaderLock checkpointing(&checkpoint_mu_);
  const uint64_t sequence = m.sequence;
  if (!applied_->Begin(sequence)) return Status::Ok();  // a repeat: already applied
  Status st = ApplyNew(std::move(m), result);
  applied_->Finish(sequence, /*applied=*/st.ok() || IsRejection(st));
  return st;
}

StatusOr<uint64_t> Engine::SyncApplied() {
  // Read first: what the sync then covers is at least this.
  const uint64_t applied = applied_->value();
  CTX_RETURN_IF_ERROR(store_->SyncWal());
  return applied;
}

void Engine::Skip(uint64_t sequence) {
  if (applied_->Begin(sequence)) applied_->Finish(sequence);
}

Status Engine::ApplyNew(Mutation m, ApplyResult* result) {
  switch (m.kind) {
    case MutationKind::kCreateCollection:
      return ApplyCreate(m);
    case MutationKind::kDropCollection:
      return ApplyDrop(m);
    case MutationKind::kUpsertDocuments:
    case MutationKind::kDeleteDocument:
    case MutationKind::kSplitShard:
    case MutationKind::kShardUnsplittable: {
      CTX_ASSIGN_OR_RETURN(auto c, GetCollection(m.tenant, m.collection));
      return c->Apply(std::move(m), result);
    }
    case MutationKind::kAppendTurn:
    case MutationKind::kDeleteSession:
      return ApplySession(m, result);
    case MutationKind::kCacheConfigure:
    case MutationKind::kCacheStore:
    case MutationKind::kCacheDelete:
    case MutationKind::kCacheFeedback:
      return ApplyCache(std::move(m), result);
    case MutationKind::kTenantPut:
    case MutationKind::kTenantDelete:
    case MutationKind::kKeyPut:
    case MutationKind::kKeyDelete:
      return ApplyAuth(m);
  }
  return InvalidArgument("unknown mutation kind", "invalid_mutation");
}

StatusOr<std::string> Engine::TenantScoped(const RequestContext& ctx, const std::string& name) {
  if (name.find('/') != std::string::npos) return InvalidArgument("names may not contain '/'", "invalid_name");
  return ctx.tenant + "/" + name;
}

StatusOr<SessionTurnList> Engine::SessionTurns(const std::string& session, const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::string stored, TenantScoped(ctx, session));
  return sessions_->Turns(stored);
}

StatusOr<size_t> Engine::AppendTurn(const std::string& user_session, const SessionTurn& turn, int64_t ttl_s,
                                    const RequestContext& ctx) {
  CTX_RETURN_IF_ERROR(SessionStore::ValidateTurn(user_session, turn));
  CTX_ASSIGN_OR_RETURN(std::string session, TenantScoped(ctx, user_session));
  Mutation m = NewMutation(MutationKind::kAppendTurn, ctx.tenant);
  m.session = session;
  m.role = turn.role;
  m.content = turn.content;
  m.at_ms = turn.at_ms != 0 ? turn.at_ms : options_.clock->WallMillis();
  m.ttl_s = ttl_s;
  CTX_ASSIGN_OR_RETURN(ApplyResult applied, Commit(ctx, std::move(m)));
  return applied.session_turns;
}

Status Engine::DeleteSession(const std::string& user_session, const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::string session, TenantScoped(ctx, user_session));
  CTX_RETURN_IF_ERROR(sessions_->Turns(session).status());  // NotFound before it is logged
  Mutation m = NewMutation(MutationKind::kDeleteSession, ctx.tenant);
  m.session = session;
  return Commit(ctx, std::move(m)).status();
}

Status Engine::ApplySession(const Mutation& m, ApplyResult* result) {
  // The sessions' database shares the disk: it stops at the same flood mark.
  CTX_RETURN_IF_ERROR(store_->CheckSpace(m.content.size() + 256));
  if (m.kind == MutationKind::kAppendTurn) {
    CTX_ASSIGN_OR_RETURN(result->session_turns,
                         sessions_->Append(m.session, {m.role, m.content, m.at_ms}, m.ttl_s, m.sequence));
  } else {
    CTX_RETURN_IF_ERROR(sessions_->Delete(m.session));
  }
  // The session's own record (synced) is what makes a repeat harmless.
  return RecordSequence(m.sequence);
}

Status Engine::RecordSequence(uint64_t sequence) {
  // The main store keeps the highest sequence applied, which restarts count from.
  WriteBatch batch;
  batch.RecordSequence(sequence);
  return store_->Write(&batch, /*sync=*/false);
}

StatusOr<CacheSettings> Engine::CacheConfigure(const std::string& user_ns, const CacheSettingsUpdate& update,
                                               const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::string ns, TenantScoped(ctx, user_ns));
  CTX_ASSIGN_OR_RETURN(CacheSettings settings, llm_cache_->PrepareConfigure(ns, update));
  Mutation m = NewMutation(MutationKind::kCacheConfigure, ctx.tenant);
  m.collection = ns;
  m.config = settings.ToJson().Dump();
  CTX_RETURN_IF_ERROR(Commit(ctx, std::move(m)).status());
  return settings;
}

StatusOr<CacheNamespaceInfo> Engine::CacheDescribe(const std::string& user_ns, const RequestContext& ctx) const {
  CTX_ASSIGN_OR_RETURN(std::string ns, TenantScoped(ctx, user_ns));
  return llm_cache_->Describe(ns);
}

StatusOr<contextd::CacheLookup> Engine::CacheLookup(const std::string& user_ns, const CacheLookupRequest& request,
                                                    const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::string ns, TenantScoped(ctx, user_ns));
  return llm_cache_->Lookup(ns, request);
}

StatusOr<std::string> Engine::CacheStore(const std::string& user_ns, const CacheStoreRequest& request,
                                         const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::string ns, TenantScoped(ctx, user_ns));
  CTX_ASSIGN_OR_RETURN(CacheEntryWrite e, llm_cache_->PrepareStore(ns, request));
  Mutation m = NewMutation(MutationKind::kCacheStore, ctx.tenant);
  m.collection = ns;
  m.doc_id = e.id;
  m.content = std::move(e.prompt);
  Json rest = Json::MakeObject();
  rest["scope"] = e.scope_key;
  rest["response"] = std::move(e.response);
  rest["expires_ms"] = e.expires_ms;
  m.config = rest.Dump();
  m.dim = static_cast<uint32_t>(e.vector.size());
  m.vectors = std::move(e.vector);
  CTX_RETURN_IF_ERROR(Commit(ctx, std::move(m)).status());
  return e.id;
}

StatusOr<size_t> Engine::CacheDelete(const std::string& user_ns, const std::map<std::string, std::string>& scope_fields,
                                     const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::string ns, TenantScoped(ctx, user_ns));
  CTX_ASSIGN_OR_RETURN(auto ids, llm_cache_->MatchScope(ns, scope_fields));
  return CommitCacheDelete(ns, std::move(ids), ctx);
}

StatusOr<CacheFeedbackResult> Engine::CacheFeedback(const std::string& user_ns, const CacheFeedbackRequest& request,
                                                    const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::string ns, TenantScoped(ctx, user_ns));
  CTX_ASSIGN_OR_RETURN(CacheFeedbackWrite w, llm_cache_->PrepareFeedback(ns, request));
  Mutation m = NewMutation(MutationKind::kCacheFeedback, ctx.tenant);
  m.collection = ns;
  m.doc_id = w.id;
  Json rest = Json::MakeObject();
  rest["similarity"] = w.similarity;
  rest["confidence"] = w.confidence;
  rest["correct"] = w.correct;
  m.config = rest.Dump();
  CTX_RETURN_IF_ERROR(Commit(ctx, std::move(m)).status());
  CTX_ASSIGN_OR_RETURN(CacheFeedbackState state, llm_cache_->FeedbackState(ns, w.id));
  return CacheFeedbackResult{std::move(w), state};
}

Status Engine::CacheDeleteEntry(const std::string& user_ns, const std::string& id, const RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(std::string ns, TenantScoped(ctx, user_ns));
  CTX_RETURN_IF_ERROR(llm_cache_->CheckEntry(ns, id));
  return CommitCacheDelete(ns, {id}, ctx).status();
}

StatusOr<size_t> Engine::CommitCacheDelete(const std::string& ns, std::vector<std::string> ids,
                                           const RequestContext& ctx) {
  if (ids.empty()) return size_t{0};
  Mutation m = NewMutation(MutationKind::kCacheDelete, ctx.tenant);
  m.collection = ns;
  m.ids = std::move(ids);
  CTX_ASSIGN_OR_RETURN(ApplyResult applied, Commit(ctx, std::move(m)));
  return applied.cache_deleted;
}

Status Engine::ApplyCache(Mutation m, ApplyResult* result) {
  CTX_RETURN_IF_ERROR(store_->CheckSpace(m.content.size() + m.config.size() + m.vectors.size() * sizeof(float)));
  switch (m.kind) {
    case MutationKind::kCacheConfigure: {
      CTX_ASSIGN_OR_RETURN(Json stored, ParseJson(m.config));
      CTX_ASSIGN_OR_RETURN(CacheSettings settings, CacheSettings::FromStored(stored));
      CTX_RETURN_IF_ERROR(llm_cache_->ApplyConfigure(m.collection, settings));
      break;
    }
    case MutationKind::kCacheStore: {
      CTX_ASSIGN_OR_RETURN(Json rest, ParseJson(m.config));
      const Json *scope = rest.Find("scope"), *response = rest.Find("response"), *expires = rest.Find("expires_ms");
      if (scope == nullptr || !scope->is_string() || response == nullptr || expires == nullptr ||
          !expires->is_number()) {
        return InvalidArgument("cache store mutation without scope, response or expires_ms", "invalid_mutation");
      }
      CacheEntryWrite e{m.doc_id,  std::move(m.content), scope->as_string(),
                        *response, expires->as_int(),    std::move(m.vectors)};
      CTX_RETURN_IF_ERROR(llm_cache_->ApplyStore(m.collection, std::move(e)));
      break;
    }
    case MutationKind::kCacheFeedback: {
      CTX_ASSIGN_OR_RETURN(Json rest, ParseJson(m.config));
      const Json *similarity = rest.Find("similarity"), *confidence = rest.Find("confidence"),
                 *correct = rest.Find("correct");
      if (similarity == nullptr || !similarity->is_number() || confidence == nullptr || !confidence->is_number() ||
          correct == nullptr || !correct->is_bool()) {
        return InvalidArgument("cache feedback mutation without similarity, confidence or correct", "invalid_mutation");
      }
      CacheFeedbackWrite w{m.doc_id, static_cast<float>(similarity->as_double()),
                           static_cast<float>(confidence->as_double()), correct->as_bool()};
      CTX_RETURN_IF_ERROR(llm_cache_->ApplyFeedback(m.collection, w));
      break;
    }
    default: {
      CTX_ASSIGN_OR_RETURN(result->cache_deleted, llm_cache_->ApplyDelete(m.collection, m.ids));
      break;
    }
  }
  return RecordSequence(m.sequence);
}

Status Engine::PutTenant(const TenantRecord& tenant, const RequestContext& ctx) {
  CTX_RETURN_IF_ERROR(ValidateTenantId(tenant.id));
  Mutation m = NewMutation(MutationKind::kTenantPut, tenant.id);
  m.config = tenant.ToJson().Dump();
  return Commit(ctx, std::move(m)).status();
}

Status Engine::DeleteTenant(const std::string& id, const RequestContext& ctx) {
  if (!auth_.Tenant(id)) return NotFound("tenant '" + id + "' not found", "tenant_not_found");
  if (!ListCollections(id).empty()) {
    return FailedPrecondition("tenant '" + id + "' still holds collections; drop them first", "tenant_not_empty");
  }
  Mutation m = NewMutation(MutationKind::kTenantDelete, id);
  m.doc_id = id;
  return Commit(ctx, std::move(m)).status();
}

Status Engine::PutKey(const KeyRecord& key, const RequestContext& ctx) {
  if (key.tenant != kDefaultTenant && !auth_.Tenant(key.tenant))
    return NotFound("tenant '" + key.tenant + "' not found", "tenant_not_found");
  Mutation m = NewMutation(MutationKind::kKeyPut, key.tenant);
  m.config = key.ToJson(/*with_hash=*/true).Dump();
  return Commit(ctx, std::move(m)).status();
}

Status Engine::DeleteKey(const std::string& id, const RequestContext& ctx) {
  auto key = auth_.Key(id);
  if (!key) return NotFound("API key '" + id + "' not found", "key_not_found");
  Mutation m = NewMutation(MutationKind::kKeyDelete, key->tenant);
  m.doc_id = id;
  return Commit(ctx, std::move(m)).status();
}

Status Engine::ApplyAuth(const Mutation& m) {
  WriteBatch batch;
  switch (m.kind) {
    case MutationKind::kTenantPut: {
      CTX_ASSIGN_OR_RETURN(Json j, ParseJson(m.config));
      CTX_ASSIGN_OR_RETURN(TenantRecord t, TenantRecord::FromJson(j));
      batch.PutAuth('t', t.id, m.config);
      batch.RecordSequence(m.sequence);
      CTX_RETURN_IF_ERROR(store_->Write(&batch));
      auth_.PutTenant(std::move(t));
      return Status::Ok();
    }
    case MutationKind::kTenantDelete: {
      if (!auth_.Tenant(m.doc_id)) return NotFound("tenant '" + m.doc_id + "' not found", "tenant_not_found");
      batch.DeleteAuth('t', m.doc_id);
      for (const KeyRecord& k : auth_.Keys(m.doc_id)) batch.DeleteAuth('k', k.id);
      batch.RecordSequence(m.sequence);
      CTX_RETURN_IF_ERROR(store_->Write(&batch));
      auth_.DeleteTenant(m.doc_id);
      return Status::Ok();
    }
    case MutationKind::kKeyPut: {
      CTX_ASSIGN_OR_RETURN(Json j, ParseJson(m.config));
      CTX_ASSIGN_OR_RETURN(KeyRecord k, KeyRecord::FromJson(j));
      // The default tenant always exists (it is everything's while auth is off).
      if (k.tenant != kDefaultTenant && !auth_.Tenant(k.tenant))
        return NotFound("tenant '" + k.tenant + "' not found", "tenant_not_found");
      batch.PutAuth('k', k.id, m.config);
      batch.RecordSequence(m.sequence);
      CTX_RETURN_IF_ERROR(store_->Write(&batch));
      auth_.PutKey(std::move(k));
      return Status::Ok();
    }
    default: {
      if (!auth_.Key(m.doc_id)) return NotFound("API key '" + m.doc_id + "' not found", "key_not_found");
      batch.DeleteAuth('k', m.doc_id);
      batch.RecordSequence(m.sequence);
      CTX_RETURN_IF_ERROR(store_->Write(&batch));
      auth_.DeleteKey(m.doc_id);
      return Status::Ok();
    }
  }
}

Status Engine::ApplyCreate(const Mutation& m) {
  CTX_ASSIGN_OR_RETURN(Json stored, ParseJson(m.config));
  CTX_ASSIGN_OR_RETURN(CollectionConfig config, CollectionConfig::FromStored(stored));
  std::shared_ptr<const Embedder> embedder;
  if (config.embedder != "none") embedder = embedders_->ByModel(config.model);
  // Held across the synced write: creation is rare and this keeps names unique.
  MutexLock lock(&mu_);
  if (collections_.count({m.tenant, m.collection})) {
    return AlreadyExists("collection '" + m.collection + "' already exists", "collection_exists");
  }
  // The create's sequence is the id: unique, never reused, the same on every replica.
  const uint64_t id = m.sequence;
  CTX_RETURN_IF_ERROR(store_->CreateCollection(m.tenant, m.collection, id, m.config));
  auto created = std::make_shared<Collection>(m.tenant, m.collection, id, config, embedder, store_.get(), log_.get(),
                                              options_.clock, VectorDir());
  if (abandon_indexing_ns_ != 0) created->AbandonIndexingAt(abandon_indexing_ns_);
  RouteIndexing(*created, router_, options_.make_log != nullptr);
  collections_[{m.tenant, m.collection}] = std::move(created);
  return Status::Ok();
}

Status Engine::ApplyDrop(const Mutation& m) {
  MutexLock lock(&mu_);
  auto it = collections_.find({m.tenant, m.collection});
  if (it == collections_.end() || it->second->id() != m.collection_id) {
    return NotFound("collection '" + m.collection + "' not found", "collection_not_found");
  }
  std::shared_ptr<Collection> c = it->second;
  // Waits for writes in flight, so none lands after the range delete below.
  c->MarkDropped();
  CTX_RETURN_IF_ERROR(store_->DropCollection(m.tenant, m.collection, c->id(), m.sequence));
  std::error_code ec;
  std::filesystem::remove(GraphPath(c->id()), ec);
  collections_.erase(it);
  return Status::Ok();
}

StatusOr<ReplicaState::Digests> Engine::Digest() const {
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Collection>> all;
  {
    MutexLock lock(&mu_);
    all = collections_;
  }
  std::map<std::pair<std::string, std::string>, std::pair<uint64_t, CollectionDigest>> out;
  for (const auto& [key, c] : all) {
    CTX_ASSIGN_OR_RETURN(CollectionDigest d, c->Digest());
    out[key] = {c->id(), d};
  }
  return out;
}

StatusOr<ReplicaState::CheckpointInfo> Engine::Checkpoint() const {
  static std::atomic<uint64_t> counter{0};
  CheckpointInfo out;
  out.dir = options_.data_dir + "/checkpoints/" + std::to_string(options_.clock->WallMillis()) + "-" +
            std::to_string(counter++);
  std::error_code ec;
  std::filesystem::create_directories(out.dir, ec);
  if (ec) return Internal("cannot create " + out.dir + ": " + ec.message(), "storage_error");
  Status st;
  {
    WriterLock no_applies(&checkpoint_mu_);
    out.sequence = applied_->value();
    st = store_->Checkpoint(out.dir + "/db");
    if (st.ok()) st = sessions_->Checkpoint(out.dir + "/sessions");
    if (st.ok()) st = llm_cache_->Checkpoint(out.dir + "/llm_cache");
  }
  if (!st.ok()) {
    std::filesystem::remove_all(out.dir, ec);
    return st;
  }
  return out;
}

std::string Engine::VectorDir() const { return options_.data_dir + "/graphs"; }

std::string Engine::GraphPath(uint64_t collection_id) const {
  return options_.data_dir + "/graphs/" + std::to_string(collection_id) + ".hnsw";
}

Status Engine::SaveGraphs() {
  MutexLock lock(&mu_);
  const uint64_t sequence = store_->LatestSequence();
  for (const auto& [key, c] : collections_) {
    CTX_RETURN_IF_ERROR(c->SaveGraph(GraphPath(c->id()), sequence));
  }
  return Status::Ok();
}

void Engine::AbandonIndexingAt(int64_t at_ns) {
  MutexLock lock(&mu_);
  abandon_indexing_ns_ = at_ns;
  for (const auto& [key, c] : collections_) c->AbandonIndexingAt(at_ns);
}

std::vector<std::shared_ptr<Collection>> Engine::ListCollections(const std::string& tenant) const {
  MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Collection>> out;
  for (const auto& [key, c] : collections_) {
    if (key.first == tenant) out.push_back(c);
  }
  return out;
}

std::vector<std::shared_ptr<Collection>> Engine::AllCollections() const {
  MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Collection>> all;
  for (const auto& [key, c] : collections_) all.push_back(c);
  return all;
}

std::vector<Engine::StoredBytes> Engine::StorageByCollection() const {
  const std::vector<std::shared_ptr<Collection>> all = AllCollections();
  std::vector<StoredBytes> out;
  for (const auto& c : all) out.push_back({c->tenant(), c->name(), store_->CollectionBytes(c->tenant(), c->id())});
  return out;
}

std::vector<Engine::CollectionShardIds> Engine::ShardsByCollection() const {
  std::vector<CollectionShardIds> out;
  for (const auto& c : AllCollections()) out.push_back({c->tenant(), c->name(), c->id(), c->ShardIds()});
  return out;
}

void Engine::RenderMetrics(std::string* out) const {
  const std::vector<std::shared_ptr<Collection>> all = AllCollections();
  auto family = [&](const char* name, const char* help, auto value) {
    // Prometheus's convention, which rate() and the client libraries rely on: a "_total"
    // is a counter (it only grows until a restart), anything else here a gauge.
    const bool counter = std::string_view(name).ends_with("_total");
    *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + (counter ? " counter\n" : " gauge\n");
    for (const auto& c : all) {
      *out += std::string(name) + RenderLabels({{"tenant", c->tenant()}, {"collection", c->name()}}) + " " +
              std::to_string(value(*c)) + "\n";
    }
  };
  family("contextd_collection_documents", "Documents per collection.",
         [](const Collection& c) { return c.document_count(); });
  family("contextd_collection_chunks", "Chunks per collection.", [](const Collection& c) { return c.chunk_count(); });
  family("contextd_collection_memory_bytes", "In-memory bytes of a collection's indexes and chunk text.",
         [](const Collection& c) { return c.memory_bytes(); });
  family("contextd_collection_mapped_bytes",
         "File-backed bytes a collection maps (an int8 graph's fp32 vectors): page cache the kernel may evict.",
         [](const Collection& c) { return c.mapped_bytes(); });
  family("contextd_collection_shards", "Topic shards per collection.",
         [](const Collection& c) { return c.shard_count(); });
  family("contextd_routing_queries_total", "Vector searches routed over two shards or more.",
         [](const Collection& c) { return c.routing_stats().queries; });
  family("contextd_routing_single_shard_total", "Routed searches that probed one shard (a clear winner).",
         [](const Collection& c) { return c.routing_stats().single_shard; });
  family("contextd_routing_shards_probed_total", "Shards probed by routed searches (divide by queries for the mean).",
         [](const Collection& c) { return c.routing_stats().shards_probed; });
  family("contextd_routing_widened_total", "Routed searches widened to every shard for want of results.",
         [](const Collection& c) { return c.routing_stats().widened; });
  *out +=
      "# HELP contextd_query_cache_requests_total Queries by how the query cache answered.\n"
      "# TYPE contextd_query_cache_requests_total counter\n";
  for (const auto& c : all) {
    const QueryCacheStats s = c->query_cache_stats();
    for (const auto& [result, n] :
         {std::pair<const char*, uint64_t>{"exact", s.exact_hits}, {"semantic", s.semantic_hits}, {"miss", s.misses}}) {
      *out += "contextd_query_cache_requests_total" +
              RenderLabels({{"tenant", c->tenant()}, {"collection", c->name()}, {"result", result}}) + " " +
              std::to_string(n) + "\n";
    }
  }
  family("contextd_query_cache_invalidated_total", "Cached query results dropped by writes.",
         [](const Collection& c) { return c.query_cache_stats().invalidated; });
  family("contextd_query_cache_verified_total", "Cache hits recomputed by sampled verification.",
         [](const Collection& c) { return c.query_cache_stats().verified; });
  family("contextd_query_cache_verify_mismatches_total",
         "Verified cache hits whose fresh top k differed (stale, or a semantic hit for another query).",
         [](const Collection& c) { return c.query_cache_stats().verify_mismatches; });
  *out +=
      "# HELP contextd_query_cache_tier_entries Cached query results by tier.\n"
      "# TYPE contextd_query_cache_tier_entries gauge\n";
  for (const auto& c : all) {
    const QueryCacheStats s = c->query_cache_stats();
    for (int t = 0; t < 3; ++t) {
      *out += "contextd_query_cache_tier_entries" +
              RenderLabels({{"tenant", c->tenant()}, {"collection", c->name()}, {"tier", QueryCacheTierName(t)}}) +
              " " + std::to_string(s.tier_entries[t]) + "\n";
    }
  }
  *out += "# HELP contextd_store_bytes Approximate bytes in RocksDB.\n# TYPE contextd_store_bytes gauge\n";
  *out += "contextd_store_bytes " + std::to_string(store_->ApproximateBytes()) + "\n";
  *out +=
      "# HELP contextd_store_memory_bytes RocksDB memtables and table readers in RAM.\n"
      "# TYPE contextd_store_memory_bytes gauge\n";
  *out += "contextd_store_memory_bytes " + std::to_string(store_->MemoryBytes()) + "\n";
  *out += "# HELP contextd_process_resident_bytes Resident memory of the process.\n";
  *out += "# TYPE contextd_process_resident_bytes gauge\n";
  *out += "contextd_process_resident_bytes " + std::to_string(ResidentBytes()) + "\n";
}

void Engine::SetShardRouter(ShardRouter* router) {
  MutexLock lock(&mu_);
  router_ = router;
  for (auto& [key, c] : collections_) c->set_router(router);
}

void Engine::RefreshShardIndexing() {
  std::vector<std::shared_ptr<Collection>> all;
  {
    MutexLock lock(&mu_);
    for (const auto& [key, c] : collections_) all.push_back(c);
  }
  for (const auto& c : all) c->RefreshIndexing();
}

StatusOr<ShardCandidates> Engine::AnswerShardQuery(const ShardQuery& q) const {
  RequestContext ctx(options_.clock);
  if (q.timeout_ms > 0) ctx.deadline_ns = options_.clock->NowNanos() + q.timeout_ms * 1000000;
  // At least as fresh as the asking node: it may have applied writes this node has not.
  if (q.read_after > applied_sequence() &&
      !WaitForApplied(q.read_after, std::chrono::milliseconds(q.timeout_ms > 0 ? q.timeout_ms : 5000))) {
    return DeadlineExceeded("this node has not applied sequence " + std::to_string(q.read_after) + " (it is at " +
                                std::to_string(applied_sequence()) + ")",
                            "apply_lagging");
  }
  CTX_ASSIGN_OR_RETURN(auto c, GetCollection(q.tenant, q.collection));
  if (c->id() != q.collection_id) {
    return NotFound("collection '" + q.collection + "' is not the one asked about (it was dropped and made again)",
                    "collection_not_found");
  }
  QueryMode mode = q.request.mode;
  return c->Candidates(ctx, q.request, q.vector_shards, q.keyword_shards, &mode);
}

}  // namespace contextd
