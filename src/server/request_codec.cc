#include "server/request_codec.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "cache/query_cache.h"
#include "embed/embedder_catalog.h"
#include "engine/planner.h"
#include "engine/sessions.h"
#include "server/field_reader.h"
#include "text/utf8.h"

namespace contextd {
namespace {

// Finite but huge components overflow float distances (an L2 score of inf, sent as null);
// within this bound any distance over 65,536 dimensions stays finite.
constexpr float kMaxVectorComponent = 1e15f;

// The routing fields of `r` ("sharding" in a collection, "routing" in a query) into *out.
Status ReadRouting(const FieldReader& r, ShardingOptions* out) {
  CTX_RETURN_IF_ERROR(r.Size("min_probe", 1, 1024, &out->min_probe));
  CTX_RETURN_IF_ERROR(r.Number("clear_margin", 0, 100, &out->clear_margin));
  CTX_RETURN_IF_ERROR(r.Number("probe_margin", 0, 100, &out->probe_margin));
  return r.Number("max_probe_fraction", 0.01, 1, &out->max_probe_fraction);
}

// "strategy": auto, simple, moderate or complex (engine/planner.h), as given.
Status ReadStrategy(const FieldReader& r, std::string* name) {
  return r.OneOf("strategy", {"auto", "simple", "moderate", "complex"}, name);
}

// A non-blank text member; empty_text when it holds nothing but whitespace or controls.
Status ReadText(const FieldReader& r, const char* name, std::string* out) {
  CTX_RETURN_IF_ERROR(r.String(name, out));
  if (r.Has(name) && IsBlankText(*out)) {
    return InvalidArgument("'" + r.Path(name) + "' is empty (nothing but whitespace or control characters)",
                           "empty_text");
  }
  return Status::Ok();
}

Status ReadCollectionCache(const FieldReader& qc, CollectionConfig* c) {
  CTX_RETURN_IF_ERROR(qc.Known({"enabled", "threshold", "tiers", "verify_fraction"}));
  CTX_RETURN_IF_ERROR(qc.Number("verify_fraction", 0, 1, &c->cache_verify_fraction));
  CTX_RETURN_IF_ERROR(qc.Bool("enabled", &c->cache_enabled));
  CTX_RETURN_IF_ERROR(qc.Number("threshold", 1e-6, 1, &c->cache_threshold));
  CTX_ASSIGN_OR_RETURN(auto tiers, qc.Object("tiers"));
  if (!tiers) return Status::Ok();
  CTX_RETURN_IF_ERROR(tiers->Known({"hot", "warm", "cold"}));
  for (int t = 0; t < 3; ++t) {
    CTX_ASSIGN_OR_RETURN(auto tier, tiers->Object(QueryCacheTierName(t)));
    if (!tier) continue;
    CTX_RETURN_IF_ERROR(tier->Known({"max_mb", "ttl_s"}));
    CTX_RETURN_IF_ERROR(tier->Int("max_mb", 0, 65536, &c->cache_tier_mb[t]));
    CTX_RETURN_IF_ERROR(tier->Int("ttl_s", 1, 30 * 24 * 3600, &c->cache_tier_ttl_s[t]));
  }
  return Status::Ok();
}

}  // namespace

std::string CanonicalJson(const Json& v) {
  if (v.is_object()) {
    std::vector<std::pair<std::string, const Json*>> members;
    for (const auto& [k, m] : v.as_object()) members.emplace_back(k, &m);
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out = "{";
    for (const auto& [k, m] : members) out += Json(k).Dump() + ":" + CanonicalJson(*m) + ",";
    out += "}";
    return out;
  }
  if (v.is_array()) {
    std::string out = "[";
    for (const auto& item : v.as_array()) out += CanonicalJson(item) + ",";
    return out + "]";
  }
  return v.Dump();
}

StatusOr<CollectionConfig> ParseCollectionRequest(const Json& request, const EmbedderCatalog& embedders) {
  CollectionConfig c;
  CTX_ASSIGN_OR_RETURN(FieldReader body, FieldReader::Open(request, "", /*null_is_empty=*/true));
  CTX_RETURN_IF_ERROR(
      body.Known({"embedder", "dim", "distance", "chunking", "analyzer", "index", "cache", "sharding"}));
  CTX_RETURN_IF_ERROR(body.String("embedder", &c.embedder));
  if (c.embedder == "none") {
    CTX_RETURN_IF_ERROR(body.Require("dim"));
    CTX_RETURN_IF_ERROR(body.Int("dim", 1, 4096, &c.dim));
  } else {
    CTX_ASSIGN_OR_RETURN(auto embedder, embedders.Resolve(c.embedder));
    c.model = embedder->model();
    c.dim = embedder->dim();
    int64_t dim = c.dim;
    CTX_RETURN_IF_ERROR(body.Int("dim", 0, int64_t{1} << 31, &dim));
    if (dim != c.dim) {
      return InvalidArgument("embedder '" + c.embedder + "' produces " + std::to_string(c.dim) +
                                 "-dimensional vectors; 'dim' " + std::to_string(dim) + " does not match",
                             "dimension_mismatch");
    }
  }
  std::string distance;
  CTX_RETURN_IF_ERROR(body.String("distance", &distance));
  if (body.Has("distance") && !ParseMetric(distance, &c.metric)) {
    return InvalidArgument("unknown distance '" + distance + "'; expected cosine, dot or l2", "invalid_distance");
  }
  CTX_ASSIGN_OR_RETURN(auto chunking, body.Object("chunking"));
  if (chunking) {
    CTX_RETURN_IF_ERROR(chunking->Known({"max_tokens", "overlap"}));
    CTX_RETURN_IF_ERROR(chunking->Int("max_tokens", 8, 8192, &c.chunking.max_tokens));
    CTX_RETURN_IF_ERROR(chunking->Int("overlap", 0, 8191, &c.chunking.overlap));
    if (c.chunking.overlap >= c.chunking.max_tokens) {
      return InvalidArgument("'chunking.overlap' must be smaller than 'chunking.max_tokens'", "out_of_range");
    }
  }
  CTX_ASSIGN_OR_RETURN(auto index, body.Object("index"));
  if (index) {
    CTX_RETURN_IF_ERROR(index->Known({"M", "ef_construction", "quantization"}));
    std::string quantization = "none";
    CTX_RETURN_IF_ERROR(index->String("quantization", &quantization));
    if (quantization != "none" && quantization != "int8") {
      return InvalidArgument("unknown quantization '" + quantization + "'; expected none or int8",
                             "invalid_quantization");
    }
    c.int8 = quantization == "int8";
    CTX_RETURN_IF_ERROR(index->Int("M", 4, 64, &c.hnsw_m));
    CTX_RETURN_IF_ERROR(index->Int("ef_construction", 8, 2000, &c.hnsw_ef_construction));
  }
  CTX_ASSIGN_OR_RETURN(auto cache, body.Object("cache"));
  if (cache) CTX_RETURN_IF_ERROR(ReadCollectionCache(*cache, &c));
  CTX_ASSIGN_OR_RETURN(auto sharding, body.Object("sharding"));
  if (sharding) {
    CTX_RETURN_IF_ERROR(
        sharding->Known({"max_shard_chunks", "clear_margin", "probe_margin", "min_probe", "max_probe_fraction"}));
    CTX_RETURN_IF_ERROR(sharding->Size("max_shard_chunks", 16, 100000000, &c.sharding.max_shard_chunks));
    CTX_RETURN_IF_ERROR(ReadRouting(*sharding, &c.sharding));
  }
  CTX_RETURN_IF_ERROR(body.String("analyzer", &c.analyzer));
  if (c.analyzer != "english" && c.analyzer != "standard" && c.analyzer != "none") {
    return InvalidArgument("unknown analyzer '" + c.analyzer + "'; expected english, standard or none",
                           "invalid_analyzer");
  }
  return c;
}

StatusOr<std::vector<float>> ParseVector(const Json& v, int dim, const std::string& where) {
  if (!v.is_array()) return FieldReader::WrongType(where, "an array of numbers", v);
  const auto& arr = v.as_array();
  if (static_cast<int>(arr.size()) != dim) {
    return InvalidArgument("'" + where + "' has " + std::to_string(arr.size()) +
                               " dimensions; the collection expects " + std::to_string(dim),
                           "dimension_mismatch");
  }
  std::vector<float> out(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!arr[i].is_number()) return FieldReader::WrongType(at, "a number", arr[i]);
    out[i] = static_cast<float>(arr[i].as_double());
    if (!std::isfinite(out[i])) return InvalidArgument("'" + at + "' is not a finite float", "invalid_vector");
    if (std::fabs(out[i]) > kMaxVectorComponent) {
      return InvalidArgument(
          "'" + at + "' is " + std::to_string(arr[i].as_double()) + "; vector components must lie within +-1e15",
          "invalid_vector");
    }
  }
  return out;
}

