#include "cache/llm_cache.h"
#include "cache/llm_cache_rep.h"
#include "store/store.h"

#include "common/mutex.h"

#include "common/names.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <unordered_map>

#include "embed/cache_key.h"
#include "embed/embedder_registry.h"
#include "index/hnsw_index.h"
#include "index/slot_bitset.h"

namespace contextd {

using llm_cache_internal::ConfigKey;
using llm_cache_internal::EntryPrefix;
using llm_cache_internal::FloorPrefix;
using llm_cache_internal::NotFoundNs;

namespace {

// Checked as the float it is kept as: 1e-300 passes as a double but is 0 as a float, and a
// 0 once written would fail this check when the namespace is restored.
// A scope as a canonical string: members sorted by name, so {"a":1,"b":2} and
// {"b":2,"a":1} are one scope.
std::string CanonicalScope(const Json& scope) {
  Json::Object members = scope.as_object();
  std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return Json(std::move(members)).Dump();
}

std::string NewId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id;
  for (int half = 0; half < 2; ++half) {
    const uint64_t v = rng();
    for (int i = 0; i < 16; ++i) id.push_back(kHex[(v >> (i * 4)) & 15]);
  }
  return id;
}

// Candidates a semantic lookup verifies: enough that a refused nearest (a number changed)
// leaves the true paraphrase behind it in play.
constexpr size_t kCandidates = 4;

}  // namespace