namespace {

StatusOr<DocumentInput> ReadDocument(const Json& d, const std::string& where, int dim, bool needs_vector) {
  CTX_ASSIGN_OR_RETURN(FieldReader r, FieldReader::Open(d, where));
  CTX_RETURN_IF_ERROR(r.Known({"id", "_id", "title", "text", "metadata", "vector", "refs"}));
  DocumentInput doc;
  const Json* id = r.Has("id") ? r.Find("id") : r.Find("_id");
  if (id == nullptr) return InvalidArgument(where + " is missing 'id'", "missing_field");
  if (id->is_int())
    doc.id = std::to_string(id->as_int());
  else if (id->is_string())
    doc.id = id->as_string();
  else
    return FieldReader::WrongType(r.Path("id"), "a string", *id);
  Status st = ValidateDocumentId(doc.id);
  if (!st.ok()) return InvalidArgument(where + ": " + st.message(), st.reason());
  CTX_RETURN_IF_ERROR(r.String("title", &doc.title));
  if (const Json* refs = r.Find("refs")) {
    if (!refs->is_array() || refs->as_array().size() > kMaxRefs)
      return InvalidArgument(
          "'" + r.Path("refs") + "' must be an array of up to " + std::to_string(kMaxRefs) + " document ids",
          "invalid_value");
    for (const Json& ref : refs->as_array()) {
      if (!ref.is_string()) return FieldReader::WrongType(r.Path("refs[]"), "a document id (string)", ref);
      CTX_RETURN_IF_ERROR(ValidateDocumentId(ref.as_string()));
      doc.refs.push_back(ref.as_string());
    }
  }
  if (const Json* v = r.Find("vector")) {
    CTX_ASSIGN_OR_RETURN(doc.vector, ParseVector(*v, dim, r.Path("vector")));
  } else if (needs_vector) {
    return InvalidArgument(where + " needs a 'vector': the collection has no embedder", "missing_field");
  }
  if (!r.Has("text") && !doc.vector) return InvalidArgument(where + " is missing 'text'", "missing_field");
  CTX_RETURN_IF_ERROR(ReadText(r, "text", &doc.text));
  if (const Json* m = r.Find("metadata")) {
    if (!m->is_object() && !m->is_null()) return FieldReader::WrongType(r.Path("metadata"), "an object", *m);
    if (m->is_object()) doc.metadata = *m;
  }
  return doc;
}

}  // namespace

StatusOr<std::vector<DocumentInput>> ParseUpsertRequest(const Json& body, int dim, bool needs_vector) {
  CTX_ASSIGN_OR_RETURN(FieldReader r, FieldReader::Open(body, ""));
  CTX_RETURN_IF_ERROR(r.Require("documents"));
  CTX_RETURN_IF_ERROR(r.Known({"documents"}));
  const Json& docs = *r.Find("documents");
  if (!docs.is_array()) return FieldReader::WrongType("documents", "an array", docs);
  if (docs.as_array().empty()) return InvalidArgument("'documents' is empty", "empty_batch");
  std::vector<DocumentInput> out;
  out.reserve(docs.as_array().size());
  std::set<std::string> ids;
  for (size_t i = 0; i < docs.as_array().size(); ++i) {
    const std::string where = "documents[" + std::to_string(i) + "]";
    CTX_ASSIGN_OR_RETURN(DocumentInput doc, ReadDocument(docs.as_array()[i], where, dim, needs_vector));
    if (!ids.insert(doc.id).second) {
      return InvalidArgument(where + ": id '" + doc.id + "' appears twice in the batch", "duplicate_id");
    }
    out.push_back(std::move(doc));
  }
  return out;
}

namespace {

Status ReadQueryMode(const FieldReader& r, QueryMode* mode) {
  if (!r.Has("mode")) return Status::Ok();
  std::string s;
  CTX_RETURN_IF_ERROR(r.String("mode", &s));
  if (s == "vector")
    *mode = QueryMode::kVector;
  else if (s == "keyword")
    *mode = QueryMode::kKeyword;
  else if (s == "hybrid")
    *mode = QueryMode::kHybrid;
  else
    return InvalidArgument("unknown mode '" + s + "'; expected vector, keyword or hybrid", "invalid_mode");
  return Status::Ok();
}

Status ReadFusion(const FieldReader& body, Fusion* fusion) {
  std::string choice;
  CTX_RETURN_IF_ERROR(body.OneOf("fusion", {"auto", "rrf", "weighted"}, &choice));
  if (!choice.empty()) {
    *fusion = choice == "rrf" ? Fusion::kRrf : choice == "weighted" ? Fusion::kWeighted : Fusion::kAuto;
  }
  return Status::Ok();
}

// The members of a query that only tune how it searches: fusion, mmr, bm25, routing...
Status ReadSearchTuning(const FieldReader& body, QueryRequest* q) {
  CTX_RETURN_IF_ERROR(ReadFusion(body, &q->fusion));
  std::string choice;
  if (body.Has("alpha")) {
    CTX_RETURN_IF_ERROR(body.Number("alpha", 0, 1, &q->alpha));
    if (q->fusion != Fusion::kWeighted)
      return InvalidArgument("'alpha' applies to \"fusion\":\"weighted\" only", "invalid_value");
  }
  CTX_ASSIGN_OR_RETURN(auto mmr, body.Object("mmr"));
  if (mmr) {
    CTX_RETURN_IF_ERROR(mmr->Known({"lambda"}));
    q->mmr_lambda = 0.7f;
    CTX_RETURN_IF_ERROR(mmr->Number("lambda", 0, 1, &q->mmr_lambda));
  }
  choice.clear();
  CTX_RETURN_IF_ERROR(body.OneOf("group_by", {"document"}, &choice));
  q->group_by_document = !choice.empty();
  choice.clear();
  CTX_RETURN_IF_ERROR(body.OneOf("cache", {"default", "bypass"}, &choice));
  q->cache_bypass = choice == "bypass";
  choice.clear();
  CTX_RETURN_IF_ERROR(body.OneOf("shards", {"route", "all"}, &choice));
  q->all_shards = choice == "all";
  CTX_RETURN_IF_ERROR(body.Bool("expand_refs", &q->expand_refs));
  CTX_RETURN_IF_ERROR(ReadStrategy(body, &q->strategy));
  CTX_ASSIGN_OR_RETURN(auto routing, body.Object("routing"));
  if (routing) {
    CTX_RETURN_IF_ERROR(routing->Known({"clear_margin", "probe_margin", "min_probe", "max_probe_fraction"}));
    q->routing.emplace();
    CTX_RETURN_IF_ERROR(ReadRouting(*routing, &*q->routing));
  }
  CTX_ASSIGN_OR_RETURN(auto bm25, body.Object("bm25"));
  if (bm25) {
    CTX_RETURN_IF_ERROR(bm25->Known({"k1", "b", "title_boost"}));
    CTX_RETURN_IF_ERROR(bm25->Number("title_boost", 0, 10, &q->title_boost));
    CTX_RETURN_IF_ERROR(bm25->Number("k1", 0, 10, &q->bm25_k1));
    CTX_RETURN_IF_ERROR(bm25->Number("b", 0, 1, &q->bm25_b));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<QueryRequest> ParseQueryRequest(const Json& json, int dim, bool has_embedder) {
  CTX_ASSIGN_OR_RETURN(FieldReader body, FieldReader::Open(json, ""));
  CTX_RETURN_IF_ERROR(
      body.Known({"query", "vector", "k", "ef", "depth", "mode", "filter", "fusion", "alpha", "mmr", "group_by", "bm25",
                  "cache", "shards", "routing", "strategy", "expand_refs", "consistency"}));
  QueryRequest q;
  if (!body.Has("query") && !body.Has("vector")) {
    return InvalidArgument("a query needs 'query' (text) or 'vector'", "missing_field");
  }
  CTX_RETURN_IF_ERROR(ReadText(body, "query", &q.text));
  if (const Json* vec = body.Find("vector")) {
    CTX_ASSIGN_OR_RETURN(q.vector, ParseVector(*vec, dim, "vector"));
  }
  CTX_RETURN_IF_ERROR(body.Size("k", 1, kMaxK, &q.k));
  CTX_RETURN_IF_ERROR(body.Size("ef", 1, 10000, &q.ef));        // absent: 0, derived from k
  CTX_RETURN_IF_ERROR(body.Size("depth", 1, kMaxK, &q.depth));  // absent: 0, derived
  if (q.vector)
    q.mode = body.Has("query") ? QueryMode::kHybrid : QueryMode::kVector;
  else
    q.mode = has_embedder ? QueryMode::kHybrid : QueryMode::kKeyword;
  q.mode_given = body.Has("mode");
  CTX_RETURN_IF_ERROR(ReadQueryMode(body, &q.mode));
  if (q.mode != QueryMode::kVector && q.text.empty()) {
    return InvalidArgument(std::string(QueryModeName(q.mode)) + " search needs 'query' text", "missing_field");
  }
  if (q.mode != QueryMode::kKeyword && !q.vector && !has_embedder) {
    return InvalidArgument("the collection has no embedder: send a 'vector' or use mode \"keyword\"", "missing_field");
  }
  if (const Json* f = body.Find("filter")) {
    CTX_ASSIGN_OR_RETURN(q.filter, Filter::Parse(*f));
    q.filter_key = CanonicalJson(*f);
  }
  CTX_RETURN_IF_ERROR(ReadSearchTuning(body, &q));
  return q;
}

StatusOr<ContextRequest> ParseContextRequest(const Json& json, bool has_embedder) {
  CTX_ASSIGN_OR_RETURN(FieldReader body, FieldReader::Open(json, ""));
  CTX_RETURN_IF_ERROR(body.Known({"collection", "query", "max_tokens", "max_ms", "mode", "candidates", "strategy",
                                  "expand_refs", "session_id", "stream", "consistency", "fusion"}));
  ContextRequest r;
  CTX_RETURN_IF_ERROR(body.Require("query"));
  CTX_RETURN_IF_ERROR(ReadText(body, "query", &r.query));
  CTX_RETURN_IF_ERROR(body.String("session_id", &r.session_id));
  if (body.Has("session_id")) CTX_RETURN_IF_ERROR(SessionStore::ValidateId(r.session_id));
  CTX_RETURN_IF_ERROR(body.Size("max_tokens", 1, 1000000, &r.max_tokens));
  if (body.Has("max_ms")) {  // absent: no deadline but the request's own
    float max_ms = 0;
    CTX_RETURN_IF_ERROR(body.Number("max_ms", 1e-3, 86400e3, &max_ms));
    r.max_ms = std::max<int64_t>(1, static_cast<int64_t>(max_ms));  // 0.5 is a deadline, not none
  }
  CTX_RETURN_IF_ERROR(body.Size("candidates", 1, kMaxK, &r.candidates));
  CTX_RETURN_IF_ERROR(body.Bool("expand_refs", &r.expand_refs));
  CTX_RETURN_IF_ERROR(ReadFusion(body, &r.fusion));
  std::string strategy;
  CTX_RETURN_IF_ERROR(ReadStrategy(body, &strategy));
  if (!strategy.empty()) ParseStrategyChoice(strategy, &r.strategy);
  r.mode = has_embedder ? QueryMode::kHybrid : QueryMode::kKeyword;
  r.mode_given = body.Has("mode");
  CTX_RETURN_IF_ERROR(ReadQueryMode(body, &r.mode));
  if (r.mode != QueryMode::kKeyword && !has_embedder) {
    return InvalidArgument("'mode' must be keyword, or vector or hybrid in a collection with an embedder",
                           "invalid_mode");
  }
  return r;
}

namespace {

// A cache threshold: a similarity in (0, 1], checked as the float it is kept as.
Status ReadThreshold(const FieldReader& r, std::optional<float>* out) {
  CTX_RETURN_IF_ERROR(r.Number("threshold", 0, 1, out));
  if (*out && !(**out > 0))
    return InvalidArgument("'threshold' must be a number in (0, 1], got " + r.Find("threshold")->Dump(),
                           "out_of_range");
  return Status::Ok();
}

Status ReadPromptAndScope(const FieldReader& r, std::string* prompt, Json* scope) {
  CTX_RETURN_IF_ERROR(r.Require("prompt"));
  CTX_RETURN_IF_ERROR(ReadText(r, "prompt", prompt));
  if (const Json* s = r.Find("scope")) {
    if (!s->is_object()) return FieldReader::WrongType("scope", "an object of exact-match fields", *s);
    *scope = *s;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<CacheSettingsUpdate> ParseCacheSettings(const Json& json) {
  CTX_ASSIGN_OR_RETURN(FieldReader body, FieldReader::Open(json, "", /*null_is_empty=*/true));
  CTX_RETURN_IF_ERROR(body.Known({"embedder", "threshold", "ttl_s", "verify"}));
  CacheSettingsUpdate u;
  if (body.Has("verify")) {
    // Checked here, against the defaults, so a bad policy is a 400 before anything is logged.
    CTX_RETURN_IF_ERROR(VerifyPolicy::FromJson(*body.Find("verify"), VerifyPolicy()).status());
    u.verify = *body.Find("verify");
  }
  if (body.Has("embedder")) {
    u.embedder.emplace();
    CTX_RETURN_IF_ERROR(body.String("embedder", &*u.embedder));
  }
  CTX_RETURN_IF_ERROR(ReadThreshold(body, &u.threshold));
  if (body.Has("ttl_s")) {  // 0: entries never expire
    u.ttl_s.emplace();
    CTX_RETURN_IF_ERROR(body.Int("ttl_s", 0, kMaxTtlSeconds, &*u.ttl_s));
  }
  return u;
}

StatusOr<CacheStoreRequest> ParseCacheStore(const Json& json) {
  CTX_ASSIGN_OR_RETURN(FieldReader body, FieldReader::Open(json, ""));
  CTX_RETURN_IF_ERROR(body.Known({"prompt", "response", "scope", "ttl_s"}));
  CacheStoreRequest r;
  CTX_RETURN_IF_ERROR(ReadPromptAndScope(body, &r.prompt, &r.scope));
  CTX_RETURN_IF_ERROR(body.Require("response"));  // any JSON value
  r.response = *body.Find("response");
  if (body.Has("ttl_s")) {
    r.ttl_s.emplace();
    CTX_RETURN_IF_ERROR(body.Int("ttl_s", 1, kMaxTtlSeconds, &*r.ttl_s));
  }
  return r;
}

StatusOr<CacheLookupRequest> ParseCacheLookup(const Json& json) {
  CTX_ASSIGN_OR_RETURN(FieldReader body, FieldReader::Open(json, ""));
  CTX_RETURN_IF_ERROR(body.Known({"prompt", "scope", "threshold"}));
  CacheLookupRequest r;
  CTX_RETURN_IF_ERROR(ReadPromptAndScope(body, &r.prompt, &r.scope));
  CTX_RETURN_IF_ERROR(ReadThreshold(body, &r.threshold));
  return r;
}

StatusOr<CacheFeedbackRequest> ParseCacheFeedback(const Json& json) {
  CTX_ASSIGN_OR_RETURN(FieldReader body, FieldReader::Open(json, ""));
  CTX_RETURN_IF_ERROR(body.Known({"id", "prompt", "correct", "response"}));
  CTX_RETURN_IF_ERROR(body.Require("id"));
  CTX_RETURN_IF_ERROR(body.Require("prompt"));
  CacheFeedbackRequest r;
  CTX_RETURN_IF_ERROR(body.String("id", &r.id));
  CTX_RETURN_IF_ERROR(ReadText(body, "prompt", &r.prompt));
  if (body.Has("correct")) {
    bool correct = false;
    CTX_RETURN_IF_ERROR(body.Bool("correct", &correct));
    r.correct = correct;
  }
  if (body.Has("response")) r.response = *body.Find("response");
  if (r.correct.has_value() == r.response.has_value()) {
    return InvalidArgument(
        "give either 'correct' (true or false: was the entry right for this prompt?) or 'response' (the fresh "
        "response, which is compared with the entry's), not both",
        r.correct ? "invalid_value" : "missing_field");
  }
  return r;
}

StatusOr<std::shared_ptr<Collection>> CreateFromSpec(Engine& engine, const EmbedderCatalog& embedders,
                                                     const std::string& tenant, const std::string& name,
                                                     const Json& spec) {
  CTX_RETURN_IF_ERROR(ValidateCollectionName(name));
  CTX_ASSIGN_OR_RETURN(CollectionConfig config, ParseCollectionRequest(spec, embedders));
  return engine.CreateCollection(tenant, name, config);
}

}  // namespace contextd