LlmCache::LlmCache(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
LlmCache::~LlmCache() = default;

Status LlmCache::ValidateNamespace(const std::string& stored) {
  if (!IsTenantScopedName(stored, 64)) {
    return InvalidArgument("cache namespace names are 1 to 64 of A-Z a-z 0-9 _ -", "invalid_name");
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<LlmCache>> LlmCache::Open(const std::string& dir, const EmbedderRegistry* embedders,
                                                   const Clock* clock, MetricsRegistry* metrics, bool sync_writes) {
  auto rep = std::make_unique<Rep>();
  rep->sync_writes = sync_writes;
  rep->embedders = embedders;
  rep->clock = clock;
  rep->metrics = metrics;
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok()) return Internal("cannot open the LLM cache in " + dir + ": " + s.ToString(), "storage_error");
  rep->db.reset(db);
  std::unique_ptr<LlmCache> cache(new LlmCache(std::move(rep)));
  // Settings first, then entries, each namespace's in key order.
  std::unique_ptr<rocksdb::Iterator> it(cache->rep_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("n"); it->Valid() && it->key().starts_with("n"); it->Next()) {
    auto stored = ParseJson(it->value().ToString());
    if (!stored.ok()) continue;
    auto settings = CacheSettings::FromStored(*stored);
    const Status configured =
        settings.ok() ? cache->ApplyConfigure(it->key().ToString().substr(1), *settings) : settings.status();
    if (!configured.ok())
      return Internal("LLM cache namespace '" + it->key().ToString().substr(1) +
                      "' cannot be restored: " + configured.message());
  }
  const int64_t now = cache->rep_->NowMs();
  for (it->Seek("e"); it->Valid() && it->key().starts_with("e"); it->Next()) {
    const std::string key = it->key().ToString();
    const size_t nul = key.find('\0');
    Namespace* ns = nul == std::string::npos ? nullptr : cache->rep_->Find(key.substr(1, nul - 1));
    const std::string value = it->value().ToString();
    const size_t newline = value.find('\n');
    if (ns == nullptr || newline == std::string::npos) continue;
    auto header = ParseJson(std::string_view(value).substr(0, newline));
    size_t dim = 0;
    {
      ReaderLock lock(&ns->mu);
      dim = static_cast<size_t>(ns->embedder->dim());
    }
    if (!header.ok() || value.size() - newline - 1 != dim * sizeof(float)) continue;
    Namespace::Entry e;
    e.id = key.substr(nul + 1);
    e.prompt = header->Find("prompt")->as_string();
    e.scope_key = header->Find("scope")->as_string();
    e.response = *header->Find("response");
    e.expires_ms = header->Find("expires_ms")->as_int();
    if (e.expires_ms != 0 && e.expires_ms <= now) continue;  // expired while down
    std::vector<float> vec(dim);
    std::memcpy(vec.data(), value.data() + newline + 1, dim * sizeof(float));
    WriterLock lock(&ns->mu);
    ns->InsertLocked(std::move(e), vec.data());
  }
  // Feedback: each namespace's observations in arrival order, then the entries' floors.
  for (it->Seek("f"); it->Valid() && it->key().starts_with("f"); it->Next()) {
    const std::string key = it->key().ToString();
    const size_t nul = key.find('\0');
    Namespace* ns =
        nul == std::string::npos || key.size() != nul + 9 ? nullptr : cache->rep_->Find(key.substr(1, nul - 1));
    const std::string value = it->value().ToString();
    if (ns == nullptr || value.size() < 3 || (value[0] != '0' && value[0] != '1')) continue;
    auto confidence = ParseJson(std::string_view(value).substr(2));
    if (!confidence.ok() || !confidence->is_number()) continue;
    uint64_t seq = 0;
    for (size_t i = nul + 1; i < key.size(); ++i) seq = seq << 8 | static_cast<unsigned char>(key[i]);
    WriterLock lock(&ns->mu);
    ns->feedback.push_back({static_cast<float>(confidence->as_double()), value[0] == '1'});
    ns->feedback_next = seq + 1;
  }
  {
    ReaderLock map_lock(&cache->rep_->mu);
    for (auto& [name, ns] : cache->rep_->namespaces) {
      WriterLock lock(&ns->mu);
      ns->RelearnLocked();
    }
  }
  for (it->Seek("t"); it->Valid() && it->key().starts_with("t"); it->Next()) {
    const std::string key = it->key().ToString();
    const size_t nul = key.find('\0');
    Namespace* ns = nul == std::string::npos ? nullptr : cache->rep_->Find(key.substr(1, nul - 1));
    auto floor = ParseJson(it->value().ToString());
    if (ns == nullptr || !floor.ok() || !floor->is_number()) continue;
    WriterLock lock(&ns->mu);
    if (auto e = ns->by_id.find(key.substr(nul + 1)); e != ns->by_id.end())
      ns->entries[e->second].floor = static_cast<float>(floor->as_double());
  }
  return cache;
}

Json CacheSettings::ToJson() const {
  Json j = Json::MakeObject();
  j["embedder"] = embedder;
  j["threshold"] = threshold;
  j["ttl_s"] = ttl_s;
  j["verify"] = verify.ToJson();
  return j;
}

StatusOr<CacheSettings> CacheSettings::FromStored(const Json& stored) {
  const Json *e = stored.Find("embedder"), *t = stored.Find("threshold"), *ttl = stored.Find("ttl_s");
  if (e == nullptr || !e->is_string() || t == nullptr || !t->is_number() || ttl == nullptr || !ttl->is_number())
    return InvalidArgument("cache settings need embedder, threshold and ttl_s", "invalid_mutation");
  CacheSettings s{e->as_string(), static_cast<float>(t->as_double()), ttl->as_int(), VerifyPolicy()};
  // Namespaces stored before verification existed get the default policy.
  if (const Json* v = stored.Find("verify")) {
    CTX_ASSIGN_OR_RETURN(s.verify, VerifyPolicy::FromJson(*v, VerifyPolicy()));
  }
  // Versions before 2026-11-24 checked the threshold as a double and could store a 0: that
  // namespace asked for "any similarity", which the smallest positive threshold keeps.
  if (!(s.threshold > 0)) s.threshold = std::numeric_limits<float>::denorm_min();
  return s;
}

StatusOr<CacheSettings> LlmCache::PrepareConfigure(const std::string& ns, const CacheSettingsUpdate& update) const {
  CTX_RETURN_IF_ERROR(ValidateNamespace(ns));
  CacheSettings settings;
  if (Namespace* existing = rep_->Find(ns); existing != nullptr) {
    ReaderLock lock(&existing->mu);
    settings = existing->Settings();
  }
  if (update.embedder) settings.embedder = *update.embedder;
  if (update.threshold) settings.threshold = *update.threshold;
  if (update.ttl_s) settings.ttl_s = *update.ttl_s;
  if (update.verify) {
    CTX_ASSIGN_OR_RETURN(settings.verify, VerifyPolicy::FromJson(*update.verify, settings.verify));
  }
  if (settings.embedder == "none") return InvalidArgument("a cache namespace needs an embedder", "invalid_value");
  CTX_RETURN_IF_ERROR(rep_->embedders->Resolve(settings.embedder).status());
  return settings;
}

Status LlmCache::ApplyConfigure(const std::string& ns, const CacheSettings& settings) {
  const std::string& embedder_name = settings.embedder;
  CTX_ASSIGN_OR_RETURN(auto embedder, rep_->embedders->Resolve(embedder_name));
  if (Namespace* existing = rep_->Find(ns); existing != nullptr) {
    WriterLock lock(&existing->mu);
    if (embedder_name != existing->embedder_name && existing->live + existing->reserved > 0)
      return FailedPrecondition("namespace '" + ns + "' holds entries embedded by '" + existing->embedder_name +
                                    "'; delete them before changing its embedder",
                                "embedder_change");
  }
  rocksdb::WriteBatch batch;
  batch.Put(ConfigKey(ns), settings.ToJson().Dump());
  CTX_RETURN_IF_ERROR(rep_->Write(&batch));
  WriterLock map_lock(&rep_->mu);
  auto& slot = rep_->namespaces[ns];
  if (slot == nullptr) {
    slot = std::make_unique<Namespace>();
    slot->name = ns;
  }
  WriterLock lock(&slot->mu);
  if (slot->graph == nullptr || slot->embedder_name != embedder_name)
    slot->graph = std::make_unique<HnswIndex>(embedder->dim(), Metric::kCosine);
  slot->embedder_name = embedder_name;
  slot->embedder = embedder;
  slot->threshold = settings.threshold;
  slot->ttl_s = settings.ttl_s;
  slot->verify = settings.verify;
  slot->RelearnLocked();
  return Status::Ok();
}

StatusOr<CacheSettings> LlmCache::Configure(const std::string& ns, const CacheSettingsUpdate& update) {
  CTX_ASSIGN_OR_RETURN(CacheSettings settings, PrepareConfigure(ns, update));
  CTX_RETURN_IF_ERROR(ApplyConfigure(ns, settings));
  return settings;
}

StatusOr<CacheNamespaceInfo> LlmCache::Describe(const std::string& ns) const {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  CacheNamespaceInfo info;
  {
    ReaderLock lock(&n->mu);
    info.settings = n->Settings();
    info.entries = n->live;
    info.scopes = n->scopes.size();
    info.dim = n->embedder->dim();
  }
  CTX_ASSIGN_OR_RETURN(info.feedback, FeedbackState(ns));
  return info;
}

StatusOr<CacheEntryWrite> LlmCache::PrepareStore(const std::string& ns, const CacheStoreRequest& request) const {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  if (request.prompt.empty()) return InvalidArgument("'prompt' must be a non-empty string", "missing_field");
  if (!request.scope.is_object())
    return InvalidArgument("'scope' must be an object of exact-match fields", "invalid_type");
  std::shared_ptr<const Embedder> embedder;
  int64_t ttl_s = 0;
  {
    ReaderLock lock(&n->mu);
    embedder = n->embedder;
    ttl_s = request.ttl_s.value_or(n->ttl_s);
  }

  CacheEntryWrite e;
  e.id = NewId();
  e.prompt = request.prompt;
  e.scope_key = CanonicalScope(request.scope);
  e.response = request.response;
  e.expires_ms = ttl_s > 0 ? rep_->NowMs() + ttl_s * 1000 : 0;
  e.vector.resize(static_cast<size_t>(embedder->dim()));
  CTX_RETURN_IF_ERROR(embedder->EmbedWith({e.prompt}, EmbedOptions{EmbedPriority::kBulk, 0}, e.vector.data()));
  return e;
}

Status LlmCache::ApplyStore(const std::string& ns, CacheEntryWrite w) {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  HnswIndex* graph;
  uint32_t slot;
  {
    WriterLock lock(&n->mu);
    if (n->by_id.count(w.id) > 0) return Status::Ok();  // stored already (a replay)
    if (w.vector.size() != static_cast<size_t>(n->embedder->dim())) {
      return InvalidArgument("the entry's vector does not match namespace '" + ns + "'", "invalid_mutation");
    }
  }
  Json header = Json::MakeObject();
  header["prompt"] = w.prompt;
  header["scope"] = w.scope_key;
  header["response"] = w.response;
  header["expires_ms"] = w.expires_ms;
  std::string value = header.Dump();
  value.push_back('\n');
  value.append(reinterpret_cast<const char*>(w.vector.data()), w.vector.size() * sizeof(float));
  rocksdb::WriteBatch batch;
  batch.Put(EntryPrefix(ns) + w.id, value);
  CTX_RETURN_IF_ERROR(rep_->Write(&batch));
  {
    WriterLock lock(&n->mu);
    slot = n->ReserveLocked();
    graph = n->graph.get();  // stays: the embedder (and graph) cannot change while reserved
  }
  graph->Add(slot, w.vector.data());
  Namespace::Entry e;
  e.id = std::move(w.id);
  e.prompt = std::move(w.prompt);
  e.scope_key = std::move(w.scope_key);
  e.response = std::move(w.response);
  e.expires_ms = w.expires_ms;
  {
    WriterLock lock(&n->mu);
    n->PublishLocked(slot, std::move(e));
  }
  rep_->Count(ns, "stored");
  return Status::Ok();
}

StatusOr<std::string> LlmCache::Store(const std::string& ns, const CacheStoreRequest& request) {
  CTX_ASSIGN_OR_RETURN(CacheEntryWrite e, PrepareStore(ns, request));
  std::string id = e.id;
  CTX_RETURN_IF_ERROR(ApplyStore(ns, std::move(e)));
  return id;
}

StatusOr<CacheLookup> LlmCache::Lookup(const std::string& ns, const CacheLookupRequest& request) {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  if (request.prompt.empty()) return InvalidArgument("'prompt' must be a non-empty string", "missing_field");
  if (!request.scope.is_object())
    return InvalidArgument("'scope' must be an object of exact-match fields", "invalid_type");
  float min_similarity = request.threshold.value_or(0);
  const std::string scope_key = CanonicalScope(request.scope);
  const int64_t now = rep_->NowMs();
  CacheLookup out;
  std::string expired_id;
  auto answer = [&](const Namespace::Entry& e, float similarity, bool exact) {
    out.hit = true;
    out.id = e.id;
    out.response = e.response;
    out.similarity = similarity;
    out.exact = exact;
  };
  std::shared_ptr<const Embedder> embedder;
  VerifyPolicy policy;
  {
    ReaderLock lock(&n->mu);
    // The same prompt (normalised) in the same scope: no embedding needed.
    auto it = n->by_prompt.find(MakeEmbedKey(scope_key, request.prompt));
    if (it != n->by_prompt.end()) {
      const auto& e = n->entries[it->second];
      if (e.expires_ms == 0 || e.expires_ms > now) {
        answer(e, 1.0f, true);
        rep_->Count(ns, "exact");
        return out;
      }
    }
    embedder = n->embedder;
    policy = n->verify;
    policy.min_confidence = n->MinConfidence();
    if (!request.threshold) min_similarity = n->threshold;
  }
  std::vector<float> vec(static_cast<size_t>(embedder->dim()));
  CTX_RETURN_IF_ERROR(embedder->EmbedWith({request.prompt}, EmbedOptions{EmbedPriority::kQuery, 0}, vec.data()));
  // The nearest live entries over the threshold (a few, so an expired or refused nearest
  // still leaves a runner-up), copied out so they are verified without the lock.
  struct Found {
    float similarity;
    Namespace::Entry entry;
  };
  std::vector<Found> found;
  {
    ReaderLock lock(&n->mu);
    auto sit = n->scopes.find(scope_key);
    if (sit != n->scopes.end() && sit->second.Count() > 0) {
      for (const ScoredSlot& hit : n->graph->SearchFiltered(vec.data(), kCandidates, 64, sit->second)) {
        if (hit.score < min_similarity) break;
        const auto& e = n->entries[hit.slot];
        if (!e.live) continue;
        if (e.expires_ms != 0 && e.expires_ms <= now) {
          expired_id = e.id;
          continue;
        }
        found.push_back({hit.score, e});
        if (!policy.enabled) break;  // the nearest decides
      }
    }
  }
  if (!policy.enabled) {
    if (!found.empty()) answer(found[0].entry, found[0].similarity, false);
  } else if (!found.empty()) {
    // The most confident candidate that passes is served; with none, the most confident
    // refusal explains the miss.
    const PromptFacts query = AnalyzePrompt(request.prompt);
    int best = -1;
    for (size_t i = 0; i < found.size(); ++i) {
      CacheCandidate c{found[i].entry.id, found[i].similarity,
                       Verify(query, AnalyzePrompt(found[i].entry.prompt), found[i].similarity, policy)};
      if (c.verification.passed && c.verification.confidence < found[i].entry.floor) {
        // Feedback found this entry wrong for a prompt at least this close.
        c.verification.passed = false;
        c.verification.vetoed_by = "feedback";
      }
      const bool better = best < 0 || (c.verification.passed && !out.candidates[best].verification.passed) ||
                          (c.verification.passed == out.candidates[best].verification.passed &&
                           c.verification.confidence > out.candidates[best].verification.confidence);
      if (better) best = static_cast<int>(i);
      out.candidates.push_back(std::move(c));
    }
    out.verification = out.candidates[best].verification;
    if (out.verification->passed) answer(found[best].entry, found[best].similarity, false);
  }
  if (!expired_id.empty()) (void)DeleteEntry(ns, expired_id);
  rep_->Count(ns, out.hit ? "semantic" : "miss");
  return out;
}

StatusOr<std::vector<std::string>> LlmCache::MatchScope(const std::string& ns,
                                                        const std::map<std::string, std::string>& fields) const {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  std::vector<std::string> ids;
  ReaderLock lock(&n->mu);
  for (const auto& [scope_key, bits] : n->scopes) {
    auto scope = ParseJson(scope_key);
    if (!scope.ok()) continue;
    bool match = true;
    for (const auto& [field, want] : fields) {
      const Json* v = scope->Find(field);
      match = match && v != nullptr && (v->is_string() ? v->as_string() == want : v->Dump() == want);
    }
    if (!match) continue;
    // Runs inline, under the shared lock above (which the analysis cannot see in a lambda).
    bits.ForEach([&](uint32_t slot) NO_THREAD_SAFETY_ANALYSIS { ids.push_back(n->entries[slot].id); });
  }
  std::sort(ids.begin(), ids.end());  // a stable order for the log
  return ids;
}

Status LlmCache::CheckEntry(const std::string& ns, const std::string& id) const {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  ReaderLock lock(&n->mu);
  if (n->by_id.find(id) == n->by_id.end())
    return NotFound("no entry '" + id + "' in cache namespace '" + ns + "'", "entry_not_found");
  return Status::Ok();
}

StatusOr<size_t> LlmCache::ApplyDelete(const std::string& ns, const std::vector<std::string>& ids) {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  rocksdb::WriteBatch batch;
  std::vector<std::string> present;
  {
    ReaderLock lock(&n->mu);
    for (const auto& id : ids) {
      if (n->by_id.count(id) > 0) present.push_back(id);
    }
  }
  if (present.empty()) return size_t{0};
  for (const auto& id : present) {
    batch.Delete(EntryPrefix(ns) + id);
    batch.Delete(FloorPrefix(ns) + id);
  }
  CTX_RETURN_IF_ERROR(rep_->Write(&batch));
  WriterLock lock(&n->mu);
  size_t deleted = 0;
  for (const auto& id : present) {
    auto it = n->by_id.find(id);
    if (it == n->by_id.end()) continue;
    n->EraseLocked(it->second);
    ++deleted;
  }
  return deleted;
}

StatusOr<size_t> LlmCache::DeleteByScope(const std::string& ns, const std::map<std::string, std::string>& fields) {
  CTX_ASSIGN_OR_RETURN(auto ids, MatchScope(ns, fields));
  return ApplyDelete(ns, ids);
}

Status LlmCache::DeleteEntry(const std::string& ns, const std::string& id) {
  CTX_RETURN_IF_ERROR(CheckEntry(ns, id));
  return ApplyDelete(ns, {id}).status();
}

Status LlmCache::Checkpoint(const std::string& dir) const { return rocks::CheckpointTo(rep_->db.get(), dir); }

}  // namespace contextd
